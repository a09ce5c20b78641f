"""Checkpoints under QEMU: save a running VM to a file, resume it in a new QEMU.

lk's core decides *what* a checkpoint is (:mod:`lk_core.checkpoints`: the
store, the sidecar, the CLI, warm keys); this module knows *how* QEMU does it.

Saving (:func:`save`), through the VM's QMP socket:

1. ``stop`` pauses the guest; QEMU drains and flushes every disk, so the
   container's writable qcow2 files (its boot overlay, its anonymous data
   disks) are consistent on the host from here on;
2. each of those files is copied into the checkpoint (``cp --reflink=auto
   --sparse=always`` on Linux: a clone where the file system can, sparse
   otherwise): the checkpoint's frozen layers, taken at the same instant as
   the RAM. The source keeps its own files, untouched: nothing it has open is
   moved or renamed (QEMU reopens files by path when it changes their
   permissions, so renaming under it breaks ``cont``);
3. ``migrate`` to ``exec:cat > FILE`` (Debian 12's QEMU 7.2 has no ``file:``
   URI), with the bandwidth limit lifted (QEMU's default is 128 MiB/s) and no
   compression: a paused 1 GiB test guest writes ~120 MB in ~0.15 s, and
   restoring an uncompressed stream is the fastest;
4. ``cont`` (or ``quit`` for ``lk checkpoint create --stop``).

Resuming is a start whose spec has ``incoming``: :func:`lk_qemu.argv.build_argv`
adds ``-incoming exec:cat FILE`` and keeps the guest's hardware the source's
(its MAC comes from ``spec.identity``, its disks keep their serials); without
``-S`` QEMU runs the guest as soon as the state is loaded. A state QEMU cannot
load makes it exit with an error, which the supervisor records;
:func:`wait_resumed` reports it.

What must match for a resume: QEMU's version and the machine type (compared
from the sidecar before launch), and the guest's devices: the argv of the new
QEMU with host-side values masked (:func:`guest_argv`: socket, log, pidfile
and disk paths, host forwards, the VM's name) must equal the source's.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lk_core.errors import HypervisorError

__all__ = [
    "STATE_FILE",
    "binary_identity",
    "guest_argv",
    "incoming_uri",
    "parse_machine_alias",
    "parse_version",
    "save",
    "wait_resumed",
]

#: The state file's name in a checkpoint folder.
STATE_FILE = "state"
#: Seconds allowed for the whole migration of a paused guest to a file.
SAVE_TIMEOUT = 600.0
#: Host-side values inside comma-separated options: masked by :func:`guest_argv`.
_HOST_KEYS = re.compile(r"(?<![\w-])(file|path|logfile)=((?:[^,]|,,)*)")
_HOSTFWD = re.compile(r",hostfwd=(?:[^,]|,,)*")
#: Options whose whole value is host-side (or is lk's own name for the VM).
_HOST_VALUES = frozenset({"-name", "-pidfile"})
_VERSION = re.compile(r"version\s+(\d+\.\d+\.\d+)")


# -- what must match -----------------------------------------------------------------
def guest_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` with every host-side value masked: what the guest's hardware depends on.

    The binary's path, ``-name`` and ``-pidfile`` values, ``-incoming``, every
    ``file=``/``path=``/``logfile=`` value and every ``hostfwd=`` rule are
    replaced or dropped; the rest (machine, accelerator, CPU, memory, devices
    in order, MAC, serials, kernel command line) is kept as it is.
    """
    masked: list[str] = ["*"] if argv else []
    skip = skip_next = False
    for word in list(argv)[1:]:
        if skip:
            masked.append("*")
            skip = False
            continue
        if word == "-incoming":  # only the resumed VM has it
            skip_next = True
            continue
        if skip_next:
            skip_next = False
            continue
        if word in _HOST_VALUES:
            masked.append(word)
            skip = True
            continue
        word = _HOSTFWD.sub("", word)
        masked.append(_HOST_KEYS.sub(lambda m: f"{m.group(1)}=*", word))
    return masked


