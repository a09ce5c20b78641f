"""Built-in plugin: the JSON state store (answers last, so a plugin can replace it)."""

from __future__ import annotations

from pathlib import Path

from lk_core.hookspecs import hookimpl
from lk_core.json_store import JsonStateStore


@hookimpl(trylast=True)
def open_state_store(path: Path) -> JsonStateStore:
    """Provide the JSON state store at ``path``."""
    return JsonStateStore(path)
