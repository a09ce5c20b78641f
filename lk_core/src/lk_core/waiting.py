"""Small helpers for waiting on a condition with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable


def time_left(deadline: float) -> float:
    """Seconds until ``deadline`` (a :func:`time.monotonic` value), never negative."""
    return max(0.0, deadline - time.monotonic())


def wait_until(condition: Callable[[], bool], seconds: float, step: float = 0.05) -> bool:
    """Poll ``condition`` every ``step`` seconds for up to ``seconds``; return whether it held."""
    deadline = time.monotonic() + seconds
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)