def parse_version(text: str) -> str:
    """``7.2.22`` from ``qemu-system-x86_64 --version``'s output ("" if not found)."""
    match = _VERSION.search(text)
    return match.group(1) if match else ""


def parse_machine_alias(text: str, alias: str) -> str:
    """The machine type ``alias`` (``q35``) stands for, from ``-machine help`` ("" if none)."""
    for line in text.splitlines():
        words = line.split()
        if words and words[0] == alias:
            found = re.search(r"\(alias of ([\w.-]+)\)", line)
            return found.group(1) if found else alias
    return ""


def _machine_alias(argv_machine: str) -> str:
    return argv_machine.split(",", 1)[0]


def binary_identity(binary: str, machine_alias: str, cache_dir: Path) -> dict[str, str]:
    """``{"version": "7.2.22", "machine": "pc-q35-7.2"}`` for ``binary``, cached.

    Two short subprocesses the first time; then a JSON cache keyed by the
    binary's path, size and modification time, so a resume pays a ``stat``.
    """
    from lk_core.cache_files import read_cache, write_cache

    try:
        info = os.stat(binary)
    except OSError as error:
        raise HypervisorError(f"cannot read {binary}: {error.strerror or error}") from None
    key = f"{os.path.realpath(binary)}:{info.st_size}:{info.st_mtime_ns}:{machine_alias}"
    cache = cache_dir / "qemu-identity.json"
    known = read_cache(cache)
    found = known.get(key)
    if isinstance(found, dict) and found.get("version") and found.get("machine"):
        return {"version": str(found["version"]), "machine": str(found["machine"])}

    def ask(*args: str) -> str:
        try:
            result = subprocess.run(
                [binary, *args], capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise HypervisorError(f"cannot ask {binary} for its version: {error}") from None
        return result.stdout

    identity = {
        "version": parse_version(ask("--version")),
        "machine": parse_machine_alias(ask("-machine", "help"), machine_alias),
    }
    if not identity["version"]:
        raise HypervisorError(f"cannot tell the version of {binary}")
    known[key] = identity
    write_cache(cache, known)  # if it cannot be written, QEMU is asked again next time
    return identity


def incoming_uri(state: Path) -> str:
    """The ``-incoming`` value that loads ``state``: ``exec:cat FILE`` (7.2 has no ``file:``)."""
    return "exec:cat " + shlex.quote(str(state))


# -- saving -------------------------------------------------------------------------
def _copy_layer(source: Path, target: Path) -> None:
    """Copy a (consistent, not written meanwhile) qcow2 file: a clone or a sparse copy."""
    if sys.platform.startswith("linux") and shutil.which("cp"):
        result = subprocess.run(
            ["cp", "--reflink=auto", "--sparse=always", str(source), str(target)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0:
            return
        target.unlink(missing_ok=True)
        reason = result.stderr.strip().splitlines()[-1:] or ["cp failed"]
        raise HypervisorError(f"cannot copy {source} into the checkpoint: {reason[0]}")
    try:
        shutil.copyfile(source, target)
    except OSError as error:
        target.unlink(missing_ok=True)
        raise HypervisorError(
            f"cannot copy {source} into the checkpoint: {error.strerror or error}"
        ) from None


def _wait_migration(qmp: Any, deadline: float) -> dict[str, Any]:
    """Poll ``query-migrate`` until the migration ends; return its last answer."""
    delay = 0.005
    while True:
        status: dict[str, Any] = qmp.execute("query-migrate")
        state = status.get("status", "")
        if state == "completed":
            return status
        if state in ("failed", "cancelled"):
            why = status.get("error-desc") or state
            raise HypervisorError(f"QEMU could not save the VM's state: {why}")
        if time.monotonic() > deadline:
            qmp.execute("migrate_cancel")
            raise HypervisorError("QEMU did not finish saving the VM's state in time")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def save(
    socket: Path,
    command: Sequence[str],
    disks: Sequence[tuple[Path, Path]],
    state: Path,
    stop: bool,
) -> dict[str, Any]:
    """Pause the VM behind QMP ``socket``, copy ``disks`` (source, target), save RAM to ``state``.

    Resumes the VM afterwards, or quits QEMU with ``stop`` (only once
    everything was saved: on failure the VM runs on). Returns what the sidecar
    keeps: ``version``, ``machine``, ``package``, ``argv`` (the guest's, see
    :func:`guest_argv`), ``paused_seconds``, ``migration`` (QEMU's figures).
    """
    from lk_qemu.qmp import QmpClient, QmpError

    partial = state.with_name(f".{state.name}.partial")
    try:
        with QmpClient(socket, timeout=30.0) as qmp:
            version = qmp.greeting.get("QMP", {}).get("version", {})
            number = version.get("qemu", {})
            release = f"{number.get('major')}.{number.get('minor')}.{number.get('micro')}"
            machine = str(qmp.execute("qom-get", {"path": "/machine", "property": "type"}))
            status = qmp.execute("query-status").get("status", "")
            if status != "running":
                raise HypervisorError(f"the VM is {status or 'not running'}, not running")
            started = time.monotonic()
            qmp.execute("stop")
            saved = False
            try:
                for source, target in disks:
                    _copy_layer(source, target)
                    os.chmod(target, 0o444)
                qmp.execute("migrate-set-parameters", {"max-bandwidth": 1 << 40})
                qmp.execute("migrate", {"uri": "exec:cat > " + shlex.quote(str(partial))})
                figures = _wait_migration(qmp, time.monotonic() + SAVE_TIMEOUT)
                os.replace(partial, state)
                saved = True
            finally:
                if stop and saved:
                    qmp.execute("quit")
                else:
                    qmp.execute("cont")
            paused = time.monotonic() - started
    except QmpError as error:
        raise HypervisorError(f"cannot save the VM's state: {error.message}") from None
    finally:
        partial.unlink(missing_ok=True)
    argv_machine = ""
    words = list(command)
    if "-machine" in words[:-1]:
        argv_machine = words[words.index("-machine") + 1]
    ram = figures.get("ram", {})
    return {
        "version": release,
        "package": str(version.get("package", "")),
        "machine": machine.removesuffix("-machine"),
        "machine_alias": _machine_alias(argv_machine),
        "argv": guest_argv(command),
        "paused_seconds": round(paused, 3),
        "migration": {
            "total_ms": figures.get("total-time"),
            "transferred": ram.get("transferred"),
            "duplicate_pages": ram.get("duplicate"),
        },
    }


# -- resuming -----------------------------------------------------------------------
def wait_resumed(socket: Path, alive: Any, timeout: float) -> None:
    """Wait until the QEMU behind ``socket`` has loaded its state and runs the guest.

    ``alive()`` says whether the QEMU process still runs. Raises a one-line
    :class:`HypervisorError` if it exited (the state could not be loaded) or
    did not finish within ``timeout`` seconds.
    """
    from lk_qemu.qmp import QmpClient, QmpError

    deadline = time.monotonic() + timeout
    delay = 0.01
    status = ""
    while time.monotonic() < deadline:
        if not alive():
            raise HypervisorError("QEMU exited while loading the saved state")
        try:
            with QmpClient(socket, timeout=2.0) as qmp:
                while time.monotonic() < deadline:
                    status = str(qmp.execute("query-status").get("status", ""))
                    if status == "running":
                        return
                    if status == "paused":  # the source was paused when saved: QEMU keeps that
                        qmp.execute("cont")
                        continue
                    if status not in ("inmigrate", "prelaunch", "restore-vm"):
                        raise HypervisorError(f"the resumed VM is {status}, not running")
                    time.sleep(delay)
                    delay = min(delay * 2, 0.05)
        except QmpError:
            pass  # not listening yet, or QEMU is exiting: judged by alive() above
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    raise HypervisorError(f"the VM did not resume within {timeout:.0f}s (last status: {status})")
