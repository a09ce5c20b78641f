"""Issue 15, fault 3: every format's content is checked at detection."""

from __future__ import annotations

from pathlib import Path

import pytest
from lk_core.errors import ImageFormatError
from lk_core.formats import (
    ISO,
    KERNEL_INITRD,
    QCOW2,
    RAW,
    VMDK,
    describe_unrecognised,
    detect_builtin,
)
from lk_core.images import detect_image_format
from lk_core.plugins import new_plugins

from lk_core import cli


def iso_bytes() -> bytes:
    data = bytearray(0x8800)
    data[0x8000] = 1
    data[0x8001:0x8006] = b"CD001"
    return bytes(data)


def boot_sector() -> bytes:
    data = bytearray(1024)
    data[510:512] = b"\x55\xaa"
    return bytes(data)


def gpt_4k() -> bytes:
    data = bytearray(8192)
    data[4096:4104] = b"EFI PART"
    return bytes(data)


VALID = [
    ("x.iso", iso_bytes(), ISO),
    ("x.qcow2", b"QFI\xfb" + bytes(508), QCOW2),
    ("x.vmdk", b"KDMV" + bytes(508), VMDK),
    ("x.vmdk", b"# Disk DescriptorFile\nversion=1\n", VMDK),
    ("x.img", boot_sector(), RAW),
    ("x.raw", boot_sector(), RAW),
    ("x.raw", gpt_4k(), RAW),
    ("x.img", iso_bytes(), ISO),  # content first
    ("x.iso", b"QFI\xfb" + bytes(508), QCOW2),  # content first
]


@pytest.mark.parametrize(("name", "data", "expected"), VALID)
def test_valid_content_is_detected(tmp_path: Path, name: str, data: bytes, expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    assert detect_builtin(path) == expected


INVALID = [
    ("x.iso", b"", "x.iso is not an ISO image: it is empty"),
    ("x.iso", b"hello\n", "x.iso is not an ISO image: it is a text file starting 'hello'"),
    ("x.iso", bytes(4096), "x.iso is not an ISO image: it holds only zero bytes"),
    ("x.iso", b"\x01\x02\x03", "x.iso is not an ISO image: its first bytes are 01 02 03"),
    ("x.iso", boot_sector(), "x.iso is not an ISO image: it looks like a raw disk image"),
    ("x.qcow2", b"\x1f\x8b\x08" + bytes(100), "x.qcow2 is not a qcow2 image: it looks like a gzip"),
    ("x.vmdk", b"", "x.vmdk is not a VMDK image: it is empty"),
    ("x.img", b"", "x.img is not a raw disk image: it is empty"),
    ("x.raw", bytes(1024), "x.raw is not a raw disk image: it holds only zero bytes"),
    ("x.img", b"\x7fELF" + bytes(60), "x.img is not a raw disk image: it looks like an ELF"),
]


@pytest.mark.parametrize(("name", "data", "message"), INVALID)
def test_content_that_matches_no_format_is_refused(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    builtin_plugins_only: None,
    name: str,
    data: bytes,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_bytes(data)
    assert detect_builtin(tmp_path / name) is None
    with pytest.raises(ImageFormatError) as info:
        detect_image_format(name, new_plugins())
    text = str(info.value)
    assert text.startswith(message), text
    assert "\n" not in text


def test_describe_names_the_given_path(tmp_path: Path) -> None:
    (tmp_path / "x.iso").write_bytes(b"")
    assert describe_unrecognised(tmp_path / "x.iso", shown="~/x.iso") == (
        "~/x.iso is not an ISO image: it is empty"
    )


def test_fifo_is_refused(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "p.img")
    assert detect_builtin(tmp_path / "p.img") is None
    assert describe_unrecognised(tmp_path / "p.img").endswith("it is not a regular file")


@pytest.mark.parametrize("empty", ["kernel", "initrd", "both"])
def test_kernel_initrd_parts_must_not_be_empty(tmp_path: Path, empty: str) -> None:
    (tmp_path / "lk-kernel").write_bytes(b"" if empty in ("kernel", "both") else b"k")
    (tmp_path / "lk-initrd.img").write_bytes(b"" if empty in ("initrd", "both") else b"i")
    for form in ("lk", "lk-kernel", "lk-initrd.img"):
        assert detect_builtin(tmp_path / form) is None
        message = describe_unrecognised(tmp_path / form)
        assert "is not a usable LinuxKit kernel+initrd image: " in message
        reason = message.split(": ", 1)[1]
        assert ("lk-kernel" in reason) == (empty in ("kernel", "both"))
        assert ("lk-initrd.img" in reason) == (empty in ("initrd", "both"))
    (tmp_path / "lk-kernel").write_bytes(b"k")
    (tmp_path / "lk-initrd.img").write_bytes(b"i")
    assert detect_builtin(tmp_path / "lk") == KERNEL_INITRD


def test_initrd_without_kernel_is_explained(tmp_path: Path) -> None:
    (tmp_path / "lk-initrd.img").write_bytes(b"\x1f\x8b\x08" + bytes(100))
    message = describe_unrecognised(tmp_path / "lk-initrd.img")
    assert "lk-kernel is missing" in message


def test_unknown_extension_keeps_the_list_of_formats(tmp_path: Path) -> None:
    (tmp_path / "x.bin").write_bytes(b"data")
    assert describe_unrecognised(tmp_path / "x.bin").startswith("unknown image format for")


def test_cli_refuses_an_empty_iso_with_one_line(
    sandbox: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "x.iso"
    empty.write_bytes(b"")
    assert cli.main(["run", "-d", "--hypervisor", "fake", str(empty)]) == 1
    err = capsys.readouterr().err
    assert err == f"lk: error: {empty} is not an ISO image: it is empty\n"
    assert (
        not (sandbox / "containers.json").exists()
        or '"containers": {}' in (sandbox / "containers.json").read_text()
    )
