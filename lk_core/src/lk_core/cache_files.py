"""lk's small JSON cache files: read as an object, replaced atomically, never an error.

A cache only saves work (an entry-point scan, ``lk --help``'s command list, an
image's checksum, QEMU's version), so one that cannot be read counts as empty
and one that cannot be written is skipped: the work is done again next time.
Writes go to a temporary file in the same folder, then are renamed over the
cache, so a reader never sees half a file. Folders lk creates for them are
private (mode 0700).
"""

from __future__ import annotations

import json
import os

TYPE_CHECKING = False  # typing is not imported for a cached ``lk --help``
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any


def read_cache(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; empty when it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_cache(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` with ``data`` atomically; give up quietly if lk cannot write there."""
    from lk_core.paths import ensure_private_dir

    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        ensure_private_dir(path.parent)
        temp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(temp, path)
    except OSError:
        import contextlib

        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
