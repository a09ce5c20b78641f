"""Helper threads leave lk's signals to the main thread (lk_core.threads)."""

from __future__ import annotations

import os
import select
import signal
import threading
import time
from pathlib import Path

from lk_core.threads import HANDLED_SIGNALS, start_helper_thread


def test_a_helper_thread_blocks_the_signals_lk_handles():
    seen: list[set[signal.Signals]] = []
    thread = start_helper_thread(lambda: seen.append(signal.pthread_sigmask(signal.SIG_BLOCK, [])))
    thread.join(5)
    assert thread.daemon
    assert set(HANDLED_SIGNALS) <= seen[0]


def test_the_callers_signal_mask_is_restored():
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    start_helper_thread(lambda: None).join(5)
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before
    assert not set(HANDLED_SIGNALS) & before


def test_arguments_and_name_reach_the_thread():
    got: list[object] = []
    done = threading.Event()

    def target(a: int, *, b: str) -> None:
        got.extend([a, b, threading.current_thread().name])
        done.set()

    start_helper_thread(target, 1, b="two", name="lk-test")
    assert done.wait(5)
    assert got == [1, "two", "lk-test"]


def test_a_signal_aimed_at_a_helper_interrupts_the_main_threads_blocking_call():
    """``kill(TID)`` makes the kernel prefer that thread; a helper must pass it on to the
    main thread, which is waiting in ``select`` here as ``lk run`` waits in ``waitpid``.
    The handler writes to the pipe being waited on: only a handler run during the wait
    ends it (a handler run afterwards finds select already timed out)."""
    read_end, write_end = os.pipe()
    previous = signal.signal(signal.SIGHUP, lambda _signum, _frame: os.write(write_end, b"!"))
    try:

        def target() -> None:
            time.sleep(0.2)  # the main thread is in select by now
            os.kill(threading.get_native_id(), signal.SIGHUP)

        start_helper_thread(target)
        readable, _, _ = select.select([read_end], [], [], 10)
    finally:
        signal.signal(signal.SIGHUP, previous)
        os.close(read_end)
        os.close(write_end)
    assert readable == [read_end]


def test_lk_starts_every_thread_through_start_helper_thread():
    """A plain ``threading.Thread`` may take a Ctrl-C meant for the main thread."""
    root = Path(__file__).resolve().parents[2]
    offenders = [
        f"{path.relative_to(root)}:{number}"
        for path in sorted(root.glob("lk_*/src/**/*.py"))
        if path.name != "threads.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "threading.Thread(" in line
    ]
    assert offenders == []
