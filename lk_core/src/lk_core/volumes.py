"""Volumes: parsing ``HOST:GUEST[:ro]`` and giving each share a unique 9p mount tag."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable
from pathlib import Path

import attrs

from lk_core.errors import PathArgumentNotFoundError, UsageError
from lk_core.model import VolumeMapping

TAG_PREFIX = "lkvol"


#: Guest folders a share must not hide: the guest's root and its kernel file systems.
RESERVED_GUEST_PATHS = ("/", "/proc", "/sys", "/dev")


def check_guest_path(guest: str, spec: str) -> None:
    """Refuse a guest mount point that is relative, not normalised, or reserved.

    A normalised path has no ``.`` or ``..`` segment, no ``//`` and no
    trailing ``/``; ``/``, ``/proc``, ``/sys``, ``/dev`` and anything under
    them are reserved (mounting over them breaks the guest).
    """
    if not guest.startswith("/"):
        raise UsageError(f"invalid volume {spec!r}: the guest path must be absolute")
    normal = posixpath.normpath(guest)
    if normal.startswith("//"):
        normal = "/" + normal.lstrip("/")
    for reserved in RESERVED_GUEST_PATHS:
        if normal == reserved or (reserved != "/" and normal.startswith(reserved + "/")):
            where = "the guest's root" if reserved == "/" else f"the guest's {reserved}"
            raise UsageError(
                f"invalid volume {spec!r}: cannot mount over {where}; choose another guest "
                "path, e.g. /data"
            )
    if guest != normal:
        raise UsageError(
            f"invalid volume {spec!r}: the guest path {guest!r} is not normalised "
            f"(no '.' or '..' segments, '//' or trailing '/'): write {normal!r}"
        )


def parse_volume(spec: str) -> VolumeMapping:
    """Parse ``HOST:GUEST[:ro|:rw]``; the host path must be an existing directory."""
    parts = spec.split(":")
    read_only = False
    if len(parts) == 3 and parts[2] in ("ro", "rw"):
        read_only = parts[2] == "ro"
        parts = parts[:2]
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise UsageError(
            f"invalid volume {spec!r}: expected HOST_DIR:GUEST_PATH[:ro], e.g. ./data:/data:ro"
        )
    host, guest = parts
    check_guest_path(guest, spec)
    host_path = Path(host).expanduser()
    if not host_path.exists():
        raise PathArgumentNotFoundError(f"volume host path does not exist: {host}")
    if not host_path.is_dir():
        raise UsageError(f"volume host path is not a directory: {host}")
    return VolumeMapping(
        host_path=os.path.abspath(host_path), guest_path=guest, read_only=read_only
    )


def assign_tags(volumes: Iterable[VolumeMapping]) -> tuple[VolumeMapping, ...]:
    """Give each volume the 9p mount tag ``lkvol<N>`` (unique within the VM).

    Guest paths must be unique too: two shares mounted at one path would hide
    each other.
    """
    tagged = []
    guests: set[str] = set()
    for index, volume in enumerate(volumes):
        guest = volume.guest_path.rstrip("/") or "/"
        if guest in guests:
            raise UsageError(f"two volumes are mounted at the same guest path {guest}")
        guests.add(guest)
        tagged.append(attrs.evolve(volume, tag=f"{TAG_PREFIX}{index}"))
    return tuple(tagged)
