"""One line of a terminal redrawn in place, for work that takes a while.

Used by ``lk run --wait`` and by plugins (lk-templates shows linuxkit's
build on it). Nothing is written unless the stream is a terminal, so
scripts and logs never see it.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TextIO

__all__ = ["ProgressLine", "folder_bytes", "watching_bytes"]


class ProgressLine:
    """One line of ``stream`` redrawn in place; nothing at all unless ``stream`` is a terminal."""

    def __init__(self, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled and self.stream.isatty()
        self.shown = False

    def show(self, text: str) -> None:
        """Replace the line with ``text`` (cut to the terminal's width)."""
        if not self.enabled:
            return
        width = max(20, shutil.get_terminal_size((80, 24)).columns - 1)
        self.stream.write("\r\x1b[K" + text[:width])
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        """Erase the line (if anything was shown)."""
        if self.enabled and self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False


def folder_bytes(folder: Path) -> int:
    """The bytes of the files in ``folder`` and below (0 if it is gone)."""
    import os

    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_size
    return total


@contextmanager
def watching_bytes(folder: Path, what: str, enabled: bool = True) -> Iterator[None]:
    """While inside, show ``what`` and the bytes written so far into ``folder``.

    Redrawn about five times a second on stderr, only on a terminal.
    """
    import threading
    import time

    from lk_core.threads import start_helper_thread

    line = ProgressLine(enabled=enabled)
    if not line.enabled:
        yield
        return
    done = threading.Event()
    started = time.monotonic()

    def watch() -> None:
        while not done.wait(0.2):
            written = folder_bytes(folder) / 1e6
            line.show(f"{what}: {written:,.0f} MB written, {time.monotonic() - started:3.0f}s")

    thread = start_helper_thread(watch, name="lk-progress")
    try:
        yield
    finally:
        done.set()
        thread.join()
        line.clear()
