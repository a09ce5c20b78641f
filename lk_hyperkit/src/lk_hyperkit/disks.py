"""Container disks under hyperkit: private copies, sparse raw data disks, virtio-blk slots.

hyperkit's qcow2 reader cannot follow a backing file, so a copy-on-write
overlay is not possible. Each container gets a **private copy** of its disk
image instead, made sparse (runs of zeros are holes, so a mostly empty
image costs little), the equivalent of ``cp --sparse=always``:

* a raw image: copied sparse to ``RUNTIME/boot.raw``;
* a qcow2 image: copied to ``RUNTIME/boot.qcow2`` (a standalone qcow2 is
  already compact; one with a backing file is refused: hyperkit cannot read it).

Copying takes time and space proportional to the image's data (not its
virtual size); the user's image is only read. Data disks are sparse raw files
(``truncate``: nothing is written until the guest writes), which hyperkit
reads natively — no extra tool. ``lk commit`` copies a qcow2 disk as is; a
raw one is converted with ``qemu-img`` when it is installed (``brew install
qemu``).

Each disk is a ``virtio-blk`` device in a fixed PCI slot: the boot disk in
slot 2 (as before), data disks from slot 6 on, in order. hyperkit cannot set
a virtio-blk serial (it derives one from the file's path), so under hyperkit
the guest finds data disks by order: ``vda`` the boot disk (if any), then
the data disks as given.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from lk_core.disks import BOOT, Disk
from lk_core.errors import HypervisorError

__all__ = [
    "FIRST_DATA_SLOT",
    "LAST_DATA_SLOT",
    "data_disk_slots",
    "has_backing_file",
    "sparse_copy",
]

#: PCI slots of data disks (2-5 and 31 are taken: disk, network, metadata CD, RNG, LPC).
FIRST_DATA_SLOT = 6
LAST_DATA_SLOT = 30
_BLOCK = 64 * 1024
_QCOW2_MAGIC = b"QFI\xfb"


def sparse_copy(source: Path, target: Path, block: int = _BLOCK) -> None:
    """Copy ``source`` to a new ``target``, leaving holes for all-zero blocks.

    The same result as ``cp --sparse=always`` (which macOS's cp lacks).
    ``target`` is removed again if the copy fails.
    """
    zero = bytes(block)
    try:
        with open(source, "rb") as src, open(target, "xb") as dst:
            while chunk := src.read(block):
                if chunk == zero[: len(chunk)]:
                    dst.seek(len(chunk), os.SEEK_CUR)
                else:
                    dst.write(chunk)
            dst.truncate()
    except OSError as error:
        target.unlink(missing_ok=True)
        raise HypervisorError(
            f"cannot copy {source} for the container: {error.strerror or error}"
        ) from None


def has_backing_file(path: Path) -> bool:
    """Whether the qcow2 image at ``path`` names a backing file (header offset 8)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError:
        return False
    return head[:4] == _QCOW2_MAGIC and int.from_bytes(head[8:16], "big") != 0


def create_private_copy(image: Path, fmt: str, directory: Path) -> tuple[Path, str]:
    """The container's own copy of ``image``: ``boot.raw`` or ``boot.qcow2``, sparse."""
    if fmt == "qcow2" and has_backing_file(image):
        raise HypervisorError(
            f"hyperkit cannot read {image}: it is a qcow2 overlay with a backing file. "
            "Flatten it first ('qemu-img convert -O qcow2 IN OUT'), or use --hypervisor qemu"
        )
    if fmt not in ("raw", "qcow2"):
        raise HypervisorError(f"hyperkit cannot copy {fmt} disks")
    target = directory / f"boot.{fmt}"
    sparse_copy(image, target)
    return target, fmt


def create_sparse_disk(stem: Path, size: int) -> tuple[Path, str]:
    """An empty sparse raw disk ``<stem>.raw`` of ``size`` bytes."""
    path = stem.with_name(stem.name + ".raw")
    try:
        with open(path, "xb") as handle:
            handle.truncate(size)
    except OSError as error:
        path.unlink(missing_ok=True)
        raise HypervisorError(f"cannot create {path}: {error.strerror or error}") from None
    return path, "raw"


def commit(disk: Path, fmt: str, target: Path, environ: Mapping[str, str]) -> None:
    """Write ``disk`` as the standalone qcow2 ``target`` (a copy, or qemu-img for raw)."""
    partial = target.with_name(f".{target.name}.partial")
    try:
        if fmt == "qcow2":
            sparse_copy(disk, partial)
        else:
            tool = shutil.which("qemu-img", path=environ.get("PATH", os.defpath))
            if tool is None:
                raise HypervisorError(
                    f"committing a raw hyperkit disk to qcow2 needs qemu-img, which is not on "
                    f"PATH (brew install qemu); the disk is {disk}"
                )
            import subprocess

            argv = [tool, "convert", "-q", "-f", fmt, "-O", "qcow2", str(disk), str(partial)]
            result = subprocess.run(argv, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                lines = result.stderr.strip().splitlines() or ["qemu-img failed"]
                raise HypervisorError(f"cannot write {target}: {lines[-1]}")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def data_disk_slots(disks: Sequence[Disk]) -> list[tuple[int, Disk]]:
    """The PCI slot of each data disk, in order; refuses more than the free slots."""
    data = [disk for disk in disks if disk.role != BOOT]
    room = LAST_DATA_SLOT - FIRST_DATA_SLOT + 1
    if len(data) > room:
        raise HypervisorError(f"hyperkit has PCI slots for at most {room} data disks")
    return [(FIRST_DATA_SLOT + index, disk) for index, disk in enumerate(data)]
