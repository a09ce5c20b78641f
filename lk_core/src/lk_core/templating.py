"""The ``${VAR}`` template engine, and templates through the template-source hook.

lk-core knows no template: :func:`get_template`, :func:`list_templates` and
:func:`apply_template` ask the sources plugins contribute
(``register_template_sources``; lk-templates is one such plugin) and
substitute variables with :func:`apply_variables`, nothing more. Escaping
values for YAML, variable files and building images are lk-templates' work.

Syntax
------
``${NAME}``
    A *required* variable. Rendering fails with
    :class:`~lk_core.errors.MissingVariablesError` if ``NAME`` is not given.
``${NAME:-default}``
    An *optional* variable. Renders as the given value of ``NAME`` if there is
    one, else as ``default``. The default is the text after ``:-`` up to the
    first ``}``, so a default cannot contain ``}`` (it may be empty).
``$${NAME}`` and ``$${NAME:-default}``
    An escape. Renders as the literal text ``${NAME}`` (resp.
    ``${NAME:-default}``) and is not a variable: it is never required and never
    extracted.

``NAME`` must match ``[A-Za-z_][A-Za-z0-9_]*``. Anything that is not a
well-formed reference (``${1X}``, ``${}``, ``${A-x}``, an unclosed ``${A``,
``$VAR``, a lone ``$``, ``$$`` not followed by a reference) is literal text and
is copied unchanged; in particular ``$${1X}`` stays ``$${1X}``.

Rules
-----
* The text is scanned once, left to right, taking the leftmost match at each
  point; an escape (``$`` directly before a reference) wins over the plain
  reference. So ``$$${A}`` is a literal ``$`` followed by the escape ``$${A}``
  and renders as ``$${A}``.
* Single pass: inserted text (a given value or a default) is never scanned
  again. A value containing ``${OTHER}`` is output verbatim.
* Presence wins: a variable given as the empty string is provided, and its
  (empty) value is used instead of any default.
* A name used both as ``${A}`` and ``${A:-x}`` is required (rendering without
  it cannot succeed); :func:`extract_variables` lists it only among the
  required names. A name used only with defaults is optional and its default is
  the one of its first occurrence.
* All missing required names are reported together, each once, in the order of
  their first required (default-less) occurrence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, NamedTuple

from lk_core.assignments import NAME_PATTERN as _NAME_PATTERN
from lk_core.assignments import is_variable_name
from lk_core.errors import MissingVariablesError, NotFoundError, TemplateError

if TYPE_CHECKING:
    from lk_core.model import Template
    from lk_core.plugins import Plugins

__all__ = [
    "Token",
    "apply_template",
    "apply_variables",
    "escape",
    "extract_variables",
    "get_template",
    "is_variable_name",
    "list_templates",
    "parse_assignments",
    "tokens",
]

#: The one-line error when no plugin contributes a template source.
NO_SOURCES = "no template sources are installed: pip install lk-templates"

# One token: an optional escaping ``$``, then ``${NAME}`` or ``${NAME:-default}``.
# The leading ``\$?`` is greedy, so ``$${A}`` is matched as one escape token
# rather than a literal ``$`` followed by the reference ``${A}``.
_TOKEN_RE = re.compile(
    r"(?P<escape>\$)?"
    r"(?P<reference>\$\{(?P<name>" + _NAME_PATTERN + r")(?::-(?P<default>[^}]*))?\})"
)


class Token(NamedTuple):
    """One reference or escape found in a template."""

    start: int
    end: int
    name: str
    default: str | None  # None for a reference without a default
    escaped: bool  # True for ``$${...}``
    reference: str  # the ``${...}`` text, without the escaping ``$``


def tokens(content: str) -> Iterator[Token]:
    """Yield the references and escapes of ``content`` in order (renderers build on this)."""
    for match in _TOKEN_RE.finditer(content):
        yield Token(
            start=match.start(),
            end=match.end(),
            name=match.group("name"),
            default=match.group("default"),
            escaped=match.group("escape") is not None,
            reference=match.group("reference"),
        )


def extract_variables(content: str) -> tuple[list[str], dict[str, str]]:
    """Return the variables a template uses.

    The result is ``(required, optional)``:

    * ``required`` lists each name that has at least one occurrence without a
      default, once, in the order of its first such occurrence. Rendering
      fails unless all of them are given.
    * ``optional`` maps each name that only ever occurs with a default to the
      default of its first occurrence, in order of first appearance.

    Escaped references (``$${NAME}``) are not variables and are not listed.
    """
    required: dict[str, None] = {}
    defaults: dict[str, str] = {}
    for token in tokens(content):
        if token.escaped:
            continue
        if token.default is None:
            required.setdefault(token.name, None)
        else:
            defaults.setdefault(token.name, token.default)
    optional = {name: value for name, value in defaults.items() if name not in required}
    return list(required), optional


def apply_variables(content: str, variables: Mapping[str, str]) -> str:
    """Render ``content``, substituting the references it contains.

    ``${NAME}`` and ``${NAME:-default}`` become ``variables[NAME]`` when
    ``NAME`` is a key of ``variables`` (even if the value is empty);
    otherwise ``${NAME:-default}`` becomes ``default``. ``$${...}`` escapes
    render without their first ``$``. Inserted text is never scanned again.
    Keys of ``variables`` the template does not use are ignored.

    Raises :class:`~lk_core.errors.MissingVariablesError` listing every
    required name that is not given (see :func:`extract_variables`), each
    once, in order of first appearance; nothing is rendered in that case.
    """
    required, _ = extract_variables(content)
    missing = [name for name in required if name not in variables]
    if missing:
        raise MissingVariablesError(missing)

    parts: list[str] = []
    position = 0
    for token in tokens(content):
        parts.append(content[position : token.start])
        if token.escaped:
            parts.append(token.reference)
        elif token.name in variables:
            parts.append(variables[token.name])
        elif token.default is not None:
            parts.append(token.default)
        else:  # pragma: no cover - every required name was checked above
            raise MissingVariablesError([token.name])
        position = token.end
    parts.append(content[position:])
    return "".join(parts)


def escape(text: str) -> str:
    """Return a template that renders exactly as ``text``.

    Every reference and escape in ``text`` gets one more leading ``$``, so
    ``apply_variables(escape(text), {}) == text`` and ``escape(text)`` uses no
    variables.
    """
    return _TOKEN_RE.sub(lambda match: "$" + match.group(0), text)


def parse_assignments(items: Iterable[str]) -> dict[str, str]:
    """Turn ``["NAME=VALUE", ...]`` (``--var`` arguments) into a dict.

    Each item is split on its first ``=``, so the value may contain ``=`` and
    may be empty. Later duplicates win; the dict keeps the order in which
    names first appear. Raises :class:`~lk_core.errors.TemplateError` naming
    the first bad item (see :func:`lk_core.assignments.parse_assignments`).
    """
    from lk_core.assignments import parse_assignments as parse

    return parse(items, "invalid variable assignment", TemplateError)


# ---------------------------------------------------------------------------
# Templates through the template-source hook
# ---------------------------------------------------------------------------


def get_template(plugins: Plugins, name: str) -> str:
    """The text of template ``name`` from the highest-priority source that has it.

    Raises :class:`~lk_core.errors.NotFoundError` when no source has it, or
    when no template source is installed at all.
    """
    sources = plugins.template_sources()
    if not sources:
        raise NotFoundError(NO_SOURCES)
    for source in sources:
        content = source.read_template(name)
        if content is not None:
            return content
    raise NotFoundError(f"template {name!r} not found")


def list_templates(plugins: Plugins) -> list[Template]:
    """Every template of every source, one per name (the source that provides it), by name.

    Raises :class:`~lk_core.errors.NotFoundError` when no template source is
    installed.
    """
    sources = plugins.template_sources()
    if not sources:
        raise NotFoundError(NO_SOURCES)
    found: dict[str, Template] = {}
    for source in sources:
        for template in source.list_templates():
            found.setdefault(template.name, template)
    return [found[name] for name in sorted(found)]


def apply_template(plugins: Plugins, name: str, variables: Mapping[str, str]) -> str:
    """Template ``name`` with ``${VAR}`` references substituted (:func:`apply_variables`)."""
    return apply_variables(get_template(plugins, name), variables)
