"""Timestamps as RFC 3339 strings (the reference state file's format).

:mod:`datetime` is imported by the functions that need it, so that
:mod:`lk_core.liveness` (imported by every hypervisor plugin) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime


def now_rfc3339() -> str:
    """The current UTC time, e.g. ``2026-11-28T16:00:00Z``."""
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_rfc3339(text: str) -> datetime | None:
    """Parse a timestamp written by :func:`now_rfc3339` (or the reference); None if invalid."""
    if not text:
        return None
    from datetime import datetime

    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def human_since(text: str, now: datetime | None = None) -> str:
    """``"3 minutes ago"`` style text for a timestamp ("" if unknown)."""
    then = parse_rfc3339(text)
    if then is None:
        return ""
    from datetime import datetime, timezone

    if then.tzinfo is None:
        then = then.replace(tzinfo=timezone.utc)
    seconds = int(((now or datetime.now(timezone.utc)) - then).total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now" if seconds < 2 else f"{seconds} seconds ago"
