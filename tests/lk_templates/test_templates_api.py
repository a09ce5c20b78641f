"""The lk_templates API: names, errors, variables, run defaults, variable files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lk_core.errors import (
    MissingVariablesError,
    NotFoundError,
    PluginError,
    TemplateError,
    UsageError,
)
from lk_core.model import Template
from lk_core.plugins import get_plugins
from lk_core.template_source import TemplateSource
from lk_templates.directory import DirectorySource
from lk_templates.names import describe_template, validate_template_name
from lk_templates.run_defaults import run_defaults
from lk_templates.run_defaults import template_defaults as defaults_of
from lk_templates.varfile import load_var_file, parse_var_file

from lk_templates import registry

# The registry takes the sources to consult; these tests consult the installed
# plugins' unless they pass their own.


def _sources(sources: list[Any] | None) -> list[TemplateSource]:
    return get_plugins().template_sources() if sources is None else sources


def get_template(name: str, *, sources: list[Any] | None = None) -> str:
    return registry.get_template(_sources(sources), name)


def find_template(name: str) -> tuple[registry.TemplateInfo, str]:
    return registry.find_template(_sources(None), name)


def list_templates(
    include_shadowed: bool = False, *, sources: list[Any] | None = None
) -> list[registry.TemplateInfo]:
    return registry.list_templates(_sources(sources), include_shadowed)


def template_variables(name: str) -> tuple[list[str], dict[str, str]]:
    return registry.template_variables(_sources(None), name)


def apply_template(name: str, variables: dict[str, str]) -> str:
    return registry.apply_template(_sources(None), name, variables)


def template_defaults(name: str) -> Any:
    return defaults_of(get_template(name), name=name)


def template_run_defaults(name: str, variables: dict[str, str]) -> Any:
    """What ``lk run --template`` uses: the template resolved once, its run defaults."""
    return run_defaults(get_template(name), variables, name=name)


# ---------------------------------------------------------------------------
# names and traversal
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["core-dev", "a", "my_template.v2", "K8s+tools", "9lives"])
def test_valid_names(name: str) -> None:
    assert validate_template_name(name) == name


BAD_NAMES = [
    "",
    ".",
    "..",
    "../x",
    "../../etc/passwd",
    "a/b",
    "a\\b",
    "/abs",
    ".hidden",
    "a..b",
    "x" * 129,
    "a b",
    "~user",
    "-rf",
    "a\nb",
    "a\0b",
    "nul\x7f",
    "é",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_invalid_names_are_refused_on_one_line(name: str) -> None:
    with pytest.raises(UsageError) as info:
        validate_template_name(name)
    message = str(info.value)
    assert "invalid template name" in message
    assert "\n" not in message


@pytest.mark.parametrize("name", ["../secret", "../ws/.lk/templates/x", "sub/x", ".secret"])
def test_traversal_never_reads_a_file(workspace: Path, user_templates: Path, name: str) -> None:
    (user_templates.parent / "secret.yml").write_text("# secret\nkernel: {}\n")
    (user_templates / "sub").mkdir()
    (user_templates / "sub" / "x.yml").write_text("# nested\nkernel: {}\n")
    (user_templates / ".secret.yml").write_text("# hidden\nkernel: {}\n")
    with pytest.raises(UsageError):
        get_template(name)
    with pytest.raises(UsageError):
        DirectorySource("user", user_templates, 1).read_template(name)
    with pytest.raises(UsageError):
        apply_template(name, {})


def test_not_found_lists_what_exists(workspace: Path) -> None:
    with pytest.raises(NotFoundError) as info:
        get_template("nope")
    message = str(info.value)
    assert "'nope' not found" in message and "core-dev" in message and "server-php" in message
    with pytest.raises(NotFoundError, match="names have no extension: try 'core-dev'"):
        get_template("core-dev.yml")


def test_no_sources_says_install_lk_templates() -> None:
    with pytest.raises(TemplateError, match="install lk-templates"):
        get_template("core-dev", sources=[])
    assert list_templates(sources=[]) == []


def test_no_sources_through_the_plugins(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lk_core.plugins import set_plugins

    monkeypatch.setenv("LK_DISABLE_PLUGINS", "templates")
    set_plugins(None)
    with pytest.raises(TemplateError) as info:
        get_template("core-dev")
    assert "install lk-templates" in str(info.value)


class Broken:
    name = "broken"
    priority = 99

    def list_templates(self) -> list[Template]:
        raise RuntimeError("disk on fire")

    def read_template(self, name: str) -> str | None:
        raise ValueError("cannot read\nat all")


def test_a_crashing_source_is_reported_by_name() -> None:
    with pytest.raises(PluginError, match="'broken' failed to list templates: disk on fire"):
        list_templates(sources=[Broken()])
    with pytest.raises(PluginError) as info:
        get_template("x", sources=[Broken()])
    assert "'broken'" in str(info.value) and "\n" not in str(info.value)


def test_unreadable_and_non_utf8_files(user_templates: Path) -> None:
    (user_templates / "latin.yml").write_bytes(b"# caf\xe9\nkernel: {}\n")
    with pytest.raises(TemplateError, match="not UTF-8"):
        get_template("latin")
    # Listing still works (the description is decoded leniently).
    assert "latin" in [t.name for t in list_templates()]


def test_find_template_reports_the_source(workspace: Path, user_templates: Path) -> None:
    info, content = find_template("core-dev")
    assert (info.source, info.name) == ("embedded", "core-dev")
    assert content == get_template("core-dev")
    (user_templates / "core-dev.yml").write_text("# Mine\nkernel: {}\n")
    info, _ = find_template("core-dev")
    assert (info.source, info.description, info.path) == (
        "user",
        "Mine",
        str(user_templates / "core-dev.yml"),
    )


def test_template_info_to_dict(user_templates: Path) -> None:
    (user_templates / "core-dev.yml").write_text("# Mine\nkernel: {}\n")
    rows = [t.to_dict() for t in list_templates(True) if t.name == "core-dev"]
    assert rows[0]["source"] == "user" and rows[0]["shadowed"] is False
    assert rows[0]["shadowed_by"] is None
    assert rows[1]["source"] == "embedded" and rows[1]["shadowed"] is True
    assert rows[1]["shadowed_by"] == "user"
    assert set(rows[0]) == {
        "name",
        "description",
        "source",
        "path",
        "priority",
        "shadowed",
        "shadowed_by",
    }


# ---------------------------------------------------------------------------
# descriptions
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("# My Custom Template\n# A custom template\nkernel: {}\n", "My Custom Template"),
        ("\n\n#\n##   Spaced title  \nkernel: {}\n", "Spaced title"),
        ("---\n# After marker\nkernel: {}\n", "After marker"),
        ("%YAML 1.1\n---\n# After directive\n", "After directive"),
        ("# lk: memory=1024\n# Real title\n", "Real title"),
        ("kernel: {} # trailing\n# later comment\n", "User-defined template"),
        ("", "User-defined template"),
        ("#\n#\n", "User-defined template"),
    ],
)
def test_describe_template(content: str, expected: str) -> None:
    assert describe_template(content) == expected


# ---------------------------------------------------------------------------
# variables and rendering through the API
# ---------------------------------------------------------------------------


def test_template_variables_and_apply(workspace: Path) -> None:
    required, _ = template_variables("core-dev")
    assert required == ["SSH_KEY"]
    with pytest.raises(MissingVariablesError) as info:
        apply_template("core-dev", {})
    assert info.value.names == ["SSH_KEY"]
    assert "--var NAME=VALUE" in str(info.value)
    out = apply_template("core-dev", {"SSH_KEY": "k", "UNUSED": "x"})
    assert "${" not in out


def test_values_are_not_expanded_again(user_templates: Path) -> None:
    (user_templates / "t.yml").write_text('a: "${A}"\nb: "${B:-dflt}"\nc: "$${A}"\n')
    import yaml

    doc = yaml.safe_load(apply_template("t", {"A": "${B}", "B": "$${A}"}))
    assert doc == {"a": "${B}", "b": "$${A}", "c": "${A}"}


# ---------------------------------------------------------------------------
# run defaults (MEMORY / CPUS / DATA_SIZE)
# ---------------------------------------------------------------------------


def test_run_defaults_from_variables() -> None:
    content = "mem: ${MEMORY:-2048}\ncpu: ${CPUS:-2}\n"
    assert run_defaults(content, {}) == {"memory": 2048, "cpus": 2}
    assert run_defaults(content, {"MEMORY": "1.5G", "CPUS": "3"}) == {"memory": 1536, "cpus": 3}
    assert run_defaults("kernel: {}\n", {"MEMORY": "4096"}) == {}  # not used by the template


def test_run_defaults_from_directives() -> None:
    content = "# lk: memory=3G cpus=${CPUS:-4} disk=5G future=1\nmem: ${MEMORY:-2048}\n"
    assert run_defaults(content, {}) == {"memory": 3072, "cpus": 4, "disk_size": "5G"}
    assert run_defaults(content, {"CPUS": "8", "MEMORY": "1024"})["cpus"] == 8
    # The directive wins over the MEMORY variable.
    assert run_defaults(content, {"MEMORY": "1024"})["memory"] == 3072


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"MEMORY": "lots"}, "invalid memory size 'lots'"),
        ({"MEMORY": "8"}, "at least 16 MB"),
        ({"CPUS": "0"}, "invalid CPU count '0'"),
        ({"CPUS": "two"}, "invalid CPU count 'two'"),
        ({"DATA_SIZE": "big"}, "invalid disk size 'big'"),
    ],
)
def test_run_defaults_reject_bad_values(variables: dict[str, str], message: str) -> None:
    content = "a: ${MEMORY:-1024}\nb: ${CPUS:-1}\nc: ${DATA_SIZE:-1G}\n"
    with pytest.raises(UsageError) as info:
        run_defaults(content, variables, name="mine")
    assert message in str(info.value) and "template 'mine'" in str(info.value)


def test_template_run_defaults_and_template_defaults(workspace: Path) -> None:
    assert template_run_defaults("core-dev", {"SSH_KEY": "k"}) == {
        "memory": 2048,
        "cpus": 2,
        "disk_size": "10G",
    }
    assert template_run_defaults("core-dev", {"MEMORY": "4096", "CPUS": "6"}) == {
        "memory": 4096,
        "cpus": 6,
        "disk_size": "10G",
    }
    assert template_defaults("core-dev") == {"memory": 2048, "cpus": 2, "disk_size": "10G"}
    assert template_run_defaults("server-php", {}) == {"memory": 512, "cpus": 1}


def test_template_defaults_skip_directives_needing_required_variables(
    user_templates: Path,
) -> None:
    (user_templates / "t.yml").write_text("# lk: memory=${MEM}\n# lk: cpus=2\nk: v\n")
    assert template_defaults("t") == {"cpus": 2}
    with pytest.raises(MissingVariablesError):
        template_run_defaults("t", {})
    assert template_run_defaults("t", {"MEM": "512"}) == {"memory": 512, "cpus": 2}


# ---------------------------------------------------------------------------
# variable files
# ---------------------------------------------------------------------------


def test_parse_var_file_lines() -> None:
    text = (
        "# a comment\n"
        "\n"
        "SSH_KEY=ssh-ed25519 AAAA me@host\n"
        '   QUOTED="kept as is"\n'
        "EQ=a=b=c\n"
        "EMPTY=\n"
        "  # indented comment\n"
        "CRLF=value\r\n"
        "HASH=not # a comment\n"
    )
    assert parse_var_file(text) == {
        "SSH_KEY": "ssh-ed25519 AAAA me@host",
        "QUOTED": '"kept as is"',
        "EQ": "a=b=c",
        "EMPTY": "",
        "CRLF": "value",
        "HASH": "not # a comment",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("A=1\nJUSTANAME\n", "line 2: expected NAME=VALUE"),
        ("1BAD=x\n", "line 1: invalid variable name '1BAD'"),
        ("A-B=x\n", "invalid variable name 'A-B'"),
    ],
)
def test_parse_var_file_line_errors(text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        parse_var_file(text, origin="vars.env")


def test_parse_var_file_mapping() -> None:
    text = 'MEMORY: 0600\nFLAG: yes\nKEY: |\n  line1\n  line2\nJSON: "a\\nb"\nEMPTY:\n'
    assert parse_var_file(text, mapping=True) == {
        "MEMORY": "0600",
        "FLAG": "yes",
        "KEY": "line1\nline2\n",
        "JSON": "a\nb",
        "EMPTY": "",
    }
    assert parse_var_file('{"A": "1", "B": 2, "C": true}', mapping=True) == {
        "A": "1",
        "B": "2",
        "C": "true",
    }
    assert parse_var_file("", mapping=True) == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "expected a mapping"),
        ("A: [1, 2]\n", "the value of A must be text"),
        ("A: {b: 1}\n", "the value of A must be text"),
        ("1A: x\n", "invalid variable name '1A'"),
        ("A: [unclosed\n", "line 2, column 1"),
    ],
)
def test_parse_var_file_mapping_errors(text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message.replace("[", r"\[")):
        parse_var_file(text, mapping=True)


def test_load_var_file_by_extension(tmp_path: Path) -> None:
    lines = tmp_path / "vars.env"
    lines.write_text("A=1: b\n")
    mapping = tmp_path / "vars.yaml"
    mapping.write_text("A: '1: b'\n")
    as_json = tmp_path / "vars.json"
    as_json.write_text('{"A": "1: b"}')
    assert load_var_file(lines) == load_var_file(mapping) == load_var_file(as_json) == {"A": "1: b"}
    with pytest.raises(TemplateError, match="cannot read variables file"):
        load_var_file(tmp_path / "missing.env")
    (tmp_path / "bad.env").write_bytes(b"A=\xff\n")
    with pytest.raises(TemplateError, match="not UTF-8"):
        load_var_file(tmp_path / "bad.env")


def test_load_var_file_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("A=from stdin\n"))
    result: dict[str, Any] = load_var_file("-")
    assert result == {"A": "from stdin"}
