"""Reading console logs: the last N lines, and following until the VM exits."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

_BLOCK = 65536


def _tail_offset(handle_fd: int, size: int, lines: int) -> int:
    """Offset where the last ``lines`` lines of the file start."""
    if lines <= 0:
        return size
    position = size
    newlines = 0
    # A final newline terminates the last line; it does not start a new one.
    if size and os.pread(handle_fd, 1, size - 1) == b"\n":
        newlines = -1
    while position > 0:
        step = min(_BLOCK, position)
        position -= step
        block = os.pread(handle_fd, step, position)
        for index in range(len(block) - 1, -1, -1):
            if block[index] == 0x0A:
                newlines += 1
                if newlines == lines:
                    return position + index + 1
    return 0


def read_tail(path: Path, lines: int | None = None) -> Iterator[bytes]:
    """Yield the whole file, or only its last ``lines`` lines (nothing if it is missing)."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return
    with handle:
        size = os.fstat(handle.fileno()).st_size
        if lines is not None:
            handle.seek(_tail_offset(handle.fileno(), size, lines))
        while chunk := handle.read(_BLOCK):
            yield chunk


def follow_file(
    path: Path,
    lines: int | None,
    keep_going: Callable[[], bool],
    poll: float = 0.1,
) -> Iterator[bytes]:
    """Yield the file (or its last ``lines``), then new data until ``keep_going()`` is false.

    ``keep_going`` is checked about twice a second; after it turns false the
    file is drained once more, so nothing written before the exit is lost.
    """
    while not path.exists():
        if not keep_going():
            return
        time.sleep(poll)
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if lines is not None:
            handle.seek(_tail_offset(handle.fileno(), size, lines))
        last_check = 0.0
        while True:
            chunk = handle.read(_BLOCK)
            if chunk:
                yield chunk
                continue
            now = time.monotonic()
            if now - last_check >= 0.5:
                last_check = now
                if not keep_going():
                    while chunk := handle.read(_BLOCK):
                        yield chunk
                    return
            time.sleep(poll)
