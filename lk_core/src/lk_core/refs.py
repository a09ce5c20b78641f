"""Resolving what users type to name a container: an ID, a name, or a unique prefix."""

from __future__ import annotations

from collections.abc import Iterable

from lk_core.errors import AmbiguousReferenceError, NotFoundError, UsageError
from lk_core.model import Container


def resolve_ref(ref: str, containers: Iterable[Container]) -> Container:
    """Find the container ``ref`` names.

    An exact ID wins, then an exact name; otherwise ``ref`` must be a prefix of exactly
    one container's ID (docker's rule). A prefix of a name matches nothing, so
    ``lk rm -f w`` never removes ``web``.
    """
    ref = ref.strip()
    if not ref:
        raise UsageError("empty container reference")
    candidates = list(containers)
    for what, exact in (
        ("ID", [c for c in candidates if c.id == ref]),
        ("name", [c for c in candidates if c.name == ref]),
    ):
        if len(exact) == 1:
            return exact[0]  # an exact ID wins, then an exact name
        if len(exact) > 1:  # the same ID or name on several hosts
            where = ", ".join(sorted(c.host or "this machine" for c in exact))
            raise AmbiguousReferenceError(
                f"{ref!r} is the {what} of {len(exact)} containers, on: {where}; "
                "name one by its ID (see 'lk ps')"
            )
    matches = [c for c in candidates if c.id.startswith(ref)]
    if not matches:
        raise NotFoundError(f"no such container: {ref}")
    if len(matches) > 1:
        listed = ", ".join(
            f"{c.id} ({c.name})" if c.name and c.name != c.id else c.id
            for c in sorted(matches, key=lambda c: c.id)
        )
        raise AmbiguousReferenceError(
            f"{ref!r} matches {len(matches)} containers: {listed}; give more characters"
        )
    return matches[0]
