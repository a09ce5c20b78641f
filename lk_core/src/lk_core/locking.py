"""One way to hold an exclusive lock across processes: ``flock`` on a lock file."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

__all__ = ["locked"]


@contextlib.contextmanager
def locked(path: Path | str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if needed) while inside.

    Waits for other holders, in this process or any other. A new lock file
    is private (0600). The file is left in place (removing it would let two
    processes lock two different files). Raises :class:`OSError` if the
    file cannot be opened.
    """
    import fcntl
    import os

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
