"""Container disks under QEMU: ``qemu-img`` creates them, virtio-blk attaches them.

lk's core decides what disks a container has (:mod:`lk_core.disks`); this
module knows how QEMU makes and attaches them:

* the boot overlay: ``qemu-img create -f qcow2 -b IMAGE -F FMT OVERLAY`` — the
  image is its read-only backing file, so it is never written and any number
  of containers share it;
* an empty data disk: ``qemu-img create -f qcow2 PATH SIZE`` (sparse: it uses
  almost nothing until the guest writes);
* ``lk commit``: ``qemu-img convert -O qcow2 OVERLAY TARGET`` (overlay and
  backing flattened into one standalone image), written to a temporary file
  renamed into place;
* each disk is ``-drive file=...,if=none,id=...,format=...`` plus
  ``-device virtio-blk-pci,drive=...,serial=...``: the boot disk first, data
  disks in the order given, so the guest finds each one by its serial
  (``/sys/block/vdX/serial``).

The argv builders are pure (unit-tested as data); :func:`run_disk_tool` runs one.
``qemu-img`` ships with QEMU (Debian: ``qemu-utils``); ``$LK_QEMU_IMG`` names
another one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from lk_core.disks import BOOT, Disk
from lk_core.errors import HypervisorError

__all__ = [
    "ENV_DISK_TOOL",
    "commit_argv",
    "create_argv",
    "disk_args",
    "find_disk_tool",
    "overlay_argv",
    "run_disk_tool",
]

#: Environment variable naming the qemu-img to use (a name on ``PATH`` or a path).
ENV_DISK_TOOL = "LK_QEMU_IMG"
_TOOL = "qemu-img"
_INSTALL = "install qemu-utils (Debian/Ubuntu) or qemu (Homebrew)"
#: Seconds a qemu-img run may take (a commit copies the whole disk).
_TIMEOUT = 3600.0


def find_disk_tool(
    environ: Mapping[str, str] | None = None, which: Callable[[str], str | None] = shutil.which
) -> str:
    """The qemu-img executable: ``$LK_QEMU_IMG``, else ``qemu-img`` on ``PATH``.

    Raises a one-line :class:`HypervisorError` saying what to install.
    """
    env = os.environ if environ is None else environ
    name = env.get(ENV_DISK_TOOL, "").strip() or _TOOL
    found = which(name)
    if found is None:
        if name != _TOOL:
            raise HypervisorError(f"${ENV_DISK_TOOL}={name} is not an executable found on PATH")
        raise HypervisorError(
            f"qemu-img not found on PATH: it creates container disks ({_INSTALL})"
        )
    return found


def overlay_argv(tool: str, image: Path, fmt: str, overlay: Path) -> list[str]:
    """``qemu-img create``: a qcow2 overlay whose read-only backing file is ``image``."""
    return [tool, "create", "-q", "-f", "qcow2", "-b", str(image), "-F", fmt, str(overlay)]


def create_argv(tool: str, path: Path, size: int) -> list[str]:
    """``qemu-img create``: an empty sparse qcow2 disk of ``size`` bytes."""
    return [tool, "create", "-q", "-f", "qcow2", str(path), str(size)]


def commit_argv(tool: str, disk: Path, fmt: str, target: Path) -> list[str]:
    """``qemu-img convert``: ``disk`` and its backing chain as one standalone qcow2 ``target``."""
    return [tool, "convert", "-q", "-f", fmt, "-O", "qcow2", str(disk), str(target)]


def run_disk_tool(argv: Sequence[str], what: str) -> None:
    """Run a qemu-img command; a one-line :class:`HypervisorError` naming ``what`` on failure."""
    try:
        result = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=_TIMEOUT, check=False
        )
    except OSError as error:
        raise HypervisorError(f"cannot {what}: {error.strerror or error}") from None
    except subprocess.TimeoutExpired:
        raise HypervisorError(f"cannot {what}: qemu-img did not finish in time") from None
    if result.returncode != 0:
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"qemu-img exited with status {result.returncode}"
        raise HypervisorError(f"cannot {what}: {reason.removeprefix('qemu-img: ')}")


def _escape(value: str) -> str:
    return value.replace(",", ",,")


def disk_args(disks: Sequence[Disk], cache: str) -> list[str]:
    """``-drive`` + ``-device virtio-blk-pci`` for each disk, in order, with its serial.

    The boot disk gets ``id=boot`` and ``bootindex=0``; data disks
    ``id=disk0``, ``disk1``... A read-only disk gets ``readonly=on``.
    """
    args: list[str] = []
    index = 0
    for disk in disks:
        if not disk.path or not Path(disk.path).is_absolute():
            raise HypervisorError(f"a disk's path must be absolute, got {disk.path!r}")
        if disk.role == BOOT:
            drive_id, extra = "boot", ",bootindex=0"
        else:
            drive_id, extra = f"disk{index}", ""
            index += 1
        drive = (
            f"file={_escape(disk.path)},if=none,id={drive_id},format={disk.format or 'raw'}"
            f",cache={cache}"
        )
        if disk.read_only:
            drive += ",readonly=on"
        device = f"virtio-blk-pci,drive={drive_id}"
        if disk.serial:
            device += f",serial={_escape(disk.serial)}"
        args += ["-drive", drive, "-device", device + extra]
    return args
