"""Helper threads that leave every signal to the main thread.

Python runs signal handlers only in the main thread, but the kernel gives a
signal sent to the process to any thread that does not block it. A helper
thread that receives SIGTERM while the main thread sits in a blocking call
(``waitpid`` on the VM, say) leaves the handler waiting until that call
returns, which may be never. Threads started here block the signals lk
handles, so the kernel always picks the main thread.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

#: The signals lk turns into a graceful stop (Ctrl-C, kill, a closed terminal).
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def start_helper_thread(
    target: Callable[..., object], *args: Any, name: str | None = None, **kwargs: Any
) -> threading.Thread:
    """Start a daemon thread running ``target(*args, **kwargs)`` that receives no signals.

    The signals are blocked in the calling thread while the new thread starts,
    so it inherits the blocked set from its first instruction; a signal that
    arrives meanwhile stays pending and reaches the caller once unblocked.
    """
    thread = threading.Thread(target=target, args=args, kwargs=kwargs, name=name, daemon=True)
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    return thread
