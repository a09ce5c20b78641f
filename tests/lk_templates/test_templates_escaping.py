"""render_yaml: values are escaped for where they land and never change the document's structure."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lk_core.errors import MissingVariablesError, TemplateError
from lk_templates.render import dq_escape, is_plain_safe, render_yaml

# Every place a value can land in a LinuxKit template.
CONTEXTS = """\
# Header comment
kernel:
  image: linuxkit/kernel:${V}
  cmdline: "console=ttyS0 ${V}"
plain: ${V}
prefixed: pre-${V}-post
default_plain: ${V:-fallback}
single: 'a ${V} b'
single_alone: '${V}'
double_alone: "${V}"
flow_seq: [one, ${V}, "x${V}", 'y${V}']
flow_map: {k: ${V}, q: "${V}"}
nested:
  - name: svc
    env:
      - KEY=${V}
    command: ["/bin/echo", "${V}"]
files:
  - path: etc/literal
    contents: |
      first line
      value: ${V}
      last line
  - path: etc/only
    contents: |
      ${V}
  - path: etc/folded
    contents: >
      folded ${V} text
  - path: etc/keep
    contents: |+
      kept ${V}

  - path: etc/strip
    contents: |-
      stripped ${V}
multi_double: "start ${V}
  middle ${V} end"
multi_lead: "first
  ${V} rest"
