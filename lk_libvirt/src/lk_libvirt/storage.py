"""lk's storage pool and content-addressed volume uploads (works on remote hosts).

Images and metadata CDs reach a (remote) libvirt host as volumes of a ``dir``
pool (default name ``lk``), uploaded over the connection with a stream. A
volume is named by the SHA-256 of the file's content (``sha256-HEX.EXT``), so
uploading the same file again uploads nothing.

Completeness: a volume is created with capacity 0 and grows while the upload
writes it; it counts as present only when its physical size equals the
file's size. A volume left short by an interrupted upload is deleted and
uploaded again.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import BinaryIO

import attrs
from lk_core.errors import HypervisorError

from lk_libvirt.binding import (
    Connection,
    StoragePool,
    StorageVolume,
    Stream,
    error_message,
    libvirt_module,
)

__all__ = [
    "DEFAULT_POOL",
    "SYSTEM_POOL_PATH",
    "Upload",
    "delete_volume",
    "ensure_pool",
    "file_sha256",
    "find_volume",
    "remove_pool",
    "upload_volume",
    "volume_name",
    "volume_size",
]

#: The pool lk uses unless told otherwise.
DEFAULT_POOL = "lk"
#: Where the pool lives on a system daemon when no path is given.
SYSTEM_POOL_PATH = "/var/lib/libvirt/images/lk"
_CHUNK = 1 << 20

_hash_lock = threading.Lock()
_hash_cache: dict[tuple[int, int, int, int], str] = {}


@attrs.frozen
class Upload:
    """The result of :func:`upload_volume`: the volume, its name and path on the host."""

    volume: StorageVolume
    name: str
    path: str
    size: int
    uploaded: bool


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of ``path``'s content, memoised per (device, inode, size, mtime)."""
    stat = path.stat()
    key = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    with _hash_lock:
        cached = _hash_cache.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    value = digest.hexdigest()
    with _hash_lock:
        _hash_cache[key] = value
    return value


def volume_name(path: Path) -> str:
    """The content-addressed volume name of ``path``: ``sha256-HEX`` plus its suffix (``.iso``)."""
    suffix = "".join(char for char in path.suffix.lower() if char.isalnum() or char == ".")
    return f"sha256-{file_sha256(path)}{suffix}"


def _pool_xml(name: str, path: str) -> str:
    """The XML of a ``dir`` pool."""
    pool = ET.Element("pool", {"type": "dir"})
    ET.SubElement(pool, "name").text = name
    target = ET.SubElement(pool, "target")
    ET.SubElement(target, "path").text = path
    return ET.tostring(pool, encoding="unicode")


def ensure_pool(conn: Connection, name: str = DEFAULT_POOL, path: str = "") -> StoragePool:
    """Return the active ``dir`` pool ``name``, defining, building and starting it if needed.

    ``path`` is the pool's folder on the libvirt host; required when the pool
    does not exist on a session daemon (there is no good default: the remote
    user's home is unknown here), :data:`SYSTEM_POOL_PATH` otherwise. The pool
    is marked autostart.
    """
    libvirt = libvirt_module()
    try:
        try:
            pool = conn.storagePoolLookupByName(name)
        except libvirt.libvirtError as error:
            if error.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_POOL:
                raise
            if not path:
                if "session" in conn.getURI():
                    raise HypervisorError(
                        f"storage pool {name!r} does not exist on {conn.getURI()} and no "
                        "folder was given for it"
                    ) from None
                path = SYSTEM_POOL_PATH
            pool = conn.storagePoolDefineXML(_pool_xml(name, path), 0)
            pool.build(0)
        if not pool.isActive():
            with contextlib.suppress(libvirt.libvirtError):
                pool.build(0)  # its folder may have been deleted while it was inactive
            pool.create(0)
        if not pool.autostart():
            pool.setAutostart(1)
        return pool
    except libvirt.libvirtError as error:
        raise HypervisorError(
            f"cannot set up storage pool {name!r}: {error_message(error)}"
        ) from None


