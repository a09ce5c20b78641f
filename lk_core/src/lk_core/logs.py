"""Reading console logs: the last N lines, and following until the VM exits."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from lk_core.errors import NotFoundError

_BLOCK = 65536
#: How long ``follow_file`` waits for a missing log to appear (a VM being set up).
APPEAR_TIMEOUT = 5.0


def _gone(path: Path) -> NotFoundError:
    return NotFoundError(f"the console log {path} is gone (was it deleted?): nothing to show")


def interrupt_on_sigint() -> None:
    """Make Ctrl-C (SIGINT) raise :class:`KeyboardInterrupt`, even if lk inherited it ignored.

    Python installs its SIGINT handler only when SIGINT is not ignored at
    start-up. A process started from a shell script's background job (``&``
    without job control), or by a parent that ignores SIGINT, inherits it
    ignored: ``lk logs -f`` would then never stop on SIGINT. Call this in the
    main thread before a command that waits indefinitely.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.default_int_handler)


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
    """Yield the whole file, or only its last ``lines`` lines.

    Raises :class:`~lk_core.errors.NotFoundError` naming ``path`` if the file
    is missing (an empty log is not the same as a deleted one).
    """
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise _gone(path) from None
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
    appear_timeout: float = APPEAR_TIMEOUT,
) -> Iterator[bytes]:
    """Yield the file (or its last ``lines``), then new data until ``keep_going()`` is false.

    ``keep_going`` is checked about twice a second; after it turns false the
    file is drained once more, so nothing written before the exit is lost.
    A missing file is waited for while ``keep_going()`` holds, for at most
    ``appear_timeout`` seconds (a VM being set up); then
    :class:`~lk_core.errors.NotFoundError` names it.
    """
    deadline = time.monotonic() + appear_timeout
    while True:
        try:
            handle = path.open("rb")
            break
        except FileNotFoundError:
            if not keep_going() or time.monotonic() >= deadline:
                raise _gone(path) from None
        time.sleep(poll)
    with handle:
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
