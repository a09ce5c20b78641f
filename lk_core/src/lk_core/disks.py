"""Container disks: what disks a container has, decided by the core.

Every container of a disk image (raw, qcow2, vmdk) runs on its own writable
**boot disk** in its runtime folder — a copy-on-write overlay backed by the
image, which is never opened for writing — unless the user asks for
``--in-place`` (the old behaviour: the image itself, written, one container
at a time). A container may also have **data disks**: an empty disk of a size
that lives and dies with the container (``--disk 10G``), or a **named disk**
that outlives containers (``--disk NAME:SIZE``, ``lk disk create``), kept in
lk's data folder and attached to one active container at a time.

The core decides *what* disks a container has (:func:`plan_disks`, at plan
time, before anything is created) and records them in
:attr:`lk_core.model.Container.disks`. *How* a disk is created and attached
is the hypervisor's: a hypervisor that declares
:attr:`~lk_core.hypervisor.Capability.DISKS` implements
:meth:`~lk_core.hypervisor.Hypervisor.create_overlay`,
:meth:`~lk_core.hypervisor.Hypervisor.create_disk` and
:meth:`~lk_core.hypervisor.Hypervisor.commit_disk`, and attaches
``HypervisorOptions.disks`` (virtio, in order, each with its serial).

This module imports only the standard library, attrs and lk's errors at the
top, so :mod:`lk_core.model` can import :class:`Disk` from it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from lk_core.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    from lk_core.hypervisor import Hypervisor
    from lk_core.model import Container, RunOptions

__all__ = [
    "BOOT",
    "DATA",
    "MAX_SERIAL",
    "Disk",
    "DiskRequest",
    "NamedDisk",
    "check_disk_name",
    "create_container_disks",
    "create_named_disk",
    "disk_users",
    "find_named_disk",
    "format_size",
    "list_named_disks",
    "parse_disk_option",
    "parse_disk_size",
    "plan_disks",
    "remove_named_disk",
    "serial_for",
    "virtual_size",
]

#: The disk a container boots from (its overlay of the image).
BOOT = "boot"
#: A data disk (empty at first).
DATA = "data"
#: virtio-blk serials are at most 20 bytes (``VIRTIO_BLK_ID_BYTES``).
MAX_SERIAL = 20
#: The smallest data disk: 1 MiB.
MIN_SIZE = 1024 * 1024

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(?:[iI]?[bB])?\s*$")
_UNIT = {"": 1024**2, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
#: What reads as a size, valid or not (``0``, ``-1``, ``1.5.G``): never a disk name.
_SIZE_LIKE = re.compile(r"^\s*-?[\d.]*\d[\d.]*\s*[kKmMgGtTiIbB]*\s*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
#: Extensions of named disk files, by format (the hypervisor picks the format).
_DISK_SUFFIXES = (".qcow2", ".raw")
_QCOW2_MAGIC = b"QFI\xfb"


@attrs.frozen
class Disk:
    """One disk of a container, as recorded and as given to the hypervisor.

    ``role`` is :data:`BOOT` (the overlay the container boots from) or
    :data:`DATA`. ``path`` and ``format`` are the file the hypervisor
    attaches (empty in a plan until the disk is created). ``serial`` is what
    the guest reads in ``/sys/block/vdX/serial`` (at most 20 bytes). ``name``
    is set for a named disk (kept in lk's data folder, outlives the
    container); ``size`` is the requested size in bytes (0: the image's).
    """

    role: str = DATA
    path: str = ""
    format: str = ""
    serial: str = ""
    read_only: bool = False
    name: str = ""
    size: int = 0


@attrs.frozen
class DiskRequest:
    """A ``--disk`` value: an anonymous disk of ``size`` bytes, or named disk ``name``.

    A named disk with a ``size`` is created when it does not exist yet; with
    ``size`` 0 it must exist.
    """

    name: str = ""
    size: int = 0

    def __str__(self) -> str:
        if not self.name:
            return format_size(self.size)
        return f"{self.name}:{format_size(self.size)}" if self.size else self.name


@attrs.frozen
class NamedDisk:
    """A named disk in lk's data folder, for ``lk disk ls``."""

    name: str
    path: Path
    format: str
    size: int
    used: int
    users: tuple[str, ...] = ()


# -- parsing ------------------------------------------------------------------------
def parse_disk_size(text: str) -> int:
    """A disk size in bytes from ``10G``, ``512M``, ``1.5G``, ``64`` (MiB) — powers of 1024.

    The result is rounded up to a whole 512-byte sector. Raises a one-line
    :class:`UsageError` for anything else, or for less than 1 MiB.
    """
    match = _SIZE.match(text)
    if not match:
        raise UsageError(f"invalid disk size {text!r}: use a size such as 64M, 10G or 1.5G")
    size = int(float(match.group(1)) * _UNIT[match.group(2).lower()])
    if size < MIN_SIZE:
        raise UsageError(f"invalid disk size {text!r}: a disk needs at least 1M")
    return -(-size // 512) * 512


def is_size(text: str) -> bool:
    """Whether ``text`` reads as a size (``64M``, ``10``), even an invalid one such as ``0``."""
    return bool(_SIZE.match(text) or _SIZE_LIKE.match(text))


def check_disk_name(name: str) -> str:
    """Refuse a disk name that could escape the disks folder or read as a size."""
    if "/" in name or "\\" in name or ".." in name or name in (".", ""):
        raise UsageError(
            f"invalid disk name {name!r}: a name is letters, digits, '.', '_' or '-' "
            "(no '/' or '..')"
        )
    if is_size(name):
        raise UsageError(
            f"invalid disk name {name!r}: it looks like a size; names start with a letter"
        )
    if not _NAME.match(name):
        raise UsageError(
            f"invalid disk name {name!r}: use letters, digits, '.', '_' or '-' "
            "(at most 63, starting with a letter or digit)"
        )
    return name


def parse_disk_option(text: str) -> DiskRequest:
    """Parse a ``--disk`` value: ``SIZE``, ``NAME:SIZE`` or ``NAME``.

    A value that reads as a size is a size (so ``--disk 10G`` is never a
    disk named "10G").
    """
    value = text.strip()
    if not value:
        raise UsageError("--disk needs SIZE, NAME:SIZE or NAME (e.g. --disk 10G)")
    if is_size(value):
        return DiskRequest(size=parse_disk_size(value))
    name, sep, size = value.rpartition(":")
    if sep:
        return DiskRequest(name=check_disk_name(name), size=parse_disk_size(size))
    return DiskRequest(name=check_disk_name(value))


def format_size(size: int) -> str:
    """``10G``, ``64M``, ``1.5G``: a size in bytes in the largest unit that reads well."""
    for unit, factor in (("T", 1024**4), ("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if size >= factor:
            value = size / factor
            return f"{value:.0f}{unit}" if value == int(value) else f"{value:.1f}{unit}"
    return f"{size}B"


def serial_for(container_id: str, index: int, name: str = "") -> str:
    """The serial the guest sees: ``lk-<id>-d<N>``, or ``lk-<name>`` for a named disk."""
    serial = f"lk-{name}" if name else f"lk-{container_id}-d{index}"
    return serial.encode("utf-8")[:MAX_SERIAL].decode("utf-8", "ignore")


# -- named disks ------------------------------------------------------------------
def find_named_disk(name: str) -> Path | None:
    """The file of named disk ``name``, or None."""
    from lk_core.paths import default_disks_dir

    folder = default_disks_dir()
    for suffix in _DISK_SUFFIXES:
        path = folder / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def disk_format(path: Path) -> str:
    """``qcow2`` or ``raw``, by content."""
    try:
        with open(path, "rb") as handle:
            return "qcow2" if handle.read(4) == _QCOW2_MAGIC else "raw"
    except OSError:
        return "raw"


def virtual_size(path: Path) -> int:
    """The size the guest sees: a qcow2 header's size field, or the file's size."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(32)
    except OSError:
        return 0
    if head[:4] == _QCOW2_MAGIC and len(head) >= 32:
        return int.from_bytes(head[24:32], "big")
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _used_bytes(path: Path) -> int:
    try:
        return path.stat().st_blocks * 512
    except (OSError, AttributeError):
        return 0


def disk_users(name: str, records: Iterable[Container], active_only: bool = True) -> list[str]:
    """The containers that have named disk ``name`` attached (active ones only by default)."""
    return [
        c.display_name
        for c in records
        if (c.is_active or not active_only) and any(d.name == name for d in c.disks)
    ]


def list_named_disks(records: Sequence[Container]) -> list[NamedDisk]:
    """Every named disk, by name, with its size, actual use and active users."""
    from lk_core.paths import default_disks_dir

    folder = default_disks_dir()
    if not folder.is_dir():
        return []
    found: dict[str, NamedDisk] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix not in _DISK_SUFFIXES or not path.is_file() or path.stem in found:
            continue
        found[path.stem] = NamedDisk(
            name=path.stem,
            path=path,
            format=disk_format(path),
            size=virtual_size(path),
            used=_used_bytes(path),
            users=tuple(disk_users(path.stem, records)),
        )
    return list(found.values())


def check_free_space(folder: Path, size: int, what: str) -> None:
    """Refuse ``size`` bytes more than the free space of the file system of ``folder``."""
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    try:
        import shutil

        free = shutil.disk_usage(existing).free
    except OSError:
        return
    if size > free:
        raise UsageError(
            f"{what} is larger than the free space in {folder} ({format_size(free)} free)"
        )


def create_named_disk(hv: Hypervisor, name: str, size: int) -> Path:
    """Create named disk ``name`` of ``size`` bytes with ``hv``'s disk tool; return its file."""
    from lk_core.hypervisor import Capability, require
    from lk_core.paths import default_disks_dir, ensure_private_dir

    check_disk_name(name)
    require(hv, Capability.DISKS)
    if find_named_disk(name) is not None:
        raise UsageError(f"a disk named {name!r} exists already (see 'lk disk ls')")
    folder = default_disks_dir()
    check_free_space(folder, size, f"disk {name} ({format_size(size)})")
    ensure_private_dir(folder)
    path, _fmt = hv.create_disk(folder / name, size)
    return path


def remove_named_disk(name: str, records: Sequence[Container]) -> Path:
    """Delete named disk ``name``, refused while an active container has it attached."""
    check_disk_name(name)
    path = find_named_disk(name)
    if path is None:
        raise NotFoundError(f"no disk named {name!r} (see 'lk disk ls')")
    users = disk_users(name, records)
    if users:
        raise UsageError(
            f"disk {name} is attached to container {users[0]}: stop it first ('lk stop {users[0]}')"
        )
    path.unlink()
    return path


# -- a container's disks ----------------------------------------------------------
def plan_disks(
    hv: Hypervisor, fmt: str, options: RunOptions, existing: Sequence[Container]
) -> list[Disk]:
    """The disks a new container will have, checked; nothing is created.

    A disk image gets a boot overlay when the hypervisor can make one
    (``DISKS``) and ``--in-place`` was not asked for. Each ``--disk`` becomes
    a data disk: anonymous ones are created in the runtime folder, named ones
    must exist (``NAME``) or are created (``NAME:SIZE``) and may not be
    attached to another active container. Sizes must fit in the free space.
    """
    from lk_core.formats import ISO, KERNEL_INITRD
    from lk_core.hypervisor import Capability, require
    from lk_core.paths import default_disks_dir, default_state_dir

    disks: list[Disk] = []
    if options.disks:
        require(hv, Capability.DISKS)
    overlay = fmt not in (ISO, KERNEL_INITRD) and not options.in_place
    if overlay and Capability.DISKS in hv.capabilities:
        disks.append(Disk(role=BOOT))
    own_total = 0
    new_named: dict[str, int] = {}
    seen: set[str] = set()
    for request in options.disks:
        if not request.name:
            own_total += request.size
            disks.append(Disk(role=DATA, size=request.size))
            continue
        check_disk_name(request.name)
        if request.name in seen:
            raise UsageError(f"--disk {request.name} is given twice")
        seen.add(request.name)
        users = disk_users(request.name, existing)
        if users:
            raise UsageError(
                f"disk {request.name} is attached to container {users[0]}: a named disk is "
                "attached to one running container at a time (stop it first)"
            )
        path = find_named_disk(request.name)
        if path is None:
            if not request.size:
                raise UsageError(
                    f"no disk named {request.name!r}: create it with 'lk disk create "
                    f"{request.name} SIZE', or give --disk {request.name}:SIZE"
                )
            new_named[request.name] = request.size
            disks.append(Disk(role=DATA, name=request.name, size=request.size))
        else:
            disks.append(
                Disk(
                    role=DATA,
                    name=request.name,
                    path=str(path),
                    format=disk_format(path),
                    size=virtual_size(path),
                )
            )
    if own_total:
        what = f"--disk {format_size(own_total)}"
        check_free_space(default_state_dir(), own_total, what)
    if new_named:
        total = sum(new_named.values())
        check_free_space(
            default_disks_dir(), total, f"--disk {', '.join(new_named)} ({format_size(total)})"
        )
    return disks


def create_container_disks(
    hv: Hypervisor, container: Container, runtime_dir: Path
) -> tuple[Disk, ...]:
    """Create the planned disks of ``container`` (overlay, data disks, new named disks).

    Returns them complete (path, format, serial), in the order the guest
    sees them: the boot disk first, then the data disks as given. Disks that
    exist already (a stopped container started again) are kept as they are.
    """
    from lk_core.paths import default_disks_dir, ensure_private_dir

    created: list[Disk] = []
    data_index = 0
    for disk in container.disks:
        if disk.serial and disk.path and Path(disk.path).exists():  # from an earlier start
            created.append(disk)
            data_index += disk.role != BOOT
            continue
        if disk.role == BOOT:
            path, fmt = hv.create_overlay(Path(container.image), container.format, runtime_dir)
            created.append(
                attrs.evolve(disk, path=str(path), format=fmt, serial=f"lk-{container.id}-boot")
            )
            continue
        serial = serial_for(container.id, data_index, disk.name)
        data_index += 1
        if disk.path:
            created.append(attrs.evolve(disk, serial=serial))
        elif disk.name:
            folder = ensure_private_dir(default_disks_dir())
            path, fmt = hv.create_disk(folder / disk.name, disk.size)
            created.append(attrs.evolve(disk, path=str(path), format=fmt, serial=serial))
        else:
            path, fmt = hv.create_disk(runtime_dir / f"data{data_index - 1}", disk.size)
            created.append(attrs.evolve(disk, path=str(path), format=fmt, serial=serial))
    return tuple(created)


def boot_disk(container: Container) -> Disk | None:
    """The container's own boot disk (its overlay), or None (ISO, kernel+initrd, in place)."""
    return next((d for d in container.disks if d.role == BOOT and d.path), None)


def writes_image_in_place(container: Container) -> bool:
    """Whether ``container`` runs its disk image in place (written, locked)."""
    from lk_core.formats import ISO, KERNEL_INITRD

    if container.format in (ISO, KERNEL_INITRD):
        return False
    return not any(d.role == BOOT for d in container.disks)


def commit_target(target: str, force: bool) -> Path:
    """Check ``lk commit``'s output path: its folder must exist; an existing file needs force."""
    path = Path(target).expanduser().absolute()
    if path.is_dir():
        raise UsageError(f"{target} is a folder: give the path of the new image file")
    if not path.parent.is_dir():
        raise UsageError(f"cannot write {target}: the folder {path.parent} does not exist")
    if path.exists() and not force:
        raise UsageError(f"{target} exists already: use --force to replace it")
    if not os.access(path.parent, os.W_OK):
        raise UsageError(f"cannot write {target}: the folder {path.parent} is not writable")
    return path
