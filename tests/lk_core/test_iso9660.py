"""Tests for lk_core.iso9660."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import stat
import struct
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lk_core.formats import ISO, detect_by_content
from lk_core.iso9660 import (
    DEFAULT_TIMESTAMP,
    MAX_NAME_LENGTH,
    SECTOR_SIZE,
    build_iso,
    write_iso,
)

XORRISO = shutil.which("xorriso")
OSIRROX = shutil.which("osirrox")
ISOINFO = shutil.which("isoinfo")
FILE = shutil.which("file")

needs_xorriso = pytest.mark.skipif(XORRISO is None, reason="xorriso is not installed")
needs_osirrox = pytest.mark.skipif(OSIRROX is None, reason="osirrox is not installed")
needs_isoinfo = pytest.mark.skipif(ISOINFO is None, reason="isoinfo (genisoimage) is not installed")
needs_file = pytest.mark.skipif(FILE is None, reason="file is not installed")

CONFIG = b'{"hostname": "lk-test", "services": ["a", "b"]}\n'
SEVERAL: dict[str, bytes] = {
    "config": CONFIG,
    "user-data": bytes(range(256)) * 20,  # 5120 bytes: three sectors
    "meta-data": b"",
    "ssh_authorized_keys.pub": b"ssh-ed25519 AAAA test\n",
    "Config": b"upper-case twin",
}


# --- a small independent ISO 9660 + Rock Ridge reader used by the tests -----


def _u32_both(data: bytes, offset: int) -> int:
    little = struct.unpack_from("<I", data, offset)[0]
    big = struct.unpack_from(">I", data, offset + 4)[0]
    assert little == big, f"both-endian mismatch at {offset}: {little} != {big}"
    return int(little)


def _u16_both(data: bytes, offset: int) -> int:
    little = struct.unpack_from("<H", data, offset)[0]
    big = struct.unpack_from(">H", data, offset + 2)[0]
    assert little == big
    return int(little)


def _susp_entries(system_use: bytes) -> dict[bytes, bytes]:
    entries: dict[bytes, bytes] = {}
    pos = 0
    while pos + 4 <= len(system_use):
        sig = system_use[pos : pos + 2]
        length = system_use[pos + 2]
        if length < 4:
            break
        assert system_use[pos + 3] == 1, "SUSP entry version must be 1"
        entries[sig] = system_use[pos + 4 : pos + length]
        pos += length
    return entries


def _records(image: bytes, extent: int, size: int) -> list[bytes]:
    records: list[bytes] = []
    assert size % SECTOR_SIZE == 0
    for sector in range(size // SECTOR_SIZE):
        base = (extent + sector) * SECTOR_SIZE
        pos = 0
        while pos < SECTOR_SIZE:
            length = image[base + pos]
            if length == 0:
                break
            assert length % 2 == 0, "directory records must have an even length"
            assert pos + length <= SECTOR_SIZE, "a record crosses a sector boundary"
            records.append(image[base + pos : base + pos + length])
            pos += length
    return records


@dataclass
class Parsed:
    volume_id: str
    root_date: bytes
    creation: bytes
    er_id: bytes
    iso_names: list[bytes]
    files: dict[str, bytes]
    modes: dict[str, int]
    root_size: int
    dot_mode: int


def _parse(image: bytes) -> Parsed:
    """Parse ``image``: return its descriptor facts, ISO names and RR files."""
    assert len(image) % SECTOR_SIZE == 0
    assert image[: 16 * SECTOR_SIZE] == bytes(16 * SECTOR_SIZE)
    pvd = image[16 * SECTOR_SIZE : 17 * SECTOR_SIZE]
    assert pvd[:8] == b"\x01CD001\x01\x00"
    assert pvd[881] == 1
    term = image[17 * SECTOR_SIZE : 18 * SECTOR_SIZE]
    assert term[:7] == b"\xffCD001\x01"
    assert term[7:] == bytes(SECTOR_SIZE - 7)
    assert _u32_both(pvd, 80) * SECTOR_SIZE == len(image)
    assert _u16_both(pvd, 120) == 1
    assert _u16_both(pvd, 124) == 1
    assert _u16_both(pvd, 128) == SECTOR_SIZE

    root_record = pvd[156:190]
    assert root_record[0] == 34
    root_extent = _u32_both(root_record, 2)
    root_size = _u32_both(root_record, 10)
    assert root_record[25] & 0x02

    # Path tables: one root entry each, pointing at the root directory.
    pt_size = _u32_both(pvd, 132)
    l_loc = struct.unpack_from("<I", pvd, 140)[0]
    m_loc = struct.unpack_from(">I", pvd, 148)[0]
    l_pt = image[l_loc * SECTOR_SIZE : l_loc * SECTOR_SIZE + pt_size]
    m_pt = image[m_loc * SECTOR_SIZE : m_loc * SECTOR_SIZE + pt_size]
    assert l_pt[:2] == b"\x01\x00" and m_pt[:2] == b"\x01\x00"
    assert struct.unpack_from("<IH", l_pt, 2) == (root_extent, 1)
    assert struct.unpack_from(">IH", m_pt, 2) == (root_extent, 1)
    assert l_pt[8] == 0 and m_pt[8] == 0

    records = _records(image, root_extent, root_size)
    dot, dotdot, *file_records = records
    assert dot[32:34] == b"\x01\x00"
    assert dotdot[32:34] == b"\x01\x01"
    for rec in (dot, dotdot):
        assert _u32_both(rec, 2) == root_extent
        assert _u32_both(rec, 10) == root_size
    dot_susp = _susp_entries(dot[34:])
    assert dot[34:36] == b"SP", "SP must be the first SUSP entry of the root '.'"
    assert dot_susp[b"SP"] == b"\xbe\xef\x00"
    ce = dot_susp[b"CE"]
    ce_block, ce_offset, ce_len = _u32_both(ce, 0), _u32_both(ce, 8), _u32_both(ce, 16)
    ce_area = image[ce_block * SECTOR_SIZE + ce_offset :][:ce_len]
    er = _susp_entries(ce_area)[b"ER"]
    len_id = er[0]
    er_id = er[4 : 4 + len_id]

    iso_names: list[bytes] = []
    files: dict[str, bytes] = {}
    modes: dict[str, int] = {}
    for rec in file_records:
        name_len = rec[32]
        iso_name = rec[33 : 33 + name_len]
        iso_names.append(iso_name)
        assert rec[25] == 0, "files only, no directories"
        su_start = 33 + name_len + (1 if name_len % 2 == 0 else 0)
        susp = _susp_entries(rec[su_start:])
        nm = susp[b"NM"]
        assert nm[0] == 0
        name = nm[1:].decode("ascii")
        extent = _u32_both(rec, 2)
        size = _u32_both(rec, 10)
        assert extent * SECTOR_SIZE + size <= len(image)
        files[name] = image[extent * SECTOR_SIZE : extent * SECTOR_SIZE + size]
        modes[name] = _u32_both(susp[b"PX"], 0)

    return Parsed(
        volume_id=pvd[40:72].decode("ascii").rstrip(" "),
        root_date=root_record[18:25],
        creation=pvd[813:830],
        er_id=er_id,
        iso_names=iso_names,
        files=files,
        modes=modes,
        root_size=root_size,
        dot_mode=_u32_both(dot_susp[b"PX"], 0),
    )


def _write(tmp_path: Path, files: Mapping[str, bytes], name: str = "user.iso") -> Path:
    path = tmp_path / name
    write_iso(path, files)
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=True, timeout=60)


def _make_writable(path: Path) -> None:
    # osirrox restores the image's read-only modes; let tmp_path be cleaned.
    for root, dirs, _files in os.walk(path):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o755)
    os.chmod(path, 0o755)


# --- structure ---------------------------------------------------------------


def test_config_only_image_structure() -> None:
    image = build_iso({"config": CONFIG})
    parsed = _parse(image)
    assert parsed.volume_id == "CONFIG"
    assert parsed.files == {"config": CONFIG}
    assert parsed.iso_names == [b"CONFIG.;1"]
    assert parsed.er_id == b"RRIP_1991A"
    assert parsed.modes == {"config": 0o100444}
    assert parsed.dot_mode == 0o040555
    # 16 system sectors, PVD, terminator, 2 path tables, CE, root, 1 data sector.
    assert len(image) == 23 * SECTOR_SIZE


def test_cd001_magic_at_0x8001(tmp_path: Path) -> None:
    image = build_iso({"config": CONFIG})
    assert image[0x8001:0x8006] == b"CD001"
    path = _write(tmp_path, {"config": CONFIG}, "data.img")
    assert detect_by_content(path) == ISO


@needs_file
def test_file_magic_sees_iso9660(tmp_path: Path) -> None:
    path = _write(tmp_path, {"config": CONFIG})
    out = _run("file", "-b", str(path)).stdout
    assert "ISO 9660" in out
    assert "CONFIG" in out


def test_several_files_round_trip() -> None:
    parsed = _parse(build_iso(SEVERAL, "CIDATA"))
    assert parsed.files == SEVERAL
    assert parsed.volume_id == "CIDATA"


def test_iso_names_are_level1_sorted_and_unique() -> None:
    parsed = _parse(build_iso(SEVERAL))
    names = parsed.iso_names
    assert len(set(names)) == len(names)
    # The all-lower-case "config" keeps the plain identifier, so a reader
    # without Rock Ridge (Linux map=normal) still shows it as "config".
    assert b"CONFIG.;1" in names
    assert b"CONFIG1.;1" in names
    assert b"USER_DAT.;1" in names
    assert b"SSH_AUTH.PUB;1" in names
    for name in names:
        base, _, rest = name.partition(b".")
        ext, _, version = rest.partition(b";")
        assert 1 <= len(base) <= 8 and len(ext) <= 3 and version == b"1"
        assert all(c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_" for c in base + ext)
    assert names == sorted(names, key=lambda n: (n.split(b".")[0].ljust(8), n.split(b".")[1]))
    iso_to_rr = dict(zip(names, parsed.files, strict=True))
    assert iso_to_rr[b"CONFIG.;1"] == "config"


def test_many_files_span_several_directory_sectors() -> None:
    files = {f"file-{i:03d}-" + "n" * 50: bytes([i]) * i for i in range(80)}
    files["config"] = CONFIG
    parsed = _parse(build_iso(files))
    assert parsed.root_size > SECTOR_SIZE
    assert parsed.files == files


def test_empty_mapping_gives_empty_root() -> None:
    parsed = _parse(build_iso({}))
    assert parsed.files == {}


def test_empty_and_exact_sector_files() -> None:
    files = {"empty": b"", "one": b"x" * SECTOR_SIZE, "two": b"y" * (SECTOR_SIZE + 1)}
    assert _parse(build_iso(files)).files == files


def test_bytearray_and_memoryview_contents() -> None:
    files: dict[str, bytes] = {"a": bytearray(b"abc"), "b": memoryview(b"def")}  # type: ignore[dict-item]
    assert _parse(build_iso(files)).files == {"a": b"abc", "b": b"def"}


def test_long_name_at_limit() -> None:
    name = "a" * MAX_NAME_LENGTH
    assert _parse(build_iso({name: b"1"})).files == {name: b"1"}


@given(
    st.dictionaries(
        st.text(
            alphabet="abcXYZ019._+-",
            min_size=1,
            max_size=MAX_NAME_LENGTH,
        ).filter(lambda n: n not in (".", "..")),
        st.binary(max_size=5000),
        max_size=12,
    )
)
@settings(max_examples=60, deadline=None)
def test_round_trip_property(files: dict[str, bytes]) -> None:
    parsed = _parse(build_iso(files))
    assert parsed.files == files
    assert len(set(parsed.iso_names)) == len(parsed.iso_names)


# --- dates and determinism ---------------------------------------------------


def test_deterministic() -> None:
    first = build_iso(SEVERAL)
    second = build_iso(dict(reversed(list(SEVERAL.items()))))
    assert first == second


def test_default_timestamp_recorded() -> None:
    parsed = _parse(build_iso({"config": CONFIG}))
    assert dt.datetime(1980, 1, 1, tzinfo=dt.timezone.utc) == DEFAULT_TIMESTAMP
    assert parsed.root_date == bytes([80, 1, 1, 0, 0, 0, 0])
    assert parsed.creation == b"1980010100000000\x00"


def test_timestamp_parameter_is_converted_to_utc() -> None:
    cet = dt.timezone(dt.timedelta(hours=1))
    when = dt.datetime(2024, 3, 5, 7, 8, 9, 123456, tzinfo=cet)
    image = build_iso({"config": CONFIG}, timestamp=when)
    parsed = _parse(image)
    assert parsed.root_date == bytes([124, 3, 5, 6, 8, 9, 0])
    assert parsed.creation == b"2024030506080900\x00"
    assert image != build_iso({"config": CONFIG})
    assert image == build_iso({"config": CONFIG}, timestamp=when)


@pytest.mark.parametrize(
    "when",
    [
        dt.datetime(2024, 1, 1),  # naive
        dt.datetime(1899, 12, 31, tzinfo=dt.timezone.utc),
        dt.datetime(2156, 1, 1, tzinfo=dt.timezone.utc),
    ],
)
def test_bad_timestamp(when: dt.datetime) -> None:
    with pytest.raises(ValueError):
        build_iso({"config": CONFIG}, timestamp=when)


# --- validation --------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a/b",
        "/config",
        ".",
        "..",
        "a" * (MAX_NAME_LENGTH + 1),
        "has space",
        "ünï",
        "a;1",
        "a\n",
    ],
)
def test_bad_names(name: str) -> None:
    with pytest.raises(ValueError):
        build_iso({name: b"x"})


def test_non_str_name_and_non_bytes_contents() -> None:
    with pytest.raises(TypeError):
        build_iso({b"config": b"x"})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        build_iso({"config": "text"})  # type: ignore[dict-item]


@pytest.mark.parametrize("volume_id", ["", "A" * 33, "HAS SPACE", "a-b", "ÄÖ"])
def test_bad_volume_ids(volume_id: str) -> None:
    with pytest.raises(ValueError):
        build_iso({"config": CONFIG}, volume_id)


@pytest.mark.parametrize("volume_id", ["CONFIG", "cidata", "A" * 32, "X_1"])
def test_good_volume_ids(volume_id: str) -> None:
    assert _parse(build_iso({"config": CONFIG}, volume_id)).volume_id == volume_id


# --- write_iso -----------------------------------------------------------------


def test_write_iso_mode_and_content(tmp_path: Path) -> None:
    path = _write(tmp_path, SEVERAL)
    assert path.read_bytes() == build_iso(SEVERAL)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["user.iso"]


def test_write_iso_replaces_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "user.iso"
    path.write_bytes(b"old")
    path.chmod(0o644)
    write_iso(path, {"config": CONFIG}, "CONFIG")
    assert path.read_bytes() == build_iso({"config": CONFIG})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_write_iso_invalid_input_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_iso(tmp_path / "user.iso", {"a/b": b"x"})
    assert list(tmp_path.iterdir()) == []


def test_write_iso_failed_rename_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "user.iso"
    target.mkdir()
    (target / "keep").write_bytes(b"")
    with pytest.raises(OSError):
        write_iso(target, {"config": CONFIG})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["user.iso"]


def test_write_iso_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_iso(tmp_path / "nope" / "user.iso", {"config": CONFIG})


# --- real tools --------------------------------------------------------------


@needs_xorriso
def test_xorriso_lists_files(tmp_path: Path) -> None:
    path = _write(tmp_path, SEVERAL)
    result = _run("xorriso", "-indev", str(path), "-find", "/", "-type", "f")
    listed = sorted(line.strip().strip("'") for line in result.stdout.splitlines())
    assert listed == sorted(f"/{name}" for name in SEVERAL)
    assert "SORRY" not in result.stderr and "FAILURE" not in result.stderr


@needs_xorriso
def test_xorriso_volume_id_and_rock_ridge_attributes(tmp_path: Path) -> None:
    path = _write(tmp_path, {"config": CONFIG}, "u.iso")
    result = _run("xorriso", "-indev", str(path), "-pvd_info", "-lsdl", "/config")
    assert "Volume Id    : CONFIG" in result.stdout
    line = next(ln for ln in result.stdout.splitlines() if ln.endswith("'/config'"))
    assert line.startswith("-r--r--r--")
    assert f" {len(CONFIG)} " in line
    assert " 1980 " in line


@needs_osirrox
def test_osirrox_extracts_identical_bytes(tmp_path: Path) -> None:
    files = dict(SEVERAL)
    files["big.bin"] = os.urandom(3 * 1024 * 1024 + 7)
    path = _write(tmp_path, files)
    out = tmp_path / "out"
    _run("osirrox", "-indev", str(path), "-extract", "/", str(out))
    try:
        extracted = {p.name: p.read_bytes() for p in out.iterdir()}
    finally:
        _make_writable(out)
    assert extracted == files


@needs_xorriso
def test_xorriso_extracts_many_files(tmp_path: Path) -> None:
    files = {f"file-{i:03d}-" + "n" * 50: os.urandom(i * 41) for i in range(70)}
    files["config"] = CONFIG
    path = _write(tmp_path, files)
    out = tmp_path / "out"
    _run("xorriso", "-osirrox", "on", "-indev", str(path), "-extract", "/", str(out))
    try:
        extracted = {p.name: p.read_bytes() for p in out.iterdir()}
    finally:
        _make_writable(out)
    assert extracted == files


@needs_isoinfo
def test_isoinfo_descriptor(tmp_path: Path) -> None:
    path = _write(tmp_path, {"config": CONFIG})
    out = _run("isoinfo", "-d", "-i", str(path)).stdout
    assert "Volume id: CONFIG" in out
    assert "Logical block size is: 2048" in out
    assert f"Volume size is: {path.stat().st_size // SECTOR_SIZE}" in out
    assert "Rock Ridge signatures version 1 found" in out


@needs_isoinfo
def test_isoinfo_rock_ridge_listing(tmp_path: Path) -> None:
    path = _write(tmp_path, SEVERAL)
    out = _run("isoinfo", "-R", "-l", "-i", str(path)).stdout
    names = {
        line.split()[-1]
        for line in out.splitlines()
        if line.startswith("-r--r--r--")  # regular files only
    }
    assert names == set(SEVERAL)
    plain = _run("isoinfo", "-l", "-i", str(path)).stdout
    assert "CONFIG.;1" in plain


@needs_isoinfo
def test_isoinfo_extracts_config(tmp_path: Path) -> None:
    path = _write(tmp_path, SEVERAL)
    for name, data in SEVERAL.items():
        got = subprocess.run(
            ["isoinfo", "-R", "-i", str(path), "-x", f"/{name}"],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
        assert got == data, name


# --- the Linux kernel --------------------------------------------------------


def _mount_or_skip(image: Path, mountpoint: Path) -> None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("loop-mounting needs root and mount(8)")
    mountpoint.mkdir()
    result = subprocess.run(
        ["mount", "-o", "loop,ro", "-t", "iso9660", str(image), str(mountpoint)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot loop-mount iso9660 here: {' '.join(result.stderr.split())}")


def _umount(mountpoint: Path) -> None:
    subprocess.run(["umount", str(mountpoint)], capture_output=True, timeout=60, check=False)


@pytest.mark.parametrize(
    "files",
    [
        {"config": CONFIG},
        {"config": b"z" * 5000},
        SEVERAL,
    ],
    ids=["config", "multi-sector", "several"],
)
def test_linux_mount(tmp_path: Path, files: dict[str, bytes]) -> None:
    image = _write(tmp_path, files)
    mountpoint = tmp_path / "mnt"
    _mount_or_skip(image, mountpoint)
    try:
        assert sorted(os.listdir(mountpoint)) == sorted(files)
        for name, data in files.items():
            assert (mountpoint / name).read_bytes() == data
    finally:
        _umount(mountpoint)
