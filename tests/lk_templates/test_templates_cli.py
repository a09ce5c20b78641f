"""``lk templates list/show/vars/render`` through the real command line (subprocesses)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

KEY = "ssh-ed25519 AAAA... me@host"
MINIMAL = "# {title}\nkernel:\n  image: linuxkit/kernel:6.6.13\ninit:\n  - linuxkit/init:v1\n"

Run = Callable[..., Any]


def ok(result: Any) -> str:
    assert result.returncode == 0, result.stderr
    out: str = result.stdout
    return out


def one_line_error(result: Any, code: int = 1) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("lk: error: ")
    message: str = lines[0]
    return message


def authorized_keys(document: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = next(
        f for f in document["files"] if f["path"] == "root/.ssh/authorized_keys"
    )
    return entry


# ---------------------------------------------------------------------------
# list
# ---------------------------------------------------------------------------


def test_help_lists_the_group(lk: Run) -> None:
    assert "templates" in ok(lk("--help"))
    out = ok(lk("templates", "--help"))
    for command in ("list", "show", "vars", "render"):
        assert command in out


def test_list_table(lk: Run) -> None:
    out = ok(lk("templates", "list"))
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "SOURCE", "DESCRIPTION"]
    assert any(line.startswith("core-dev") and " embedded " in line for line in lines)
    assert any(line.startswith("server-php") and " embedded " in line for line in lines)
    assert "Sources, highest precedence first:" in out
    order = [line.split()[0] for line in out.split("highest precedence first:")[1].splitlines()[2:]]
    assert order == ["workspace", "user", "legacy-workspace", "legacy-home", "embedded"]


def test_list_marks_shadowed_templates(lk: Run, user_templates: Path) -> None:
    (user_templates / "core-dev.yaml").write_text(MINIMAL.format(title="My dev box"))
    out = ok(lk("templates", "list"))
    rows = [line for line in out.splitlines() if line.startswith("core-dev")]
    assert len(rows) == 2
    assert rows[0].split()[1] == "user" and "My dev box" in rows[0]
    assert "embedded (shadowed by user)" in rows[1]


def test_list_json(lk: Run, workspace_templates: Path) -> None:
    (workspace_templates / "core-dev.yml").write_text(MINIMAL.format(title="WS"))
    (workspace_templates / "extra.yaml").write_text("kernel: {}\n")
    rows = json.loads(ok(lk("templates", "list", "--json")))
    by = {(r["name"], r["source"]): r for r in rows}
    assert by[("core-dev", "workspace")]["shadowed"] is False
    assert by[("core-dev", "embedded")]["shadowed_by"] == "workspace"
    assert by[("extra", "workspace")]["description"] == "User-defined template"
    assert by[("extra", "workspace")]["path"].endswith(".lk/templates/extra.yaml")
    assert [r["name"] for r in rows] == sorted(r["name"] for r in rows)


def test_no_template_sources(lk: Run) -> None:
    # lk-templates' commands without any template source (lk-templates disabled).
    env = {
        "LK_DISABLE_PLUGINS": "templates",
        "LK_PLUGIN_MODULES": "commands_only_plugin",
        "PYTHONPATH": str(Path(__file__).parent),
    }
    message = one_line_error(lk("templates", "list", env=env))
    assert "install lk-templates" in message
    message = one_line_error(lk("templates", "show", "core-dev", env=env))
    assert "install lk-templates" in message


def test_without_lk_templates_lk_knows_no_template(lk: Run) -> None:
    env = {"LK_DISABLE_PLUGINS": "templates"}
    result = lk("templates", "list", env=env)
    assert result.returncode == 2 and "No such command 'templates'" in result.stderr
    result = lk("run", "--template", "core-dev", env=env)
    assert result.returncode == 2 and "--template" in result.stderr


# ---------------------------------------------------------------------------
# show and vars
# ---------------------------------------------------------------------------


def test_show_prints_the_template(lk: Run) -> None:
    from importlib import resources

    expected = resources.files("lk_templates").joinpath("templates/core-dev.yml").read_text()
    assert ok(lk("templates", "show", "core-dev")) == expected


def test_show_both_extensions_and_legacy(lk: Run, workspace: Path, tmp_path: Path) -> None:
    legacy = workspace / ".core" / "linuxkit"
    legacy.mkdir(parents=True)
    (legacy / "old.yaml").write_text(MINIMAL.format(title="Old one"))
    home_legacy = tmp_path / "home" / ".core" / "linuxkit"
    home_legacy.mkdir(parents=True)
    (home_legacy / "homeone.yml").write_text("kernel: {}")
    assert ok(lk("templates", "show", "old")).startswith("# Old one\n")
    assert ok(lk("templates", "show", "homeone")) == "kernel: {}\n"


def test_show_errors(lk: Run) -> None:
    assert "not found" in one_line_error(lk("templates", "show", "nope"))
    assert "invalid template name" in one_line_error(lk("templates", "show", "../etc/x"), 2)
    assert "invalid template name" in one_line_error(lk("templates", "show", ".hidden"), 2)


def test_vars_table(lk: Run) -> None:
    out = ok(lk("templates", "vars", "core-dev"))
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["VARIABLE", "REQUIRED", "DEFAULT"]
    assert ["SSH_KEY", "yes"] in rows
    assert ["HOSTNAME", "no", "core-dev"] in rows
    assert ["MEMORY", "no", "2048"] in rows
    assert ["CPUS", "no", "2"] in rows
    assert ["DATA_SIZE", "no", "10G"] in rows


def test_vars_json(lk: Run) -> None:
    document = json.loads(ok(lk("templates", "vars", "server-php", "--json")))
    assert document == {
        "name": "server-php",
        "source": "embedded",
        "required": ["SSH_KEY"],
        "optional": {
            "MEMORY": "512",
            "CPUS": "1",
            "APP_NAME": "app",
            "HOSTNAME": "php-server",
            "DOMAIN": "localhost",
            "PHP_MEMORY": "128M",
        },
    }


def test_vars_of_a_template_without_variables(lk: Run, user_templates: Path) -> None:
    (user_templates / "fixed.yml").write_text("kernel: {}\n")
    assert ok(lk("templates", "vars", "fixed")) == "fixed has no variables.\n"


# ---------------------------------------------------------------------------
# render
# ---------------------------------------------------------------------------


def test_render_core_dev_with_ssh_key(lk: Run) -> None:
    out = ok(lk("templates", "render", "core-dev", "--var", f"SSH_KEY={KEY}"))
    document = yaml.safe_load(out)
    assert authorized_keys(document) == {
        "path": "root/.ssh/authorized_keys",
        "mode": "0600",
        "contents": KEY + "\n",
    }
    assert document["kernel"]["image"].startswith("linuxkit/kernel:")
    assert "${" not in out


def test_render_missing_variable(lk: Run) -> None:
    message = one_line_error(lk("templates", "render", "core-dev"))
    assert "missing required template variables: SSH_KEY" in message


def test_render_var_without_equals_is_an_error(lk: Run) -> None:
    message = one_line_error(lk("templates", "render", "core-dev", "--var", "SSH_KEY"))
    assert "expected NAME=VALUE" in message


def test_render_hostile_values(lk: Run) -> None:
    evil = "x\"\n  - path: etc/shadow\n    contents: pwned # ' : {"
    out = ok(
        lk(
            "templates",
            "render",
            "core-dev",
            "--var",
            f"SSH_KEY={evil}",
            "--var",
            f"HOSTNAME={evil}",
        )
    )
    document = yaml.safe_load(out)
    assert authorized_keys(document)["contents"] == evil + "\n"
    paths = [f["path"] for f in document["files"]]
    assert "etc/shadow" not in paths
    hostname = next(f for f in document["files"] if f["path"] == "etc/hostname")
    assert hostname["contents"] == evil


def test_render_var_file_lines(lk: Run, workspace: Path) -> None:
    (workspace / "vars.env").write_text(f"# my variables\n\nSSH_KEY={KEY}\nHOSTNAME=from-file\n")
    out = ok(lk("templates", "render", "core-dev", "--var-file", "vars.env"))
    document = yaml.safe_load(out)
    assert authorized_keys(document)["contents"] == KEY + "\n"
    hostname = next(f for f in document["files"] if f["path"] == "etc/hostname")
    assert hostname["contents"] == "from-file"
    # --var wins over the file.
    out = ok(
        lk("templates", "render", "core-dev", "--var-file", "vars.env", "--var", "HOSTNAME=cli")
    )
    hostname = next(f for f in yaml.safe_load(out)["files"] if f["path"] == "etc/hostname")
    assert hostname["contents"] == "cli"


def test_render_var_file_yaml_mapping_with_two_keys(lk: Run, workspace: Path) -> None:
    second = "ssh-rsa BBBB other@host"
    (workspace / "vars.yaml").write_text(f"SSH_KEY: |\n  {KEY}\n  {second}\nCPUS: 04\n")
    out = ok(lk("templates", "render", "core-dev", "--var-file", "vars.yaml"))
    document = yaml.safe_load(out)
    # The value already ends with a newline; the block adds its own.
    assert authorized_keys(document)["contents"] == f"{KEY}\n{second}\n\n"
    assert "# lk: memory=2048 cpus=04 disk=10G" in out


def test_render_var_file_json_and_stdin(lk: Run, workspace: Path) -> None:
    (workspace / "vars.json").write_text(json.dumps({"SSH_KEY": KEY}))
    out = ok(lk("templates", "render", "server-php", "--var-file", "vars.json"))
    assert authorized_keys(yaml.safe_load(out))["contents"] == KEY + "\n"
    out = ok(lk("templates", "render", "server-php", "--var-file", "-", input=f"SSH_KEY={KEY}\n"))
    assert authorized_keys(yaml.safe_load(out))["contents"] == KEY + "\n"


def test_render_var_file_errors(lk: Run, workspace: Path) -> None:
    (workspace / "bad.env").write_text("SSH_KEY=x\nnot an assignment\n")
    message = one_line_error(lk("templates", "render", "core-dev", "--var-file", "bad.env"))
    assert "bad.env, line 2: expected NAME=VALUE" in message
    message = one_line_error(lk("templates", "render", "core-dev", "--var-file", "missing.env"))
    assert "cannot read variables file missing.env" in message


def test_render_output_file_is_written_atomically(lk: Run, workspace: Path) -> None:
    target = workspace / "out" / "dev.yml"
    target.parent.mkdir()
    target.write_text("old content\n")
    result = lk("templates", "render", "core-dev", "--var", f"SSH_KEY={KEY}", "-o", str(target))
    assert ok(result) == ""
    expected = ok(lk("templates", "render", "core-dev", "--var", f"SSH_KEY={KEY}"))
    assert target.read_text() == expected
    assert sorted(p.name for p in target.parent.iterdir()) == ["dev.yml"]  # no temp file left
    assert target.stat().st_mode & 0o777 == 0o644 or target.stat().st_mode & 0o777 == 0o664


def test_render_output_into_missing_folder(lk: Run, workspace: Path) -> None:
    message = one_line_error(
        lk("templates", "render", "core-dev", "--var", "SSH_KEY=k", "-o", "nowhere/x.yml")
    )
    assert "cannot write nowhere/x.yml" in message


def test_render_failure_leaves_an_existing_output_untouched(lk: Run, workspace: Path) -> None:
    target = workspace / "dev.yml"
    target.write_text("keep me\n")
    one_line_error(lk("templates", "render", "core-dev", "-o", str(target)))
    assert target.read_text() == "keep me\n"


def test_render_reports_yaml_errors_with_line_and_column(lk: Run, user_templates: Path) -> None:
    (user_templates / "broken.yml").write_text(
        "# Broken\nkernel:\n  image: ${IMAGE:-linuxkit/kernel:6.6.13}\n  cmdline: [oops\ninit: []\n"
    )
    message = one_line_error(lk("templates", "render", "broken"))
    assert "template 'broken' is not valid YAML at line 5, column 5" in message


def test_render_refusal_names_the_variable_and_line(lk: Run, user_templates: Path) -> None:
    (user_templates / "commented.yaml").write_text("kernel: {}\n# built for ${OWNER}\n")
    message = one_line_error(
        lk("templates", "render", "commented", "--var", "OWNER=me\ninit: [evil]")
    )
    assert "the value of OWNER cannot be used at line 2, column 13" in message


@pytest.mark.parametrize("extension", [".yml", ".yaml"])
def test_render_user_template_of_either_extension(
    lk: Run, user_templates: Path, extension: str
) -> None:
    (user_templates / f"mine{extension}").write_text(
        '# Mine\nkernel:\n  image: linuxkit/kernel:6.6.13\n  cmdline: "${CMDLINE:-console=ttyS0}"\n'
    )
    document = yaml.safe_load(ok(lk("templates", "render", "mine", "--var", 'CMDLINE=a "b" c')))
    assert document == {"kernel": {"image": "linuxkit/kernel:6.6.13", "cmdline": 'a "b" c'}}


def test_render_refuses_a_variable_the_template_does_not_use(lk: Run) -> None:
    result = lk("templates", "render", "core-dev", "--var", "SSH_KEY=k", "--var", "HOSTNMAE=x")
    assert result.returncode == 1
    assert "has no variable HOSTNMAE" in result.stderr and "HOSTNAME" in result.stderr
    assert result.stdout == ""


def test_render_allows_extra_names_in_a_var_file(lk: Run, workspace: Path) -> None:
    (workspace / "vars.env").write_text("SSH_KEY=ssh-ed25519 AAAA k\nAPP_NAME=shared\n")
    out = ok(lk("templates", "render", "core-dev", "--var-file", "vars.env"))
    assert "ssh-ed25519 AAAA k" in out
