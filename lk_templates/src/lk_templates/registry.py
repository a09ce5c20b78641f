"""Finding and listing templates across sources, by precedence.

Sources are consulted by ``priority``, highest first; ties keep the order in
which plugins returned them. The first source that has a name provides it; the
same name in a lower source is *shadowed* (``lk templates list`` shows it,
marked). Every function takes the sources to consult (``plugins.template_sources()``
for the installed plugins'), so nothing here reaches for global state.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
from lk_core.errors import LkError, NotFoundError, PluginError, TemplateError
from lk_core.model import Template

from lk_templates.names import describe_template, hint_for_missing, validate_template_name

if TYPE_CHECKING:
    from lk_core.template_source import TemplateSource

__all__ = [
    "NO_SOURCES",
    "TemplateInfo",
    "apply_template",
    "check_known_variables",
    "check_required_values",
    "find_template",
    "get_template",
    "list_templates",
    "ordered",
    "template_variables",
]

#: The one-line error when no template source is installed.
NO_SOURCES = "no template sources are installed: install lk-templates (pip install lk-templates)"


@attrs.frozen
class TemplateInfo:
    """One template as ``lk templates list`` shows it.

    ``shadowed_by`` names the source whose template of the same name wins
    (empty for the template that is used).
    ``shadows`` (set by :func:`find_template` only) names the highest source
    whose template of the same name this one hides.
    """

    name: str
    description: str
    source: str
    path: str = ""
    priority: int = 0
    shadowed_by: str = ""
    shadows: str = ""

    @property
    def shadowed(self) -> bool:
        """True when a higher-priority source has a template of the same name."""
        return bool(self.shadowed_by)

    @property
    def template(self) -> Template:
        """The :class:`~lk_core.model.Template` record."""
        return Template(self.name, self.description, self.source, self.path)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``lk templates list --json``)."""
        return {
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "path": self.path,
            "priority": self.priority,
            "shadowed": self.shadowed,
            "shadowed_by": self.shadowed_by or None,
        }


def ordered(sources: Iterable[TemplateSource]) -> list[TemplateSource]:
    """``sources`` highest priority first, ties in the given order."""
    return sorted(sources, key=lambda s: -s.priority)


def _call(source: TemplateSource, what: str, function: Callable[[], Any]) -> Any:
    """Call into a source; turn a crash (not an LkError) into a one-line PluginError."""
    try:
        return function()
    except LkError:
        raise
    except Exception as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise PluginError(
            f"template source {getattr(source, 'name', '?')!r} failed to {what}: {detail}"
        ) from exc


def list_templates(
    sources: Iterable[TemplateSource], include_shadowed: bool = False
) -> list[TemplateInfo]:
    """List the templates of every source, sorted by name.

    Without ``include_shadowed`` each name appears once, from the source that
    provides it. With it, templates hidden by a higher-priority source follow
    the winning one (in precedence order) with ``shadowed_by`` set.
    """
    by_name: dict[str, list[TemplateInfo]] = {}
    for source in ordered(sources):
        templates: list[Template] = _call(source, "list templates", source.list_templates)
        seen_here: set[str] = set()
        for template in templates:
            if template.name in seen_here:
                continue
            seen_here.add(template.name)
            entries = by_name.setdefault(template.name, [])
            entries.append(
                TemplateInfo(
                    name=template.name,
                    description=template.description,
                    source=source.name,
                    path=template.path,
                    priority=source.priority,
                    shadowed_by=entries[0].source if entries else "",
                )
            )
    result: list[TemplateInfo] = []
    for name in sorted(by_name):
        entries = by_name[name]
        result.extend(entries if include_shadowed else entries[:1])
    return result


def find_template(sources: Iterable[TemplateSource], name: str) -> tuple[TemplateInfo, str]:
    """Find template ``name``: the winning source's info and the template's text.

    Raises :class:`UsageError` for an invalid name, :class:`TemplateError` if
    no template source is installed, :class:`NotFoundError` if no source has
    the name.
    """
    validate_template_name(name)
    chain = ordered(sources)
    if not chain:
        raise TemplateError(NO_SOURCES)
    for index, source in enumerate(chain):
        content: str | None = _call(
            source, f"read template {name!r}", functools.partial(source.read_template, name)
        )
        if content is None:
            continue
        info = TemplateInfo(name, describe_template(content), source.name, "", source.priority)
        for template in _call(source, "list templates", source.list_templates):
            if template.name == name:
                info = attrs.evolve(info, description=template.description, path=template.path)
                break
        for lower in chain[index + 1 :]:
            names = {t.name for t in _call(lower, "list templates", lower.list_templates)}
            if name in names:
                info = attrs.evolve(info, shadows=lower.name)
                break
        return info, content
    known = sorted({t.name for t in list_templates(chain)})
    available = ", ".join(known) if known else "none"
    raise NotFoundError(
        f"template {name!r} not found{hint_for_missing(name)}; available: {available} "
        "(see 'lk templates list')"
    )


def get_template(sources: Iterable[TemplateSource], name: str) -> str:
    """The text of template ``name`` from the highest-priority source that has it.

    See :func:`find_template` for the errors.
    """
    return find_template(sources, name)[1]


def template_variables(
    sources: Iterable[TemplateSource], name: str
) -> tuple[list[str], dict[str, str]]:
    """Return ``(required, optional)`` for template ``name``.

    ``required`` lists the names without a default in order of first use;
    ``optional`` maps the other names to their defaults (see
    :func:`lk_core.templating.extract_variables`).
    """
    from lk_core.templating import extract_variables

    return extract_variables(get_template(sources, name))


def apply_template(
    sources: Iterable[TemplateSource], name: str, variables: Mapping[str, str]
) -> str:
    """Render template ``name`` with ``variables`` into YAML text.

    Values are escaped for where they land and the result is checked to be
    valid YAML of the template's structure (see
    :func:`lk_templates.render.render_yaml`). Raises
    :class:`~lk_core.errors.MissingVariablesError` listing every missing
    required variable (or one given empty, see :func:`~lk_templates.render.render_yaml`),
    :class:`TemplateError` (one line, with line and column) if the template is
    not valid YAML or a value cannot be placed safely.
    """
    from lk_templates.render import render_yaml

    content = get_template(sources, name)
    check_required_values(name, content, variables)
    return render_yaml(content, variables, name=name)


def check_required_values(name: str, content: str, variables: Mapping[str, str]) -> None:
    """Refuse an empty value for a required variable of template ``name``.

    ``--var SSH_KEY=`` would otherwise render an empty ``authorized_keys``. A
    template that accepts an empty value says so with ``${NAME:-}`` (optional,
    empty by default); a name used both ways is required.
    """
    from lk_core.templating import extract_variables

    required, _ = extract_variables(content)
    empty = [variable for variable in required if variables.get(variable) == ""]
    if empty:
        names = ", ".join(empty)
        raise TemplateError(
            f"template {name}: {names} {'is' if len(empty) == 1 else 'are'} required and "
            "cannot be empty (a template allows an empty value with ${NAME:-})"
        )


def check_known_variables(name: str, content: str, given: Iterable[str]) -> None:
    """Refuse ``--var`` names template ``name`` (text ``content``) does not use.

    A typo would otherwise go unnoticed.
    """
    from lk_core.templating import extract_variables

    required, optional = extract_variables(content)
    known = [*required, *optional]
    unknown = [v for v in given if v not in known]
    if unknown:
        raise TemplateError(
            f"template {name} has no variable {', '.join(unknown)} "
            f"(its variables: {', '.join(known) or 'none'})"
        )
