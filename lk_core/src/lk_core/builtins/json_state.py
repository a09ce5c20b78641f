"""Built-in plugin: the JSON state store (answers last, so a plugin can replace it)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lk_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from lk_core.json_store import JsonStateStore


@hookimpl(trylast=True)
def open_state_store(path: Path) -> JsonStateStore:
    """Provide the JSON state store at ``path``."""
    from lk_core.json_store import JsonStateStore

    return JsonStateStore(path)
