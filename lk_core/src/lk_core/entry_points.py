"""The ``lk`` entry points of the installed distributions, cached between runs.

Scanning every installed distribution's metadata (``importlib.metadata``)
costs more than the rest of ``lk ps``. The answer changes only when a
distribution is installed, upgraded or removed, which changes the
modification time of a folder on ``sys.path``. So the scan is cached in
lk's cache folder, keyed by ``sys.path`` and those folders' modification
times (a few ``stat`` calls to verify), and rebuilt on any difference.
Plugin selection (``LK_PLUGINS``...) is applied after the cache, so it never
needs a rebuild.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, NamedTuple

#: Bump when the cache's layout changes.
CACHE_FORMAT = 1
CACHE_FILE = "entry-points.json"


class EntryPointInfo(NamedTuple):
    """One entry point: its name, ``module:attr`` value, and its distribution."""

    name: str
    value: str
    distribution: str
    version: str

    def load(self) -> Any:
        """Import the module and return the named object (like ``EntryPoint.load``)."""
        import importlib

        module_name, _, attrs = self.value.partition(":")
        target: Any = importlib.import_module(module_name.strip())
        for attr in filter(None, attrs.strip().split(".")):
            target = getattr(target, attr)
        return target


def cache_path() -> Path:
    """Where the cache lives: ``$LK_HOME/cache`` or the user cache folder."""
    from lk_core.paths import lk_home

    home = lk_home()
    if home is not None:
        return home / "cache" / CACHE_FILE
    import platformdirs

    return Path(platformdirs.user_cache_dir("lk", appauthor=False)) / CACHE_FILE


def path_key() -> list[list[Any]]:
    """``sys.path`` with each folder's modification time (None when it is missing).

    The current folder (``""``, from ``python -m`` or ``-c``) is listed without
    its time: it changes whenever anything is written there, and a
    distribution is never installed into it.
    """
    key: list[list[Any]] = []
    for entry in sys.path:
        if not entry:
            key.append([entry, None])
            continue
        try:
            mtime: int | None = os.stat(entry).st_mtime_ns
        except OSError:
            mtime = None
        key.append([entry, mtime])
    return key


def scan(group: str) -> list[EntryPointInfo]:
    """Read the entry points of ``group`` from the installed distributions (slow)."""
    from importlib.metadata import entry_points

    found = []
    for ep in entry_points(group=group):
        dist = ep.dist
        found.append(
            EntryPointInfo(
                ep.name,
                ep.value,
                dist.metadata["Name"] if dist is not None else "",
                dist.version if dist is not None else "",
            )
        )
    return sorted(found)


def entry_points_of(group: str, path: Path | None = None) -> list[EntryPointInfo]:
    """The entry points of ``group``, from the cache when it still matches, else scanned.

    A cache that cannot be read or written is ignored (the scan is the truth).
    """
    from lk_core.cache_files import read_cache, write_cache

    path = path or cache_path()
    key = {"format": CACHE_FORMAT, "group": group, "path": path_key()}
    cached = read_cache(path)
    if cached.get("key") == key:
        try:
            return [EntryPointInfo(*entry) for entry in cached["entry_points"]]
        except (TypeError, KeyError):
            pass
    found = scan(group)
    write_cache(path, {"key": key, "entry_points": [list(ep) for ep in found]})
    return found
