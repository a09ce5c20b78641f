"""A minimal ISO 9660 image writer for LinuxKit user data.

LinuxKit reads its user data from a small CD-ROM image holding a file named
``config``. :func:`build_iso` builds such an image in pure Python, so users need
no ``xorriso`` or ``genisoimage``; :func:`write_iso` writes it to a file.

The image follows ECMA-119 (ISO 9660) with Rock Ridge (RRIP 1.10,
``RRIP_1991A``) extensions:

- sectors 0-15: the system area, all zeros;
- sector 16: the Primary Volume Descriptor (``CD001`` at byte 0x8001);
- sector 17: the Volume Descriptor Set Terminator;
- sectors 18 and 19: the little- and big-endian path tables;
- sector 20: the SUSP continuation area holding the Rock Ridge ``ER`` entry;
- then the root directory (``.``, ``..`` and one record per file, as many
  sectors as needed), then each file's data, each starting on a new sector.

Every file lives in the root directory. Its ISO 9660 name is a level-1 (8.3,
upper-case) form of its real name, made unique; its real name is recorded in a
Rock Ridge ``NM`` entry, so Linux (and ``xorriso``, ``isoinfo -R``, ...) sees
exactly the name given, e.g. ``config`` or ``user-data``. Files are mode 0444
and the root directory 0555, both owned by uid and gid 0.

Output is deterministic: the same files, volume id and timestamp give the same
bytes. Every date in the image is ``timestamp``, which defaults to the fixed
:data:`DEFAULT_TIMESTAMP`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import struct
import tempfile
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "DEFAULT_TIMESTAMP",
    "MAX_FILE_SIZE",
    "MAX_NAME_LENGTH",
    "SECTOR_SIZE",
    "build_iso",
    "write_iso",
]

SECTOR_SIZE = 2048
"""The logical sector (and block) size of the image, in bytes."""

MAX_NAME_LENGTH = 64
"""The longest file name :func:`build_iso` accepts."""

MAX_FILE_SIZE = 0xFFFF_FFFF
"""The largest file ISO 9660 can record in one extent (4 GiB - 1)."""

DEFAULT_TIMESTAMP = dt.datetime(1980, 1, 1, tzinfo=dt.timezone.utc)
"""The date recorded in images when no ``timestamp`` is given."""

# Sector numbers of the fixed parts of the image.
_SYSTEM_AREA_SECTORS = 16
_PVD_SECTOR = 16
_TERMINATOR_SECTOR = 17
_L_PATH_TABLE_SECTOR = 18
_M_PATH_TABLE_SECTOR = 19
_CONTINUATION_SECTOR = 20
_ROOT_SECTOR = 21

_NAME_RE = re.compile(r"[A-Za-z0-9._+-]+")
_VOLUME_ID_RE = re.compile(r"[A-Za-z0-9_]{1,32}")
_NOT_D_CHARACTER_RE = re.compile(r"[^A-Z0-9_]")

_FLAG_DIRECTORY = 0x02

# Rock Ridge file modes (st_mode values) and the ER entry's texts, as
# genisoimage and libisofs write them for RRIP 1.10.
_DIR_MODE = 0o040555
_FILE_MODE = 0o100444
_RRIP_ID = b"RRIP_1991A"
_RRIP_DESCRIPTOR = (
    b"THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS"
)
_RRIP_SOURCE = (
    b"PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  "
    b"SEE PUBLISHER IDENTIFIER IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION."
)
# TF flags: modification, access and attribute-change times, short form.
_TF_FLAGS = 0x02 | 0x04 | 0x08


def build_iso(
    files: Mapping[str, bytes],
    volume_id: str = "CONFIG",
    *,
    timestamp: dt.datetime = DEFAULT_TIMESTAMP,
) -> bytes:
    """Build an ISO 9660 image holding ``files`` in its root directory.

    ``files`` maps each file name to its contents. A name must be 1 to
    :data:`MAX_NAME_LENGTH` characters from ``A-Z a-z 0-9 . _ + -`` and not
    ``.`` or ``..``; it is kept exactly (case included) through Rock Ridge.
    ``volume_id`` is 1 to 32 characters from ``A-Z a-z 0-9 _``. ``timestamp``
    (timezone-aware, years 1900-2155) is recorded as every date in the image.

    Returns the whole image; its size is a multiple of :data:`SECTOR_SIZE`.
    Raises :class:`ValueError` for an invalid name, volume id or timestamp,
    or a file larger than :data:`MAX_FILE_SIZE`, and :class:`TypeError` if a
    name is not a ``str`` or contents are not bytes-like.
    """
    _check_volume_id(volume_id)
    when = _check_timestamp(timestamp)
    entries = _file_entries(files)

    # Every record's size is known before any extent is placed, so lay out the
    # root directory first with placeholder extents to learn its size.
    continuation = _er_entry()
    root_records = _root_records(entries, 0, when, continuation)
    root_size = len(_pack_records(root_records))
    first_file_sector = _ROOT_SECTOR + root_size // SECTOR_SIZE

    extents: list[int] = []
    sector = first_file_sector
    for entry in entries:
        # An empty file occupies no sector; it points at the next free one.
        extents.append(sector)
        sector += _sectors(len(entry.data))
    total_sectors = sector

    root_records = _root_records(entries, root_size, when, continuation, extents)
    root = _pack_records(root_records)
    if len(root) != root_size:  # pragma: no cover - sizes do not depend on extents
        raise AssertionError("root directory size changed during layout")

    parts = [
        bytes(_SYSTEM_AREA_SECTORS * SECTOR_SIZE),
        _primary_volume_descriptor(volume_id, total_sectors, root_size, when),
        _terminator(),
        _pad_sector(_path_table_record(little_endian=True)),
        _pad_sector(_path_table_record(little_endian=False)),
        _pad_sector(continuation),
        root,
    ]
    parts.extend(_pad_sector(entry.data) for entry in entries)
    image = b"".join(parts)
    if len(image) != total_sectors * SECTOR_SIZE:  # pragma: no cover - layout invariant
        raise AssertionError("image size does not match the volume space size")
    return image


def write_iso(
    path: Path,
    files: Mapping[str, bytes],
    volume_id: str = "CONFIG",
    *,
    timestamp: dt.datetime = DEFAULT_TIMESTAMP,
) -> None:
    """Build an ISO 9660 image (see :func:`build_iso`) and write it to ``path``.

    The image goes to a temporary file in the same folder, mode 0600, which is
    fsynced and then renamed over ``path``: readers see the old file or the
    whole new one, never a partial image. The folder must exist. Raises what
    :func:`build_iso` raises, and :class:`OSError` if the file cannot be
    written (the temporary file is then removed).
    """
    path = Path(path)
    image = build_iso(files, volume_id, timestamp=timestamp)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as tmp:
            os.fchmod(tmp.fileno(), 0o600)
            tmp.write(image)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise


class _Entry:
    """One file: its real (Rock Ridge) name, ISO 9660 identifier and data."""

    __slots__ = ("data", "iso_id", "name")

    def __init__(self, name: str, iso_id: bytes, data: bytes) -> None:
        self.name = name
        self.iso_id = iso_id
        self.data = data


def _check_volume_id(volume_id: str) -> None:
    if not isinstance(volume_id, str) or not _VOLUME_ID_RE.fullmatch(volume_id):
        raise ValueError(
            f"invalid ISO 9660 volume id {volume_id!r}: "
            "use 1 to 32 characters from A-Z, a-z, 0-9 and _"
        )


def _check_timestamp(timestamp: dt.datetime) -> dt.datetime:
    if not isinstance(timestamp, dt.datetime):
        raise TypeError(f"timestamp must be a datetime, not {type(timestamp).__name__}")
    if timestamp.tzinfo is None or timestamp.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware")
    when = timestamp.astimezone(dt.timezone.utc)
    if not 1900 <= when.year <= 2155:
        raise ValueError(f"timestamp {timestamp.isoformat()} is outside 1900-2155")
    return when.replace(microsecond=0)


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"file names must be str, not {type(name).__name__}")
    if not name:
        raise ValueError("file names must not be empty")
    if "/" in name:
        raise ValueError(f"invalid file name {name!r}: only files in the root are supported")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"file name {name!r} is longer than {MAX_NAME_LENGTH} characters")
    if name in (".", "..") or not _NAME_RE.fullmatch(name):
        raise ValueError(
            f"invalid file name {name!r}: use characters from A-Z, a-z, 0-9, '.', '_', '+', '-'"
        )
    return name


def _file_entries(files: Mapping[str, bytes]) -> list[_Entry]:
    """Validate ``files`` and give each a unique level-1 ISO 9660 identifier.

    The entries come back in directory order (sorted by identifier).
    """
    checked: list[tuple[str, bytes]] = []
    for raw_name, raw_data in files.items():
        name = _check_name(raw_name)
        if not isinstance(raw_data, bytes | bytearray | memoryview):
            raise TypeError(f"contents of {name!r} must be bytes, not {type(raw_data).__name__}")
        data = bytes(raw_data)
        if len(data) > MAX_FILE_SIZE:
            raise ValueError(f"file {name!r} is larger than {MAX_FILE_SIZE} bytes")
        checked.append((name, data))
    # All-lower-case names pick identifiers first: a reader without Rock Ridge
    # (Linux's default map=normal lower-cases them) then still finds "config".
    checked.sort(key=lambda item: (item[0] != item[0].lower(), item[0]))

    used: set[tuple[str, str]] = set()
    entries: list[tuple[tuple[str, str], _Entry]] = []
    for name, data in checked:
        base, ext = _level1_name(name)
        unique_base = base
        counter = 0
        while (unique_base, ext) in used:
            counter += 1
            suffix = str(counter)
            unique_base = base[: 8 - len(suffix)] + suffix
        used.add((unique_base, ext))
        iso_id = f"{unique_base}.{ext};1".encode("ascii")
        # ECMA-119 9.3: order by name, then extension, each padded with spaces.
        key = (unique_base.ljust(8), ext.ljust(3))
        entries.append((key, _Entry(name, iso_id, data)))
    entries.sort(key=lambda item: item[0])
    return [entry for _, entry in entries]


def _level1_name(name: str) -> tuple[str, str]:
    """Return the 8.3 upper-case d-character (base, extension) for ``name``."""
    base, dot, ext = name.rpartition(".")
    if not dot:
        base, ext = name, ""
    base = _NOT_D_CHARACTER_RE.sub("_", base.upper())[:8] or "_"
    ext = _NOT_D_CHARACTER_RE.sub("_", ext.upper())[:3]
    return base, ext


def _sectors(size: int) -> int:
    return -(-size // SECTOR_SIZE)


def _pad_sector(data: bytes) -> bytes:
    return data + bytes(_sectors(len(data)) * SECTOR_SIZE - len(data))


def _both16(value: int) -> bytes:
    return struct.pack("<H", value) + struct.pack(">H", value)


def _both32(value: int) -> bytes:
    return struct.pack("<I", value) + struct.pack(">I", value)


def _text(value: str, size: int) -> bytes:
    return value.encode("ascii").ljust(size, b" ")


def _record_date(when: dt.datetime) -> bytes:
    """The 7-byte date of directory records and Rock Ridge TF (ECMA-119 9.1.5)."""
    return bytes([when.year - 1900, when.month, when.day, when.hour, when.minute, when.second, 0])


def _descriptor_date(when: dt.datetime | None) -> bytes:
    """The 17-byte date of volume descriptors (ECMA-119 8.4.26.1)."""
    if when is None:
        return b"0" * 16 + b"\x00"
    return f"{when:%Y%m%d%H%M%S}00".encode("ascii") + b"\x00"


def _susp(signature: bytes, payload: bytes) -> bytes:
    """One System Use Sharing Protocol entry, version 1."""
    return signature + bytes([4 + len(payload), 1]) + payload


def _er_entry() -> bytes:
    return _susp(
        b"ER",
        bytes([len(_RRIP_ID), len(_RRIP_DESCRIPTOR), len(_RRIP_SOURCE), 1])
        + _RRIP_ID
        + _RRIP_DESCRIPTOR
        + _RRIP_SOURCE,
    )


def _px_entry(mode: int, links: int) -> bytes:
    return _susp(b"PX", _both32(mode) + _both32(links) + _both32(0) + _both32(0))


def _tf_entry(when: dt.datetime) -> bytes:
    return _susp(b"TF", bytes([_TF_FLAGS]) + _record_date(when) * 3)


def _directory_record(
    extent: int,
    size: int,
    when: dt.datetime,
    flags: int,
    file_id: bytes,
    system_use: bytes = b"",
) -> bytes:
    """One directory record (ECMA-119 9.1), padded to an even length."""
    body = (
        bytes([0])  # extended attribute record length
        + _both32(extent)
        + _both32(size)
        + _record_date(when)
        + bytes([flags, 0, 0])  # flags, file unit size, interleave gap
        + _both16(1)  # volume sequence number
        + bytes([len(file_id)])
        + file_id
        + (b"\x00" if len(file_id) % 2 == 0 else b"")
        + system_use
    )
    if len(body) % 2 == 0:  # with the length byte the record must be even
        body += b"\x00"
    length = 1 + len(body)
    if length > 255:  # pragma: no cover - names are at most 64 characters
        raise AssertionError("directory record too long")
    return bytes([length]) + body


def _root_records(
    entries: list[_Entry],
    root_size: int,
    when: dt.datetime,
    continuation: bytes,
    extents: list[int] | None = None,
) -> list[bytes]:
    """The root directory's records: ``.``, ``..``, then one per file."""
    dir_px = _px_entry(_DIR_MODE, 2)
    tf = _tf_entry(when)
    # SUSP 5.3: SP must be the first entry of the root's "." record. The CE
    # entry points at the continuation area holding ER (too long to fit here).
    sp = _susp(b"SP", b"\xbe\xef\x00")
    ce = _susp(b"CE", _both32(_CONTINUATION_SECTOR) + _both32(0) + _both32(len(continuation)))
    records = [
        _directory_record(
            _ROOT_SECTOR, root_size, when, _FLAG_DIRECTORY, b"\x00", sp + ce + dir_px + tf
        ),
        _directory_record(_ROOT_SECTOR, root_size, when, _FLAG_DIRECTORY, b"\x01", dir_px + tf),
    ]
    for index, entry in enumerate(entries):
        nm = _susp(b"NM", b"\x00" + entry.name.encode("ascii"))
        extent = extents[index] if extents is not None else 0
        records.append(
            _directory_record(
                extent, len(entry.data), when, 0, entry.iso_id, _px_entry(_FILE_MODE, 1) + tf + nm
            )
        )
    return records