escapes: "tab\\t \\"${V}\\" \\\\"
after: done  # ${SAFE}
"""

MARKER = "lkmarker7q"


def _substitute(node: Any, marker: str, value: str) -> Any:
    if isinstance(node, str):
        return node.replace(marker, value)
    if isinstance(node, dict):
        return {
            _substitute(k, marker, value): _substitute(v, marker, value) for k, v in node.items()
        }
    if isinstance(node, list):
        return [_substitute(item, marker, value) for item in node]
    return node


def expected_document(template: str, value: str, **others: str) -> Any:
    """What the template means with V=value: load it with a plain marker, then put the value in."""
    return _substitute(
        yaml.safe_load(render_yaml(template, {"V": MARKER, **others})), MARKER, value
    )


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> set[tuple[Any, ...]]:
    """Every key path of a document (its structure)."""
    found = {prefix}
    if isinstance(node, dict):
        for key, child in node.items():
            found |= paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found |= paths(child, (*prefix, index))
    return found


HOSTILE = [
    "",
    " ",
    "plain",
    "a: b",
    "x\nkernel: evil",
    '"quoted"',
    "it's",
    "#not a comment",
    "value # comment",
    "- item",
    "[a, b]",
    "{a: 1}",
    "&anchor",
    "*alias",
    "!!python/object:os.system",
    "|",
    ">",
    "---",
    "...",
    "yes",
    "null",
    "~",
    "0600",
    "1e3",
    ".nan",
    "<<",
    "=",
    "line1\nline2\n",
    "\n\nleading newlines",
    "trailing newlines\n\n",
    "  indented\n    more",
    "tab\there",
    "\ttab first",
    "cr\r\nlf",
    "\x00\x01\x07\x1b\x7f\x85\x9f",
    "\u2028\u2029",
    "\ufeffbom",
    "emoji 😀 and ünïcödé",
    "back\\slash \\n not a newline",
    "${OTHER} $${ESC}",
    "a" * 2000,
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_keep_structure_and_exact_value(value: str) -> None:
    rendered = render_yaml(CONTEXTS, {"V": value, "SAFE": "ok"})
    document = yaml.safe_load(rendered)
    expected = expected_document(CONTEXTS, value, SAFE="ok")
    assert same(document, expected)
    assert paths(document) == paths(expected)
    assert document["plain"] == value
    assert document["files"][1]["contents"] == value + "\n"
    assert document["nested"][0]["env"] == [f"KEY={value}"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
@example("")
@example("\n")
@example(" x ")
@example("a\n b")
def test_any_value_keeps_structure_and_appears_exactly(value: str) -> None:
    document = yaml.safe_load(render_yaml(CONTEXTS, {"V": value, "SAFE": "ok"}))
    expected = expected_document(CONTEXTS, value, SAFE="ok")
    assert paths(document) == paths(expected)
    assert same(document, expected)
    # The value, as a string, exactly where the variable was.
    assert document["plain"] == value
    assert document["single_alone"] == value
    assert document["double_alone"] == value
    assert document["flow_seq"] == ["one", value, "x" + value, "y" + value]
    assert document["flow_map"] == {"k": value, "q": value}
    assert document["kernel"]["image"] == "linuxkit/kernel:" + value
    assert document["nested"][0]["command"] == ["/bin/echo", value]
    assert document["files"][0]["contents"] == f"first line\nvalue: {value}\nlast line\n"


@settings(max_examples=200, deadline=None)
@given(st.text(), st.text())
def test_two_variables_side_by_side(a: str, b: str) -> None:
    template = 'k: ${A}${B}\nq: "${A} ${B}"\nl: |\n  ${A}\n  ${B}\n'
    document = yaml.safe_load(render_yaml(template, {"A": a, "B": b}))
    assert document == {"k": a + b, "q": f"{a} {b}", "l": f"{a}\n{b}\n"}


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=200))
def test_values_as_mapping_keys(value: str) -> None:
    template = "prefix_${K}: 1\n${K}: 2\nother: 3\n"
    document = yaml.safe_load(render_yaml(template, {"K": "k" + value}))
    assert document == {"prefix_k" + value: 1, "k" + value: 2, "other": 3}


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_dq_escape_round_trips(text: str) -> None:
    escaped = dq_escape(text)
    assert "\n" not in escaped and "\r" not in escaped
    assert yaml.safe_load('"' + escaped + '"') == text
    assert yaml.safe_load('k: "' + escaped + '"') == {"k": text}


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_is_plain_safe_means_it_reads_back(text: str) -> None:
    if is_plain_safe(text):
        assert yaml.safe_load(f"k: {text}\n") == {"k": text}
        assert yaml.safe_load(f"- {text}\n") == [text]
    if is_plain_safe(text, flow=True):
        assert yaml.safe_load(f"[{text}, x]") == [text, "x"]
        assert yaml.safe_load(f"{{k: {text}}}") == {"k": text}


@pytest.mark.parametrize(
    ("text", "safe"),
    [
        ("hello world", True),
        ("linuxkit/kernel:6.6.13", True),
        ("a:b", True),
        ("a: b", False),
        ("a #b", False),
        ("yes", False),
        ("0600", False),
        ("1e3", False),
        ("null", False),
        ("", False),
        (" lead", False),
        ("trail ", False),
        ("-x", False),
        ("x\ny", False),
        ("a,b", True),
    ],
)
def test_is_plain_safe_examples(text: str, safe: bool) -> None:
    assert is_plain_safe(text) is safe
    assert not is_plain_safe("a,b", flow=True)


# ---------------------------------------------------------------------------
# How each context is written
# ---------------------------------------------------------------------------


def test_simple_values_stay_readable() -> None:
    template = "a: ${V}\nb: \"${V}\"\nc: '${V}'\nd: |\n  ${V}\n"
    assert (
        render_yaml(template, {"V": "hello"})
        == "a: hello\nb: \"hello\"\nc: 'hello'\nd: |\n  hello\n"
    )


def test_plain_becomes_double_quoted_when_needed() -> None:
    assert render_yaml("a: ${V}\n", {"V": "x: y"}) == 'a: "x: y"\n'
    assert render_yaml("a: img:${V} # c\n", {"V": "1 #2"}) == 'a: "img:1 #2" # c\n'
    assert render_yaml("a: ${V}\n", {"V": "yes"}) == 'a: "yes"\n'
    assert render_yaml("a: [${V}]\n", {"V": "x,y"}) == 'a: ["x,y"]\n'


def test_single_quotes_are_doubled_or_the_scalar_becomes_double_quoted() -> None:
    assert render_yaml("a: '${V}'\n", {"V": "it's"}) == "a: 'it''s'\n"
    assert render_yaml("a: 'x ''${V}'''\n", {"V": "l1\nl2"}) == "a: \"x 'l1\\nl2'\"\n"


def test_multiline_value_in_literal_block_is_indented() -> None:
    template = "files:\n  - contents: |\n      ${V}\n    mode: x\n"
    rendered = render_yaml(template, {"V": "one\ntwo\n  three"})
    assert rendered == "files:\n  - contents: |\n      one\n      two\n        three\n    mode: x\n"


def test_block_falls_back_to_double_quoted_when_it_cannot_hold_the_value() -> None:
    template = "a: |  # keep me\n  ${V}\nb: 1\n"
    rendered = render_yaml(template, {"V": "x\n\n"})  # clip chomping would lose the newlines
    assert rendered == 'a: "x\\n\\n\\n"  # keep me\nb: 1\n'
    assert yaml.safe_load(rendered) == {"a": "x\n\n\n", "b": 1}


def test_typed_default_keeps_its_type() -> None:
    template = "n: ${N:-3}\nb: ${B:-true}\ns: ${S:-text}\n"
    assert yaml.safe_load(render_yaml(template, {})) == {"n": 3, "b": True, "s": "text"}
    assert yaml.safe_load(render_yaml(template, {"N": "5", "B": "false", "S": "7"})) == {
        "n": 5,
        "b": False,
        "s": "7",
    }
    # A value of another type is still text, exactly.
    assert yaml.safe_load(render_yaml(template, {"N": "five", "B": "maybe"})) == {
        "n": "five",
        "b": "maybe",
        "s": "text",
    }


def test_escaped_references_and_defaults_are_literal() -> None:
    template = 'a: "$${V}"\nb: ${W:-plain default}\nc: ${V}\n'
    assert yaml.safe_load(render_yaml(template, {"V": "v"})) == {
        "a": "${V}",
        "b": "plain default",
        "c": "v",
    }


def test_windows_line_endings() -> None:
    template = "a: ${V}\r\nb: |\r\n  ${V}\r\n"
    assert yaml.safe_load(render_yaml(template, {"V": "x\ny"})) == {"a": "x\ny", "b": "x\ny\n"}


def test_documents_with_markers_and_directives() -> None:
    template = "%YAML 1.1\n---\n# c\nk: ${V}\n...\n"
    assert yaml.safe_load(render_yaml(template, {"V": "a: b"})) == {"k": "a: b"}


def test_multiline_single_quoted_refuses_what_it_cannot_hold() -> None:
    template = "k: 'one\n  ${V} two'\n"
    assert yaml.safe_load(render_yaml(template, {"V": "it's"})) == {"k": "one it's two"}
    with pytest.raises(TemplateError, match="multi-line single-quoted"):
        render_yaml(template, {"V": "x\ny"})


def test_multiline_plain_scalar_refuses_a_value_needing_quotes() -> None:
    template = "k: hello ${V}\n  world\nother: 1\n"
    assert yaml.safe_load(render_yaml(template, {"V": "there"})) == {
        "k": "hello there world",
        "other": 1,
    }
    with pytest.raises(TemplateError) as info:
        render_yaml(template, {"V": "a: b"}, name="t")
    assert "the value of V cannot be used at line 1, column 10" in str(info.value)


def test_no_variables_is_a_validity_check_only() -> None:
    assert render_yaml("a: 1\n", {"UNUSED": "x"}) == "a: 1\n"


def test_missing_variables_are_listed() -> None:
    with pytest.raises(MissingVariablesError) as info:
        render_yaml("a: ${A}\nb: ${B}\nc: ${A}\n", {})
    assert info.value.names == ["A", "B"]


# ---------------------------------------------------------------------------
# Refusals and YAML errors: one line, with the line and column
# ---------------------------------------------------------------------------


def test_comment_refuses_line_breaks() -> None:
    template = "a: 1\n# note: ${V}\n"
    assert render_yaml(template, {"V": "fine: # here"}) == "a: 1\n# note: fine: # here\n"
    with pytest.raises(TemplateError) as info:
        render_yaml(template, {"V": "x\nkernel: evil"}, name="t")
    message = str(info.value)
    assert message.startswith("template 't': the value of V cannot be used at line 2, column 9")
    assert "comment" in message and "\n" not in message


def test_anchor_refuses_odd_values() -> None:
    template = "a: &${V} 1\nb: *${V}\n"
    assert yaml.safe_load(render_yaml(template, {"V": "anc_1"})) == {"a": 1, "b": 1}
    with pytest.raises(TemplateError, match="anchor, alias, tag or directive"):
        render_yaml(template, {"V": "x y"})


def test_empty_value_alone_in_multiline_quoted_scalar_is_refused() -> None:
    template = 'a: "first\n  ${V}\n  last"\n'
    assert yaml.safe_load(render_yaml(template, {"V": "mid"})) == {"a": "first mid last"}
    with pytest.raises(TemplateError, match="line 2, column 3"):
        render_yaml(template, {"V": ""})


@pytest.mark.parametrize(
    ("template", "where"),
    [
        ("a: 1\nb: [unclosed\nc: 2\n", "line 3, column 2"),
        ("kernel:\n  image: x\n bad: indent\n", "line 3, column 2"),
        ("a: ${LONG_NAME_VARIABLE} b: c\n", "line 1, column 27"),
        ('k: "${V}" trailing: x\n', "line 1, column 11"),
    ],
)
def test_invalid_template_reports_line_and_column(template: str, where: str) -> None:
    with pytest.raises(TemplateError) as info:
        render_yaml(template, {"LONG_NAME_VARIABLE": "v" * 50, "V": "x" * 30}, name="broken")
    message = str(info.value)
    assert message.startswith("template 'broken' is not valid YAML at " + where), message
    assert "\n" not in message


def test_core_dev_with_an_ssh_key(workspace: Path) -> None:
    from lk_core.plugins import get_plugins
    from lk_templates.registry import apply_template

    key = "ssh-ed25519 AAAA... me@host"
    sources = get_plugins().template_sources()
    document = yaml.safe_load(apply_template(sources, "core-dev", {"SSH_KEY": key}))
    entry = next(f for f in document["files"] if f["path"] == "root/.ssh/authorized_keys")
    assert entry == {"path": "root/.ssh/authorized_keys", "mode": "0600", "contents": key + "\n"}