def volume_size(volume: StorageVolume) -> int:
    """The physical size (bytes of the file on the host) of ``volume``."""
    libvirt = libvirt_module()
    info = volume.infoFlags(libvirt.VIR_STORAGE_VOL_GET_PHYSICAL)
    return int(info[2])


def find_volume(pool: StoragePool, name: str) -> StorageVolume | None:
    """The volume ``name`` of ``pool`` (after a refresh), or None."""
    libvirt = libvirt_module()
    try:
        pool.refresh(0)
        return pool.storageVolLookupByName(name)
    except libvirt.libvirtError as error:
        if error.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
            return None
        raise HypervisorError(f"cannot look up volume {name!r}: {error_message(error)}") from None


def _volume_xml(name: str) -> str:
    """A raw volume of capacity 0 (the upload makes it grow)."""
    volume = ET.Element("volume")
    ET.SubElement(volume, "name").text = name
    ET.SubElement(volume, "capacity", {"unit": "bytes"}).text = "0"
    target = ET.SubElement(volume, "target")
    ET.SubElement(target, "format", {"type": "raw"})
    return ET.tostring(volume, encoding="unicode")


def _reader(_stream: Stream, nbytes: int, handle: BinaryIO) -> bytes:
    """``virStream.sendAll`` source: the next bytes of ``handle``."""
    return handle.read(nbytes)


def upload_volume(conn: Connection, pool: StoragePool, path: Path, *, name: str = "") -> Upload:
    """Upload the local file ``path`` into ``pool`` unless a complete copy is there already.

    The volume is named :func:`volume_name` unless ``name`` is given.
    ``Upload.uploaded`` says whether bytes were sent. Raises HypervisorError
    (and deletes the half-written volume) when the upload fails.
    """
    libvirt = libvirt_module()
    try:
        size = path.stat().st_size
    except OSError as error:
        raise HypervisorError(f"cannot read {path}: {error.strerror}") from None
    vol_name = name or volume_name(path)
    existing = find_volume(pool, vol_name)
    if existing is not None:
        if volume_size(existing) == size:
            return Upload(existing, vol_name, existing.path(), size, uploaded=False)
        delete_volume(pool, vol_name)  # short: an interrupted upload

    try:
        volume = pool.createXML(_volume_xml(vol_name), 0)
    except libvirt.libvirtError as error:
        raise HypervisorError(
            f"cannot create volume {vol_name!r}: {error_message(error)}"
        ) from None
    stream = conn.newStream(0)
    try:
        with path.open("rb") as handle:
            volume.upload(stream, 0, size, 0)
            stream.sendAll(_reader, handle)
            stream.finish()
    except (libvirt.libvirtError, OSError) as error:
        with contextlib.suppress(libvirt.libvirtError):
            stream.abort()
        delete_volume(pool, vol_name)
        raise HypervisorError(f"cannot upload {path}: {error_message(error)}") from None
    if volume_size(volume) != size:
        delete_volume(pool, vol_name)
        raise HypervisorError(f"upload of {path} was incomplete")
    return Upload(volume, vol_name, volume.path(), size, uploaded=True)


def delete_volume(pool: StoragePool, name: str) -> bool:
    """Delete volume ``name`` of ``pool``; False if it did not exist."""
    libvirt = libvirt_module()
    volume = find_volume(pool, name)
    if volume is None:
        return False
    try:
        volume.delete(0)
    except libvirt.libvirtError as error:
        raise HypervisorError(f"cannot delete volume {name!r}: {error_message(error)}") from None
    return True


def remove_pool(pool: StoragePool) -> None:
    """Stop and undefine ``pool`` and delete its (empty) folder; delete its volumes first."""
    libvirt = libvirt_module()
    try:
        if pool.isActive():
            pool.destroy()
        pool.delete(0)
        pool.undefine()
    except libvirt.libvirtError as error:
        raise HypervisorError(
            f"cannot remove storage pool {pool.name()}: {error_message(error)}"
        ) from None