def _pack_records(records: list[bytes]) -> bytes:
    """Lay directory records into whole sectors; no record crosses a sector end."""
    out = bytearray()
    for record in records:
        room = SECTOR_SIZE - len(out) % SECTOR_SIZE
        if len(record) > room:
            out += bytes(room)
        out += record
    return _pad_sector(bytes(out))


def _path_table_record(*, little_endian: bool) -> bytes:
    """The path table: one record, for the root directory (ECMA-119 9.4)."""
    order = "<" if little_endian else ">"
    # Identifier length 1, no extended attributes, extent, parent number 1,
    # identifier 0x00, pad byte (the identifier length is odd).
    return struct.pack(f"{order}BBIH", 1, 0, _ROOT_SECTOR, 1) + b"\x00\x00"


def _primary_volume_descriptor(
    volume_id: str, total_sectors: int, root_size: int, when: dt.datetime
) -> bytes:
    """The Primary Volume Descriptor (ECMA-119 8.4)."""
    root_record = _directory_record(_ROOT_SECTOR, root_size, when, _FLAG_DIRECTORY, b"\x00")
    path_table_size = len(_path_table_record(little_endian=True))
    pvd = (
        b"\x01CD001\x01\x00"
        + _text("", 32)  # system identifier
        + _text(volume_id, 32)
        + bytes(8)
        + _both32(total_sectors)
        + bytes(32)
        + _both16(1)  # volume set size
        + _both16(1)  # volume sequence number
        + _both16(SECTOR_SIZE)
        + _both32(path_table_size)
        + struct.pack("<I", _L_PATH_TABLE_SECTOR)
        + struct.pack("<I", 0)  # optional L path table
        + struct.pack(">I", _M_PATH_TABLE_SECTOR)
        + struct.pack(">I", 0)  # optional M path table
        + root_record
        + _text("", 128)  # volume set identifier
        + _text("", 128)  # publisher identifier
        + _text("", 128)  # data preparer identifier
        + _text("LK", 128)  # application identifier
        + _text("", 37)  # copyright file identifier
        + _text("", 37)  # abstract file identifier
        + _text("", 37)  # bibliographic file identifier
        + _descriptor_date(when)  # creation
        + _descriptor_date(when)  # modification
        + _descriptor_date(None)  # expiration: not specified
        + _descriptor_date(None)  # effective: not specified
        + b"\x01\x00"  # file structure version, reserved
    )
    if len(pvd) != 883:  # pragma: no cover - fixed layout
        raise AssertionError(f"primary volume descriptor is {len(pvd)} bytes, not 883")
    return _pad_sector(pvd)


def _terminator() -> bytes:
    return _pad_sector(b"\xffCD001\x01")
