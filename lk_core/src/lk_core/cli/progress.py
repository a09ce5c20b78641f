"""Progress on one updating line of a terminal while lk waits for a guest (``lk run --wait``).

Shown only when stderr is a terminal and ``-q`` was not given: the elapsed
time and the guest's last console line, redrawn in place (``\\r`` and
clear-to-end-of-line), erased when the wait ends.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lk_core.manager import Manager
    from lk_core.model import Container

__all__ = ["ProgressLine", "last_console_line", "wait_with_progress"]

from lk_core.progress import ProgressLine

_ESCAPES = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|[\x00-\x08\x0b-\x1f\x7f]")


def last_console_line(log: Path, window: int = 4096) -> str:
    """The last non-empty line of the console log, without terminal escapes ("" if none)."""
    try:
        with log.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - window))
            data = handle.read()
    except OSError:
        return ""
    lines = [_ESCAPES.sub(b"", line).strip() for line in data.splitlines()]
    lines = [line for line in lines if line]
    return lines[-1].decode(errors="replace") if lines else ""


def wait_with_progress(
    manager: Manager, container: Container, timeout: float, quiet: bool = False
) -> float:
    """Wait for the guest's SSH; on a terminal show the elapsed time and its last console line."""
    from lk_core.paths import log_path

    line = ProgressLine(enabled=not quiet)
    log = log_path(container.id)

    def progress(waited: float) -> None:
        last = last_console_line(log)
        line.show(f"waiting for {container.display_name}: {waited:3.0f}s  {last}".rstrip())

    try:
        return manager.wait(
            container.id, timeout=timeout, progress=progress if line.enabled else None
        )
    finally:
        line.clear()
