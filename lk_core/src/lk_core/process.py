"""Process identity: a PID plus a start-time token, so a reused PID is never ours.

A PID alone is not an identity: once a VM exits, the kernel may hand its PID
to any other process. lk therefore stores, next to each PID, a token that
names the process's start. A process is "the same" only if its token still
matches, and signals are sent only after that check (through a pidfd on
Linux, so the check and the signal refer to the same process).

Tokens, and why they differ by platform:

- Linux: ``"{boot_id}:{starttime}"``: the kernel's boot ID and field 22 of
  ``/proc/PID/stat``, the start time in clock ticks since boot. Both are
  exact integers/UUIDs that never change for the life of a process, and no
  clock adjustment moves them. This is the format every earlier release
  wrote into its state files, so a VM started by an older lk is still
  recognised after an upgrade without any conversion.

  psutil is deliberately *not* used here. ``psutil.Process.create_time()``
  is ``ticks / CLK_TCK + boot_time()``, and ``boot_time()`` (``btime`` in
  ``/proc/stat``) is wall-clock based: psutil documents that it moves when
  the clock is stepped (NTP, manual changes). A token built from it could
  stop matching a live VM, and a mismatch is not harmless: ``lk ps``
  reconciles such a record as exited, orphaning the VM. Converting
  ``create_time()`` back to ticks is exact only while psutil computes it with
  the same ``btime`` we subtract, an implementation detail. Reading the one
  ``/proc`` line is also faster than psutil (3.2 ms vs 9.7 ms per 200 calls)
  and keeps the ~20 ms psutil import off ``lk ps``.

- Everywhere else (macOS, BSDs): ``"v2:{create_time:.6f}"`` from psutil
  (``kinfo_proc`` start time, microsecond resolution, recorded once at fork
  and never adjusted), with zombies treated as gone. Earlier releases
  spawned ``ps -o lstart= -o stat=`` for each check; the boot time is left
  out because ``kern.boottime`` shifts when the clock is stepped, and a PID
  reused after a reboot starts at a later microsecond anyway. Tokens without
  the ``v2:`` prefix were written by those releases (``ps`` ``lstart`` text);
  they are still checked the old way, with ``ps``, so running VMs survive the
  upgrade. New records only ever get ``v2:`` tokens.

psutil is imported lazily: its import costs ~20 ms, more than ``lk --help``
should pay. So are :mod:`subprocess` (only the legacy ``ps`` check needs it)
and :mod:`signal` (only :func:`signal_process`): checking an identity on
Linux reads ``/proc`` and needs neither, which keeps this module, and so
:mod:`lk_core.liveness` that every hypervisor plugin imports, cheap.
"""

from __future__ import annotations

import os
import sys
from functools import cache

_LINUX = sys.platform.startswith("linux")
_V2 = "v2:"


@cache
def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def _linux_token(pid: int) -> str:
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


def _psutil_token(pid: int) -> str:
    import psutil  # lazy: see the module docstring

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return ""  # a zombie has exited already
        created = proc.create_time()
    except (psutil.Error, OSError):
        return ""
    return f"{_V2}{created:.6f}"


def _legacy_ps_token(pid: int) -> str:
    """The token of releases before psutil on non-Linux systems (``ps`` lstart)."""
    import subprocess

    try:
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


def start_token(pid: int) -> str:
    """A token that identifies the process ``pid`` for its whole life ("" if it is gone)."""
    if pid <= 0:
        return ""
    if _LINUX:
        return _linux_token(pid)
    return _psutil_token(pid)


def _token_like(pid: int, token: str) -> str:
    """``pid``'s current token, computed the way ``token`` was."""
    if not _LINUX and not token.startswith(_V2):
        return _legacy_ps_token(pid)  # recorded by a release before psutil
    return start_token(pid)


def is_same_process(pid: int, token: str) -> bool:
    """True if ``pid`` is alive and is the process that ``token`` was taken from."""
    return bool(token) and pid > 0 and _token_like(pid, token) == token


def signal_process(pid: int, token: str, sig: int) -> bool:
    """Send ``sig`` to ``pid`` only if it is still the process of ``token``.

    Returns whether the signal was delivered. Never signals PID 0, 1 or a
    process whose identity does not match.
    """
    if pid <= 1 or not token:
        return False
    import signal

    pidfd_open = getattr(os, "pidfd_open", None)
    send = getattr(signal, "pidfd_send_signal", None)
    if pidfd_open is not None and send is not None:
        try:
            fd = pidfd_open(pid)
        except OSError:
            return False
        try:
            # The pidfd pins this exact process: check its identity, then signal it.
            if _token_like(pid, token) != token:
                return False
            send(fd, sig)
            return True
        except OSError:
            return False
        finally:
            os.close(fd)
    if _token_like(pid, token) != token:
        return False
    try:
        os.kill(pid, sig)
    except OSError:
        return False
    return True
