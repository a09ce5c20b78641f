"""Process identity: a PID plus a start-time token, so a reused PID is never ours.

A PID alone is not an identity: once a VM exits, the kernel may hand its PID
to any other process. lk therefore stores, next to each PID, a token made of
the boot ID and the process start time. A process is "the same" only if both
still match, and signals are sent only after that check (through a pidfd on
Linux, so the check and the signal refer to the same process).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from functools import cache


@cache
def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def start_token(pid: int) -> str:
    """A token that identifies the process ``pid`` for its whole life ("" if it is gone)."""
    if pid <= 0:
        return ""
    if sys.platform.startswith("linux"):
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
                stat = handle.read()
        except OSError:
            return ""
        # Field 22 (starttime) comes after the command name, which may contain spaces.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) < 20 or fields[0] == "Z":
            return ""  # a zombie has exited already
        return f"{_boot_id()}:{fields[19]}"
    try:  # macOS and other Unixes
        out = subprocess.run(
            ["ps", "-o", "lstart=", "-o", "stat=", "-p", str(pid)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        return ""
    if not out or out.split()[-1].startswith("Z"):
        return ""
    return " ".join(out.split()[:-1])


def is_same_process(pid: int, token: str) -> bool:
    """True if ``pid`` is alive and is the process that ``token`` was taken from."""
    return bool(token) and pid > 0 and start_token(pid) == token


def signal_process(pid: int, token: str, sig: int) -> bool:
    """Send ``sig`` to ``pid`` only if it is still the process of ``token``.

    Returns whether the signal was delivered. Never signals PID 0, 1 or a
    process whose identity does not match.
    """
    if pid <= 1 or not token:
        return False
    pidfd_open = getattr(os, "pidfd_open", None)
    send = getattr(signal, "pidfd_send_signal", None)
    if pidfd_open is not None and send is not None:
        try:
            fd = pidfd_open(pid)
        except OSError:
            return False
        try:
            # The pidfd pins this exact process: check its identity, then signal it.
            if start_token(pid) != token:
                return False
            send(fd, sig)
            return True
        except OSError:
            return False
        finally:
            os.close(fd)
    if start_token(pid) != token:
        return False
    try:
        os.kill(pid, sig)
    except OSError:
        return False
    return True
