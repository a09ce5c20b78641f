"""Template names, file extensions and descriptions.

A template name is 1-128 characters of ``[A-Za-z0-9._+-]``, starting with a
letter or digit and without ``..``: no path separators, no traversal, no
hidden files. Anything else is a :class:`~lk_core.errors.UsageError`.
"""

from __future__ import annotations

import re

from lk_core.errors import UsageError

from lk_templates.run_defaults import DIRECTIVE_RE

__all__ = [
    "DEFAULT_DESCRIPTION",
    "TEMPLATE_EXTENSIONS",
    "describe_template",
    "is_template_name",
    "validate_template_name",
]

#: File extensions of template files, in order of preference.
TEMPLATE_EXTENSIONS: tuple[str, ...] = (".yml", ".yaml")
#: Description of a template file without a header comment.
DEFAULT_DESCRIPTION = "User-defined template"

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")


def is_template_name(name: str) -> bool:
    """Whether ``name`` is a valid template name (see :func:`validate_template_name`)."""
    return isinstance(name, str) and NAME_RE.fullmatch(name) is not None and ".." not in name


def validate_template_name(name: str) -> str:
    """Return ``name`` if it is a valid template name, else raise :class:`UsageError`.

    Valid names are 1-128 characters of ``[A-Za-z0-9._+-]``, start with a
    letter or digit and contain no ``..``. So a name can never be a path, a
    traversal (``../x``) or a hidden file (``.x``).
    """
    if not is_template_name(name):
        shown = name if isinstance(name, str) else repr(name)
        raise UsageError(
            f"invalid template name {shown!r}: use letters, digits, '.', '_', '+' and '-' "
            "(no path separators, no leading dot, no '..')"
        )
    return name


def hint_for_missing(name: str) -> str:
    for ext in TEMPLATE_EXTENSIONS:
        if name.endswith(ext):
            return f" (names have no extension: try {name[: -len(ext)]!r})"
    return ""


def describe_template(content: str, default: str = DEFAULT_DESCRIPTION) -> str:
    """Return a template's description: its first non-empty ``#`` comment line.

    Only the header counts (the comment lines before the first YAML line);
    ``# lk:`` directive lines, ``---`` and ``%`` directives are skipped. Returns
    ``default`` when the header has no such line.
    """
    for raw in content.splitlines():
        line = raw.strip()
        if not line or line == "---" or line.startswith("%"):
            continue
        if not line.startswith("#"):
            break
        text = line.lstrip("#").strip()
        if text and not DIRECTIVE_RE.match(raw):
            return text
    return default
