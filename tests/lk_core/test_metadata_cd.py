"""The metadata CD (lk_core.metadata.write_cd, write_metadata_cd): readable, right label and names.

Every image is read back with pycdlib, and with xorriso/osirrox, isoinfo,
file(1) and the Linux kernel (loop mount, as root) where they are available.
The end-to-end proof that a guest reads it is tests/e2e/test_qemu.py.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import pycdlib
import pytest
from lk_core.formats import ISO, detect_by_content
from lk_core.metadata import CD_LABEL, CD_NAME, CONFIG_FILE, write_cd, write_metadata_cd
from lk_core.model import Container, RunOptions, VolumeMapping

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
}


# --- reading back with pycdlib -------------------------------------------------


class Read:
    """What pycdlib sees in an image."""

    def __init__(self, path: Path) -> None:
        self.iso = pycdlib.PyCdlib()
        self.iso.open(str(path))

    def close(self) -> None:
        self.iso.close()

    @property
    def label(self) -> str:
        return bytes(self.iso.pvd.volume_identifier).decode("ascii").rstrip(" ")

    def rr_names(self) -> dict[str, str]:
        """Rock Ridge name -> ISO 9660 name of each file in the root."""
        names: dict[str, str] = {}
        for child in self.iso.list_children(iso_path="/"):
            if child.is_dot() or child.is_dotdot():
                continue
            assert child.rock_ridge is not None, "every file carries Rock Ridge"
            names[child.rock_ridge.name().decode()] = child.file_identifier().decode()
        return names

    def read(self, rr_name: str) -> bytes:
        out = io.BytesIO()
        self.iso.get_file_from_iso_fp(out, rr_path=f"/{rr_name}")
        return out.getvalue()

    def mode(self, rr_name: str) -> int:
        record = self.iso.get_record(rr_path=f"/{rr_name}")
        return int(record.rock_ridge.get_file_mode())


@pytest.fixture
def read() -> Iterator[type[Read]]:
    opened: list[Read] = []

    class Tracked(Read):
        def __init__(self, path: Path) -> None:
            super().__init__(path)
            opened.append(self)

    yield Tracked
    for reader in opened:
        reader.close()


def _write(tmp_path: Path, files: Mapping[str, bytes], name: str = "user.iso") -> Path:
    path = tmp_path / name
    write_cd(path, files)
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=True, timeout=60)


def _make_writable(path: Path) -> None:
    # osirrox restores the image's read-only modes; let tmp_path be cleaned.
    for root, dirs, _files in os.walk(path):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o755)
    os.chmod(path, 0o755)


# --- label, names, content -------------------------------------------------------


def test_label_names_and_content(tmp_path: Path, read: type[Read]) -> None:
    path = _write(tmp_path, {"config": CONFIG})
    cd = read(path)
    assert CD_LABEL == "CONFIG" and CONFIG_FILE == "config"
    assert cd.label == "CONFIG"
    assert cd.rr_names() == {"config": "CONFIG.;1"}
    assert cd.read("config") == CONFIG
    assert cd.mode("config") == 0o100444
    assert cd.iso.has_rock_ridge()
    assert b"RRIP_1991A" in path.read_bytes()  # Rock Ridge 1.09/1.10, as Linux expects
    assert not cd.iso.has_joliet()
    # a reader without Rock Ridge finds it by its ISO 9660 name too
    out = io.BytesIO()
    cd.iso.get_file_from_iso_fp(out, iso_path="/CONFIG.;1")
    assert out.getvalue() == CONFIG


def test_several_files_and_sizes(tmp_path: Path, read: type[Read]) -> None:
    files = {**SEVERAL, "big": b"z" * 5000}
    cd = read(_write(tmp_path, files))
    assert set(cd.rr_names()) == set(files)
    assert cd.rr_names()["user-data"] == "USER_DAT.;1"
    for name, data in files.items():
        assert cd.read(name) == data, name


def test_cd_is_detected_as_iso(tmp_path: Path) -> None:
    path = _write(tmp_path, {"config": CONFIG}, "data.img")
    assert path.read_bytes()[0x8001:0x8006] == b"CD001"
    assert detect_by_content(path) == ISO


@pytest.mark.parametrize("name", ["", "a/b", ".", "..", "has space", "ünï", "a;1", "a" * 65])
def test_bad_names_write_nothing(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError):
        write_cd(tmp_path / "user.iso", {name: b"x"})
    assert list(tmp_path.iterdir()) == []


def test_clashing_names_write_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="clash"):
        write_cd(tmp_path / "user.iso", {"config": b"1", "Config": b"2"})
    assert list(tmp_path.iterdir()) == []


# --- the file: mode, atomic replacement -----------------------------------------


def test_mode_0600_and_no_leftovers(tmp_path: Path) -> None:
    path = _write(tmp_path, SEVERAL)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["user.iso"]


def test_replaces_existing_file(tmp_path: Path, read: type[Read]) -> None:
    path = tmp_path / "user.iso"
    path.write_bytes(b"old")
    path.chmod(0o644)
    write_cd(path, {"config": CONFIG})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read(path).read("config") == CONFIG
    assert sorted(p.name for p in tmp_path.iterdir()) == ["user.iso"]


def test_failed_rename_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "user.iso"
    target.mkdir()
    (target / "keep").write_bytes(b"")
    with pytest.raises(OSError):
        write_cd(target, {"config": CONFIG})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["user.iso"]


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_cd(tmp_path / "nope" / "user.iso", {"config": CONFIG})


# --- write_metadata_cd -----------------------------------------------------------


def test_write_metadata_cd_holds_lk_user_data(tmp_path: Path, read: type[Read]) -> None:
    key = tmp_path / "id_ed25519"
    key.write_text("private\n")
    (tmp_path / "id_ed25519.pub").write_text("ssh-ed25519 AAAAtest lk\n")
    container = Container(
        id="c1",
        image="x.iso",
        ssh_key=str(key),
        volumes=[VolumeMapping("/host", "/srv", read_only=True, tag="v0")],
    )
    runtime = tmp_path / "run"
    runtime.mkdir()
    path = write_metadata_cd(container, RunOptions(), runtime)
    assert path == runtime / CD_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    cd = read(path)
    assert cd.label == "CONFIG"
    assert cd.rr_names() == {"config": "CONFIG.;1"}
    data = json.loads(cd.read("config"))
    assert data["ssh"]["entries"]["authorized_keys"] == {
        "perm": "0600",
        "content": "ssh-ed25519 AAAAtest lk\n",
    }
    assert data["lk"]["entries"]["volumes"]["content"] == "v0 /srv ro\n"


def test_write_metadata_cd_passes_a_metadata_file_through(tmp_path: Path, read: type[Read]) -> None:
    script = tmp_path / "user-data.sh"
    script.write_bytes(b"#!/bin/sh\necho hi\n")
    path = write_metadata_cd(
        Container(id="c1", image="x.iso"), RunOptions(metadata_file=str(script)), tmp_path
    )
    assert read(path).read("config") == b"#!/bin/sh\necho hi\n"


# --- real tools --------------------------------------------------------------


@needs_file
def test_file_magic_sees_iso9660(tmp_path: Path) -> None:
    out = _run("file", "-b", str(_write(tmp_path, {"config": CONFIG}))).stdout
    assert "ISO 9660" in out
    assert "CONFIG" in out


@needs_xorriso
def test_xorriso_volume_id_listing_and_rock_ridge(tmp_path: Path) -> None:
    path = _write(tmp_path, SEVERAL)
    result = _run("xorriso", "-indev", str(path), "-pvd_info", "-lsdl", "/config")
    assert "Volume Id    : CONFIG" in result.stdout
    line = next(ln for ln in result.stdout.splitlines() if ln.endswith("'/config'"))
    assert line.startswith("-r--r--r--")
    assert f" {len(CONFIG)} " in line
    listed = _run("xorriso", "-indev", str(path), "-find", "/", "-type", "f").stdout
    assert sorted(ln.strip().strip("'") for ln in listed.splitlines()) == sorted(
        f"/{name}" for name in SEVERAL
    )


@needs_osirrox
def test_osirrox_extracts_identical_bytes(tmp_path: Path) -> None:
    files = {**SEVERAL, "big.bin": os.urandom(3 * 1024 * 1024 + 7)}
    path = _write(tmp_path, files)
    out = tmp_path / "out"
    _run("osirrox", "-indev", str(path), "-extract", "/", str(out))
    try:
        extracted = {p.name: p.read_bytes() for p in out.iterdir()}
    finally:
        _make_writable(out)
    assert extracted == files


@needs_isoinfo
def test_isoinfo_reads_label_and_config(tmp_path: Path) -> None:
    path = _write(tmp_path, SEVERAL)
    out = _run("isoinfo", "-d", "-i", str(path)).stdout
    assert "Volume id: CONFIG" in out
    assert "Rock Ridge signatures version 1 found" in out
    assert "CONFIG.;1" in _run("isoinfo", "-l", "-i", str(path)).stdout
    for name, data in SEVERAL.items():
        got = subprocess.run(
            ["isoinfo", "-R", "-i", str(path), "-x", f"/{name}"],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
        assert got == data, name


# --- the Linux kernel --------------------------------------------------------


def _mount_or_skip(image: Path, mountpoint: Path, options: str) -> None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("loop-mounting needs root and mount(8)")
    mountpoint.mkdir()
    result = subprocess.run(
        ["mount", "-o", f"loop,ro{options}", "-t", "iso9660", str(image), str(mountpoint)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot loop-mount iso9660 here: {' '.join(result.stderr.split())}")


@pytest.mark.parametrize("options", ["", ",norock"], ids=["rock-ridge", "plain-iso9660"])
def test_linux_mount_shows_config(tmp_path: Path, options: str) -> None:
    image = _write(tmp_path, {"config": CONFIG})
    mountpoint = tmp_path / "mnt"
    _mount_or_skip(image, mountpoint, options)
    try:
        # with or without Rock Ridge, the guest finds "config"
        assert os.listdir(mountpoint) == ["config"]
        assert (mountpoint / "config").read_bytes() == CONFIG
    finally:
        subprocess.run(["umount", str(mountpoint)], capture_output=True, timeout=60, check=False)
