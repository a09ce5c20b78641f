"""``NAME=VALUE`` assignments: ``--var``, ``exec -e``, variable files.

One parser for every place lk reads them. A name matches
``[A-Za-z_][A-Za-z0-9_]*``; the value is everything after the first ``=``
(it may contain ``=`` and may be empty).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from lk_core.errors import LkError, UsageError

__all__ = ["NAME_PATTERN", "is_variable_name", "parse_assignment", "parse_assignments"]

#: What a variable name looks like.
NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_]*"
_NAME_RE = re.compile(NAME_PATTERN)


def is_variable_name(name: str) -> bool:
    """Return whether ``name`` matches ``[A-Za-z_][A-Za-z0-9_]*``."""
    return _NAME_RE.fullmatch(name) is not None


def parse_assignment(item: str, what: str, error: type[LkError] = UsageError) -> tuple[str, str]:
    """Split ``NAME=VALUE`` on its first ``=``; return ``(NAME, VALUE)``.

    ``what`` starts the one-line message of the ``error`` raised for an item
    without ``=`` or with an invalid name, e.g. ``"invalid -e 'x'"`` or
    ``"vars.env, line 3"``.
    """
    name, separator, value = item.partition("=")
    if not separator:
        raise error(f"{what}: expected NAME=VALUE")
    if not is_variable_name(name):
        raise error(
            f"{what}: invalid variable name {name!r} (names must match [A-Za-z_][A-Za-z0-9_]*)"
        )
    return name, value


def parse_assignments(
    items: Iterable[str],
    what: str = "invalid variable assignment",
    error: type[LkError] = UsageError,
) -> dict[str, str]:
    """Turn ``["NAME=VALUE", ...]`` into a dict; later duplicates win.

    The dict keeps the order in which names first appear. A bad item raises
    ``error`` with ``"<what> 'ITEM': ..."`` (see :func:`parse_assignment`).
    """
    result: dict[str, str] = {}
    for item in items:
        name, value = parse_assignment(item, f"{what} {item!r}", error)
        result[name] = value
    return result
