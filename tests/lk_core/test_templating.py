"""Tests for lk_core.templating: the ${VAR} engine and the seed API over template sources."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from lk_core.errors import LkError, MissingVariablesError, NotFoundError, TemplateError
from lk_core.model import Template
from lk_core.plugins import new_plugins
from lk_core.templating import (
    apply_template,
    apply_variables,
    escape,
    extract_variables,
    get_template,
    is_variable_name,
    list_templates,
    parse_assignments,
)

from lk_core import hookimpl

# --------------------------------------------------------------------------
# Unit tests: rendering
# --------------------------------------------------------------------------


def test_required_variable_is_substituted() -> None:
    assert apply_variables("hello ${NAME}!", {"NAME": "world"}) == "hello world!"


def test_required_variable_missing_raises() -> None:
    with pytest.raises(MissingVariablesError) as info:
        apply_variables("hello ${NAME}", {})
    assert info.value.names == ["NAME"]
    assert isinstance(info.value, TemplateError)
    assert "NAME" in str(info.value)


def test_default_used_when_not_provided() -> None:
    assert apply_variables("mem=${MEM:-1024}", {}) == "mem=1024"


def test_provided_value_wins_over_default() -> None:
    assert apply_variables("mem=${MEM:-1024}", {"MEM": "2048"}) == "mem=2048"


def test_empty_value_counts_as_provided() -> None:
    assert apply_variables("[${A:-dflt}]", {"A": ""}) == "[]"
    assert apply_variables("[${A}]", {"A": ""}) == "[]"


def test_empty_default() -> None:
    assert apply_variables("[${A:-}]", {}) == "[]"
    assert extract_variables("${A:-}") == ([], {"A": ""})


def test_default_ends_at_first_closing_brace() -> None:
    assert apply_variables("${A:-x{y}z}", {}) == "x{yz}"
    assert extract_variables("${A:-x{y}z}") == ([], {"A": "x{y"})


def test_default_may_contain_colon_dash_and_dollar() -> None:
    assert apply_variables("${A:-a:-b$c}", {}) == "a:-b$c"


def test_default_containing_reference_text_is_not_expanded() -> None:
    # The default is "${B" (up to the first "}"); the final "}" is literal.
    assert apply_variables("${A:-${B}}", {"B": "bee"}) == "${B}"
    assert extract_variables("${A:-${B}}") == ([], {"A": "${B"})


@pytest.mark.parametrize(
    "text",
    [
        "${1X}",
        "${}",
        "${ A }",
        "${A-x}",
        "${A:x}",
        "${A",
        "${A:-x",
        "$A",
        "$",
        "a $ b",
        "$$",
        "$$$",
        "$${1X}",
        "${A.B}",
        "${-}",
        "{A}",
        "$ {A}",
        "}${",
    ],
)
def test_malformed_references_are_literal(text: str) -> None:
    assert apply_variables(text, {"A": "VALUE", "X": "VALUE"}) == text
    assert extract_variables(text) == ([], {})


@pytest.mark.parametrize("name", ["A", "_", "_a1", "abc_DEF_123", "Z9"])
def test_valid_names(name: str) -> None:
    assert apply_variables("${" + name + "}", {name: "v"}) == "v"
    assert is_variable_name(name)


@pytest.mark.parametrize("name", ["", "1", "1A", "A-B", "A.B", "é", "A B", "A\n"])
def test_invalid_names(name: str) -> None:
    assert not is_variable_name(name)


def test_non_ascii_letters_are_not_names() -> None:
    assert apply_variables("${é}", {"é": "x"}) == "${é}"


def test_escape_renders_literal_reference() -> None:
    assert apply_variables("$${A}", {"A": "value"}) == "${A}"
    assert apply_variables("$${A:-x}", {"A": "value"}) == "${A:-x}"
    assert apply_variables("$${A}", {}) == "${A}"


def test_escape_is_not_a_variable() -> None:
    assert extract_variables("$${A} $${B:-x}") == ([], {})


def test_escape_next_to_real_reference() -> None:
    assert apply_variables("$${A}${A}", {"A": "v"}) == "${A}v"
    assert extract_variables("$${A}${A}") == (["A"], {})


def test_triple_dollar_is_literal_dollar_then_escape() -> None:
    assert apply_variables("$$${A}", {"A": "v"}) == "$${A}"
    assert extract_variables("$$${A}") == ([], {})


def test_dollar_before_non_reference_stays() -> None:
    assert apply_variables("cost: $5 and $${A}", {}) == "cost: $5 and ${A}"


def test_single_pass_values_are_not_rescanned() -> None:
    result = apply_variables("${A} ${B}", {"A": "${B}", "B": "$${A}"})
    assert result == "${B} $${A}"


def test_single_pass_defaults_are_not_rescanned() -> None:
    assert apply_variables("${A:-$B}", {"B": "x"}) == "$B"


def test_all_missing_names_reported_once_in_order() -> None:
    with pytest.raises(MissingVariablesError) as info:
        apply_variables("${C} ${A} ${C} ${B:-x} ${D} ${A}", {"D": "d"})
    assert info.value.names == ["C", "A"]


def test_extra_variables_are_ignored() -> None:
    assert apply_variables("x", {"UNUSED": "y"}) == "x"


def test_adjacent_references() -> None:
    assert apply_variables("${A}${B}${A}", {"A": "1", "B": "2"}) == "121"


def test_multiline_template() -> None:
    text = "kernel:\n  cmdline: ${CMDLINE:-console=ttyS0}\nname: ${NAME}\n"
    assert apply_variables(text, {"NAME": "vm"}) == (
        "kernel:\n  cmdline: console=ttyS0\nname: vm\n"
    )


# --------------------------------------------------------------------------
# Unit tests: both forms of one name
# --------------------------------------------------------------------------


def test_name_with_and_without_default_is_required() -> None:
    assert extract_variables("${A:-x} ${A}") == (["A"], {})
    assert extract_variables("${A} ${A:-x}") == (["A"], {})


def test_name_with_and_without_default_missing_raises() -> None:
    with pytest.raises(MissingVariablesError) as info:
        apply_variables("${A:-x} ${A}", {})
    assert info.value.names == ["A"]


def test_name_with_and_without_default_provided() -> None:
    assert apply_variables("${A:-x} ${A}", {"A": "v"}) == "v v"


def test_first_default_wins() -> None:
    assert extract_variables("${A:-1} ${A:-2}") == ([], {"A": "1"})
    # Each occurrence still renders with its own default.
    assert apply_variables("${A:-1} ${A:-2}", {}) == "1 2"


def test_required_order_is_first_required_occurrence() -> None:
    text = "${A:-x} ${B} ${A}"
    assert extract_variables(text) == (["B", "A"], {})
    with pytest.raises(MissingVariablesError) as info:
        apply_variables(text, {})
    assert info.value.names == ["B", "A"]


def test_extract_orders() -> None:
    text = "${Z:-z} ${Y} ${X:-x} ${W} ${Y} ${Z:-other} ${V:-v}"
    required, optional = extract_variables(text)
    assert required == ["Y", "W"]
    assert list(optional.items()) == [("Z", "z"), ("X", "x"), ("V", "v")]


def test_extract_no_variables() -> None:
    assert extract_variables("") == ([], {})
    assert extract_variables("plain text { } $") == ([], {})


# --------------------------------------------------------------------------
# Unit tests: escape()
# --------------------------------------------------------------------------


def test_escape_examples() -> None:
    assert escape("${A}") == "$${A}"
    assert escape("$${A}") == "$$${A}"
    assert escape("x ${A:-d} $ ${1}") == "x $${A:-d} $ ${1}"
    assert escape("plain") == "plain"


# --------------------------------------------------------------------------
# Unit tests: parse_assignments
# --------------------------------------------------------------------------


def test_parse_assignments_basic() -> None:
    assert parse_assignments(["A=1", "B_2=two"]) == {"A": "1", "B_2": "two"}


def test_parse_assignments_splits_on_first_equals() -> None:
    assert parse_assignments(["A=x=y=z"]) == {"A": "x=y=z"}


def test_parse_assignments_empty_value() -> None:
    assert parse_assignments(["A="]) == {"A": ""}


def test_parse_assignments_later_duplicates_win() -> None:
    result = parse_assignments(["A=1", "B=2", "A=3"])
    assert result == {"A": "3", "B": "2"}
    assert list(result) == ["A", "B"]


def test_parse_assignments_empty() -> None:
    assert parse_assignments([]) == {}
    assert parse_assignments(iter(())) == {}


def test_parse_assignments_accepts_generator() -> None:
    assert parse_assignments(f"K{i}=v{i}" for i in range(3)) == {
        "K0": "v0",
        "K1": "v1",
        "K2": "v2",
    }


@pytest.mark.parametrize("item", ["A", "", "novalue", "A\nB"])
def test_parse_assignments_missing_equals(item: str) -> None:
    with pytest.raises(TemplateError) as info:
        parse_assignments(["OK=1", item])
    message = str(info.value)
    assert repr(item) in message
    assert "\n" not in message
    assert not isinstance(info.value, MissingVariablesError)


@pytest.mark.parametrize("item", ["=v", "1A=v", "A-B=v", " A=v", "A =v", "é=v", "A\n=v"])
def test_parse_assignments_invalid_name(item: str) -> None:
    with pytest.raises(TemplateError) as info:
        parse_assignments([item])
    message = str(info.value)
    assert repr(item) in message
    assert "\n" not in message


def test_parse_assignments_error_is_lk_error() -> None:
    with pytest.raises(LkError):
        parse_assignments(["bad"])


# --------------------------------------------------------------------------
# Property-based tests
# --------------------------------------------------------------------------

NAMES = st.one_of(
    st.sampled_from(["A", "B", "_", "x1", "LONG_NAME"]),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True),
)
# Arbitrary text, biased towards the characters the syntax uses.
TEXT = st.text(
    alphabet=st.one_of(st.sampled_from(list("${}:-_A1 ")), st.characters()),
    max_size=30,
)
# Literal text that cannot combine with a neighbouring token: no "$".
LITERAL = TEXT.map(lambda s: s.replace("$", ""))
DEFAULT = TEXT.map(lambda s: s.replace("}", ""))
# Values deliberately contain reference syntax.
VALUE = st.one_of(
    TEXT,
    NAMES.map(lambda n: "${" + n + "}"),
    NAMES.map(lambda n: "$${" + n + ":-d}"),
)


@dataclass(frozen=True)
class Part:
    """One piece of a generated template."""

    kind: str  # "literal", "required", "optional", "escaped"
    text: str = ""
    name: str = ""
    default: str | None = None

    def source(self) -> str:
        """The template text of this part."""
        if self.kind == "literal":
            return self.text
        body = self.name if self.default is None else f"{self.name}:-{self.default}"
        reference = "${" + body + "}"
        return "$" + reference if self.kind == "escaped" else reference


PARTS = st.lists(
    st.one_of(
        LITERAL.map(lambda t: Part("literal", text=t)),
        NAMES.map(lambda n: Part("required", name=n)),
        st.builds(lambda n, d: Part("optional", name=n, default=d), NAMES, DEFAULT),
        st.builds(
            lambda n, d: Part("escaped", name=n, default=d),
            NAMES,
            st.one_of(st.none(), DEFAULT),
        ),
    ),
    max_size=12,
)


def model_extract(parts: list[Part]) -> tuple[list[str], dict[str, str]]:
    """Independent model of extract_variables over generated parts."""
    required: list[str] = []
    for part in parts:
        if part.kind == "required" and part.name not in required:
            required.append(part.name)
    optional: dict[str, str] = {}
    for part in parts:
        if part.kind == "optional" and part.name not in required and part.name not in optional:
            assert part.default is not None
            optional[part.name] = part.default
    return required, optional


def model_render(parts: list[Part], variables: dict[str, str]) -> str:
    """Independent model of apply_variables (all required names given)."""
    out = []
    for part in parts:
        if part.kind == "literal":
            out.append(part.text)
        elif part.kind == "escaped":
            out.append(part.source()[1:])
        elif part.name in variables:
            out.append(variables[part.name])
        else:
            assert part.default is not None
            out.append(part.default)
    return "".join(out)


@given(st.text().filter(lambda s: "$" not in s), st.dictionaries(NAMES, VALUE))
def test_text_without_dollar_is_identity(text: str, variables: dict[str, str]) -> None:
    assert apply_variables(text, variables) == text
    assert extract_variables(text) == ([], {})


@given(PARTS)
def test_extract_matches_model(parts: list[Part]) -> None:
    text = "".join(part.source() for part in parts)
    assert extract_variables(text) == model_extract(parts)


@given(PARTS, st.dictionaries(NAMES, VALUE), st.data())
def test_render_matches_model(
    parts: list[Part], extra: dict[str, str], data: st.DataObject
) -> None:
    text = "".join(part.source() for part in parts)
    required, _ = model_extract(parts)
    variables = dict(extra)
    for name in required:
        if name not in variables:
            variables[name] = data.draw(VALUE)
    assert apply_variables(text, variables) == model_render(parts, variables)


@given(PARTS, st.dictionaries(NAMES, VALUE))
def test_missing_names_match_model(parts: list[Part], variables: dict[str, str]) -> None:
    text = "".join(part.source() for part in parts)
    required, _ = model_extract(parts)
    missing = [name for name in required if name not in variables]
    if missing:
        with pytest.raises(MissingVariablesError) as info:
            apply_variables(text, variables)
        assert info.value.names == missing
    else:
        apply_variables(text, variables)


@given(TEXT)
@example("${A} ${A:-x} ${B:-y}")
def test_extract_required_equals_missing_with_no_vars(text: str) -> None:
    required, optional = extract_variables(text)
    assert len(required) == len(set(required))
    assert not set(required) & set(optional)
    if required:
        with pytest.raises(MissingVariablesError) as info:
            apply_variables(text, {})
        assert info.value.names == required
    else:
        apply_variables(text, {})


@given(TEXT, VALUE)
def test_providing_all_required_never_raises(text: str, value: str) -> None:
    required, _ = extract_variables(text)
    apply_variables(text, dict.fromkeys(required, value))


@given(st.lists(NAMES, min_size=1, max_size=6, unique=True), st.data())
def test_values_appear_verbatim_and_are_not_expanded(names: list[str], data: st.DataObject) -> None:
    # Every value refers to other names; a second expansion would change it.
    values = {
        name: data.draw(VALUE) + "${" + data.draw(st.sampled_from(names)) + "}" for name in names
    }
    text = "|".join("${" + name + "}" for name in names)
    assert apply_variables(text, values) == "|".join(values[name] for name in names)


@given(TEXT, st.dictionaries(NAMES, VALUE))
def test_escape_round_trip(text: str, variables: dict[str, str]) -> None:
    escaped = escape(text)
    assert apply_variables(escaped, variables) == text
    assert extract_variables(escaped) == ([], {})


@given(NAMES, st.one_of(st.none(), DEFAULT), VALUE)
def test_escaped_reference_round_trip(name: str, default: str | None, value: str) -> None:
    reference = "${" + (name if default is None else f"{name}:-{default}") + "}"
    assert apply_variables("$" + reference, {name: value}) == reference
    assert apply_variables("$" + reference, {}) == reference
    assert extract_variables("$" + reference) == ([], {})


@given(st.dictionaries(NAMES, TEXT.filter(lambda s: "\n" not in s)))
def test_parse_assignments_round_trip(variables: dict[str, str]) -> None:
    items = [f"{name}={value}" for name, value in variables.items()]
    assert parse_assignments(items) == variables


# --------------------------------------------------------------------------
# Templates through the template-source hook, without lk-templates
# --------------------------------------------------------------------------


class _DictSource:
    def __init__(self, name: str, priority: int, templates: dict[str, str]) -> None:
        self.name = name
        self.priority = priority
        self.templates = templates

    def list_templates(self) -> list[Template]:
        return [Template(n, f"from {self.name}", self.name) for n in sorted(self.templates)]

    def read_template(self, name: str) -> str | None:
        return self.templates.get(name)


class _SourcePlugin:
    @hookimpl
    def register_template_sources(self) -> list[_DictSource]:
        return [
            _DictSource("low", 1, {"hello": "low ${WHO}", "only-low": "x: ${N:-1}"}),
            _DictSource("high", 9, {"hello": "hi: ${WHO} # ${MOOD:-ok}"}),
        ]


def test_seed_api_over_a_custom_source_without_lk_templates() -> None:
    plugins = new_plugins(extra=[("src", _SourcePlugin())], entry_points=False)
    assert "templates" not in plugins.infos
    assert [(t.name, t.source) for t in list_templates(plugins)] == [
        ("hello", "high"),
        ("only-low", "low"),
    ]
    assert get_template(plugins, "hello") == "hi: ${WHO} # ${MOOD:-ok}"
    assert get_template(plugins, "only-low") == "x: ${N:-1}"
    # Plain ${VAR} substitution, as the reference API defines it: no YAML escaping.
    assert apply_template(plugins, "hello", {"WHO": "a: b"}) == "hi: a: b # ok"
    assert apply_template(plugins, "only-low", {}) == "x: 1"
    with pytest.raises(MissingVariablesError):
        apply_template(plugins, "hello", {})
    with pytest.raises(NotFoundError, match="'nope' not found"):
        get_template(plugins, "nope")


def test_seed_api_without_any_source_says_so_in_one_line() -> None:
    plugins = new_plugins(entry_points=False)
    for call in (
        lambda: get_template(plugins, "core-dev"),
        lambda: list_templates(plugins),
        lambda: apply_template(plugins, "core-dev", {}),
    ):
        with pytest.raises(NotFoundError) as info:
            call()
        message = str(info.value)
        assert "no template sources are installed" in message and "lk-templates" in message
        assert "\n" not in message


def test_lk_core_exports_the_seed_api() -> None:
    import lk_core

    assert lk_core.get_template is get_template
    assert lk_core.list_templates is list_templates
    assert lk_core.apply_template is apply_template
