"""``lk ps --filter KEY=VALUE``: docker's semantics (one key ORed, different keys ANDed).

Keys: ``status`` (exact: starting, running, stopped, error, broken), ``name``
(part of the name), ``image`` (part of the image path), ``hypervisor``
(exact, any case).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from lk_core.errors import UsageError
from lk_core.model import Container, Status

__all__ = ["FILTER_KEYS", "matches", "parse_filters"]

FILTER_KEYS = ("status", "name", "image", "hypervisor")
_STATUSES = tuple(s.value for s in Status)


def parse_filters(items: Iterable[str]) -> dict[str, list[str]]:
    """``["status=running", "name=web"]`` as ``{"status": ["running"], "name": ["web"]}``."""
    filters: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep or not value:
            raise UsageError(
                f"invalid --filter {item!r}: use KEY=VALUE (keys: {', '.join(FILTER_KEYS)})"
            )
        if key not in FILTER_KEYS:
            raise UsageError(f"unknown --filter key {key!r}: use one of {', '.join(FILTER_KEYS)}")
        if key == "status" and value not in _STATUSES:
            raise UsageError(
                f"invalid --filter status {value!r}: use one of {', '.join(_STATUSES)}"
            )
        filters.setdefault(key, []).append(value)
    return filters


def _matches_one(container: Container, key: str, value: str) -> bool:
    if key == "status":
        return container.status.value == value
    if key == "name":
        return bool(container.name) and value in container.name
    if key == "image":
        return value in container.image
    return container.hypervisor.lower() == value.lower()


def matches(container: Container, filters: dict[str, list[str]]) -> bool:
    """True if ``container`` passes every key (any of its values)."""
    return all(
        any(_matches_one(container, key, value) for value in values)
        for key, values in filters.items()
    )


def apply_filters(
    containers: Sequence[Container], filters: dict[str, list[str]]
) -> list[Container]:
    """The containers that pass ``filters``, in order."""
    return [c for c in containers if matches(c, filters)]
