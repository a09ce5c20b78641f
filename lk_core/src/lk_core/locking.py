"""One way to hold an exclusive lock across processes: ``flock`` on a lock file."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

__all__ = ["locked"]


@contextlib.contextmanager
def locked(path: Path | str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if needed) while inside.

    Waits for other holders, in this process or any other. The file is left
    in place (removing it would let two processes lock two different files).
    """
    import fcntl

    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
