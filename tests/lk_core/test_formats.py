"""Tests for lk_core.formats."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lk_core.errors import ImageFormatError, LkError, NotFoundError, UsageError
from lk_core.formats import (
    ISO,
    KERNEL_INITRD,
    QCOW2,
    RAW,
    VMDK,
    KernelInitrd,
    detect_builtin,
    detect_by_content,
    detect_by_extension,
    find_kernel_initrd,
    require_format,
    resolve_image,
)

from lk_core import formats

ISO_OFFSET = 0x8001


def iso_bytes(size: int = ISO_OFFSET + 0x800) -> bytes:
    """A minimal file with an ISO 9660 primary volume descriptor signature."""
    data = bytearray(size)
    data[ISO_OFFSET - 1] = 1  # descriptor type: primary volume descriptor
    data[ISO_OFFSET : ISO_OFFSET + 5] = b"CD001"
    return bytes(data)


def qcow2_bytes() -> bytes:
    return b"QFI\xfb" + (3).to_bytes(4, "big") + bytes(504)


def vmdk_sparse_bytes() -> bytes:
    return b"KDMV" + (1).to_bytes(4, "little") + bytes(504)


VMDK_DESCRIPTOR = (
    b"# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n"
    b'createType="monolithicFlat"\n\nRW 2048 FLAT "disk-flat.vmdk" 0\n'
)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


needs_unreadable = pytest.mark.skipif(
    sys.platform == "win32" or (hasattr(os, "geteuid") and os.geteuid() == 0),
    reason="file permissions are not enforced for root / on Windows",
)


# --------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------


def test_format_names() -> None:
    assert (ISO, QCOW2, VMDK, RAW, KERNEL_INITRD) == (
        "iso",
        "qcow2",
        "vmdk",
        "raw",
        "kernel+initrd",
    )
    assert formats.BUILTIN_FORMATS == (ISO, QCOW2, VMDK, RAW, KERNEL_INITRD)


# --------------------------------------------------------------------------
# detect_by_content
# --------------------------------------------------------------------------


def test_content_iso(tmp_path: Path) -> None:
    assert detect_by_content(write(tmp_path / "disk.bin", iso_bytes())) == ISO


def test_content_iso_exactly_long_enough(tmp_path: Path) -> None:
    path = write(tmp_path / "disk.bin", iso_bytes(ISO_OFFSET + 5))
    assert detect_by_content(path) == ISO


def test_content_iso_truncated_signature(tmp_path: Path) -> None:
    path = write(tmp_path / "disk.bin", iso_bytes()[: ISO_OFFSET + 4])
    assert detect_by_content(path) is None


@pytest.mark.parametrize("offset", [0, 0x8000, 0x8002, 0x8801, 0x9001])
def test_content_iso_signature_at_wrong_offset(tmp_path: Path, offset: int) -> None:
    data = bytearray(0xA000)
    data[offset : offset + 5] = b"CD001"
    assert detect_by_content(write(tmp_path / "disk.bin", bytes(data))) is None


def test_content_qcow2(tmp_path: Path) -> None:
    assert detect_by_content(write(tmp_path / "disk.bin", qcow2_bytes())) == QCOW2


def test_content_qcow2_magic_only(tmp_path: Path) -> None:
    assert detect_by_content(write(tmp_path / "disk.bin", b"QFI\xfb")) == QCOW2


def test_content_qcow2_magic_not_at_start(tmp_path: Path) -> None:
    assert detect_by_content(write(tmp_path / "disk.bin", b"\0QFI\xfb")) is None


def test_content_vmdk_sparse(tmp_path: Path) -> None:
    assert detect_by_content(write(tmp_path / "disk.bin", vmdk_sparse_bytes())) == VMDK


def test_content_vmdk_descriptor(tmp_path: Path) -> None:
    assert detect_by_content(write(tmp_path / "disk.bin", VMDK_DESCRIPTOR)) == VMDK


def test_content_vmdk_descriptor_after_bom_and_blank_lines(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbf\n\n  " + VMDK_DESCRIPTOR
    assert detect_by_content(write(tmp_path / "disk.bin", data)) == VMDK


def test_content_vmdk_descriptor_must_be_first_text(tmp_path: Path) -> None:
    data = b"# some other comment\n" + VMDK_DESCRIPTOR
    assert detect_by_content(write(tmp_path / "disk.bin", data)) is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\0",
        b"QFI",
        b"KDM",
        b"# Disk",
        bytes(0x9000),
        b"\x7fELF" + bytes(100),
        b"hello world\n",
    ],
)
def test_content_unknown(tmp_path: Path, data: bytes) -> None:
    assert detect_by_content(write(tmp_path / "disk.iso", data)) is None


def test_content_missing_file(tmp_path: Path) -> None:
    assert detect_by_content(tmp_path / "nope.iso") is None


def test_content_directory(tmp_path: Path) -> None:
    (tmp_path / "dir.iso").mkdir()
    assert detect_by_content(tmp_path / "dir.iso") is None


@needs_unreadable
def test_content_unreadable(tmp_path: Path) -> None:
    path = write(tmp_path / "disk.bin", qcow2_bytes())
    path.chmod(0)
    try:
        assert detect_by_content(path) is None
    finally:
        path.chmod(0o600)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs mkfifo")
def test_content_fifo_does_not_block(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.img"
    os.mkfifo(fifo)
    assert detect_by_content(fifo) is None
    assert detect_builtin(fifo) is None  # the extension alone is not enough (issue 15)


def test_content_follows_symlink(tmp_path: Path) -> None:
    target = write(tmp_path / "real", qcow2_bytes())
    link = tmp_path / "link.iso"
    link.symlink_to(target)
    assert detect_by_content(link) == QCOW2


@given(st.binary(max_size=64))
def test_content_never_raises_on_random_data(data: bytes) -> None:
    # A fresh directory per example: tmp_path is per test, not per example.
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "x"
        path.write_bytes(data)
        result = detect_by_content(path)
    expected = (
        QCOW2
        if data.startswith(b"QFI\xfb")
        else VMDK
        if data.startswith(b"KDMV")
        or data.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"# Disk DescriptorFile")
        else None
    )
    assert result == expected


# --------------------------------------------------------------------------
# detect_by_extension
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.iso", ISO),
        ("a.qcow2", QCOW2),
        ("a.vmdk", VMDK),
        ("a.raw", RAW),
        ("a.img", RAW),
        ("A.ISO", ISO),
        ("a.QCow2", QCOW2),
        ("a.VMDK", VMDK),
        ("a.Raw", RAW),
        ("a.IMG", RAW),
        ("dir.d/linuxkit.tar.iso", ISO),
        ("a.bin", None),
        ("a", None),
        ("iso", None),
        (".iso", None),  # a dot-file has no suffix
        ("a.iso.gz", None),
        ("a.qcow", None),
        ("a.iso.", None),
    ],
)
def test_extension(name: str, expected: str | None) -> None:
    assert detect_by_extension(Path(name)) == expected


def test_extension_does_not_touch_file_system(tmp_path: Path) -> None:
    assert detect_by_extension(tmp_path / "missing" / "x.qcow2") == QCOW2


# --------------------------------------------------------------------------
# find_kernel_initrd
# --------------------------------------------------------------------------


def make_kernel_initrd(directory: Path, name: str = "linuxkit", cmdline: str | None = None) -> None:
    write(directory / f"{name}-kernel", b"\x7fELF kernel")
    write(directory / f"{name}-initrd.img", b"\x1f\x8b initrd")
    if cmdline is not None:
        (directory / f"{name}-cmdline").write_text(cmdline)


@pytest.mark.parametrize("form", ["linuxkit-kernel", "linuxkit-initrd.img", "linuxkit"])
def test_kernel_initrd_each_path_form(tmp_path: Path, form: str) -> None:
    make_kernel_initrd(tmp_path, cmdline="console=ttyS0\n")
    found = find_kernel_initrd(tmp_path / form)
    assert found == KernelInitrd(
        kernel=tmp_path / "linuxkit-kernel",
        initrd=tmp_path / "linuxkit-initrd.img",
        cmdline=tmp_path / "linuxkit-cmdline",
    )
    assert detect_builtin(tmp_path / form) == KERNEL_INITRD


def test_kernel_initrd_without_cmdline(tmp_path: Path) -> None:
    make_kernel_initrd(tmp_path)
    found = find_kernel_initrd(tmp_path / "linuxkit")
    assert found is not None
    assert found.cmdline is None
    assert found.read_cmdline() == ""


def test_kernel_initrd_read_cmdline_strips(tmp_path: Path) -> None:
    make_kernel_initrd(tmp_path, cmdline="  console=ttyS0 console=tty0 page_poison=1\n\n")
    found = find_kernel_initrd(tmp_path / "linuxkit-kernel")
    assert found is not None
    assert found.read_cmdline() == "console=ttyS0 console=tty0 page_poison=1"


def test_kernel_initrd_read_cmdline_vanished(tmp_path: Path) -> None:
    make_kernel_initrd(tmp_path, cmdline="x")
    found = find_kernel_initrd(tmp_path / "linuxkit")
    assert found is not None
    (tmp_path / "linuxkit-cmdline").unlink()
    with pytest.raises(ImageFormatError) as info:
        found.read_cmdline()
    assert "linuxkit-cmdline" in str(info.value)
    assert "\n" not in str(info.value)


def test_kernel_initrd_read_cmdline_not_utf8(tmp_path: Path) -> None:
    make_kernel_initrd(tmp_path)
    write(tmp_path / "linuxkit-cmdline", b"\xff\xfe")
    found = find_kernel_initrd(tmp_path / "linuxkit")
    assert found is not None
    with pytest.raises(ImageFormatError):
        found.read_cmdline()


def test_kernel_initrd_is_frozen(tmp_path: Path) -> None:
    found = KernelInitrd(kernel=tmp_path / "k", initrd=tmp_path / "i", cmdline=None)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        found.kernel = tmp_path  # type: ignore[misc]


@pytest.mark.parametrize("form", ["linuxkit-kernel", "linuxkit-initrd.img", "linuxkit"])
def test_kernel_initrd_missing_initrd(tmp_path: Path, form: str) -> None:
    write(tmp_path / "linuxkit-kernel", b"k")
    write(tmp_path / "linuxkit-cmdline", b"c")
    assert find_kernel_initrd(tmp_path / form) is None


@pytest.mark.parametrize("form", ["linuxkit-kernel", "linuxkit-initrd.img", "linuxkit"])
def test_kernel_initrd_missing_kernel(tmp_path: Path, form: str) -> None:
    write(tmp_path / "linuxkit-initrd.img", b"i")
    assert find_kernel_initrd(tmp_path / form) is None


def test_kernel_initrd_parts_must_be_files(tmp_path: Path) -> None:
    (tmp_path / "linuxkit-kernel").mkdir()
    write(tmp_path / "linuxkit-initrd.img", b"i")
    assert find_kernel_initrd(tmp_path / "linuxkit") is None


def test_kernel_initrd_cmdline_directory_is_ignored(tmp_path: Path) -> None:
    make_kernel_initrd(tmp_path)
    (tmp_path / "linuxkit-cmdline").mkdir()
    found = find_kernel_initrd(tmp_path / "linuxkit")
    assert found is not None
    assert found.cmdline is None


def test_kernel_initrd_prefix_that_exists_is_not_a_prefix(tmp_path: Path) -> None:
    make_kernel_initrd(tmp_path)
    write(tmp_path / "linuxkit", b"something else")
    assert find_kernel_initrd(tmp_path / "linuxkit") is None


def test_kernel_initrd_other_names_do_not_match(tmp_path: Path) -> None:
    make_kernel_initrd(tmp_path, name="a")
    assert find_kernel_initrd(tmp_path / "b") is None
    assert find_kernel_initrd(tmp_path / "b-kernel") is None
    assert find_kernel_initrd(tmp_path / "a-cmdline") is None


def test_kernel_initrd_suffix_is_case_sensitive(tmp_path: Path) -> None:
    make_kernel_initrd(tmp_path)
    # Not a "-kernel" path: on a case-sensitive file system it is a prefix
    # whose siblings do not exist; on a case-insensitive one it exists.
    assert find_kernel_initrd(tmp_path / "linuxkit-KERNEL") is None
    assert find_kernel_initrd(tmp_path / "linuxkit-Initrd.img") is None


def test_kernel_initrd_empty_prefix(tmp_path: Path) -> None:
    write(tmp_path / "-kernel", b"k")
    write(tmp_path / "-initrd.img", b"i")
    assert find_kernel_initrd(tmp_path / "-kernel") is None


def test_kernel_initrd_name_with_dashes_and_dots(tmp_path: Path) -> None:
    make_kernel_initrd(tmp_path, name="my-vm.v2")
    found = find_kernel_initrd(tmp_path / "my-vm.v2-initrd.img")
    assert found is not None
    assert found.kernel == tmp_path / "my-vm.v2-kernel"


def test_kernel_initrd_relative_paths_stay_relative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "out").mkdir()
    make_kernel_initrd(tmp_path / "out")
    monkeypatch.chdir(tmp_path)
    found = find_kernel_initrd(Path("out/linuxkit"))
    assert found is not None
    assert found.kernel == Path("out/linuxkit-kernel")


def test_kernel_initrd_root_and_empty_paths() -> None:
    assert find_kernel_initrd(Path("/")) is None
    assert find_kernel_initrd(Path("")) is None


# --------------------------------------------------------------------------
# detect_builtin
# --------------------------------------------------------------------------


def test_builtin_content_over_extension(tmp_path: Path) -> None:
    assert detect_builtin(write(tmp_path / "disk.img", iso_bytes())) == ISO
    assert detect_builtin(write(tmp_path / "disk.iso", qcow2_bytes())) == QCOW2
    assert detect_builtin(write(tmp_path / "disk.raw", vmdk_sparse_bytes())) == VMDK


@pytest.mark.parametrize("name", ["a.raw", "a.img", "a.IMG", "a.iso", "a.qcow2", "a.vmdk"])
def test_builtin_extension_alone_is_not_enough(tmp_path: Path, name: str) -> None:
    # issue 15: a file whose content matches no format is refused whatever its name
    assert detect_builtin(write(tmp_path / name, bytes(1024))) is None


@pytest.mark.parametrize("name", ["a.raw", "a.img", "a.IMG"])
def test_builtin_raw_needs_a_boot_sector(tmp_path: Path, name: str) -> None:
    data = bytearray(1024)
    data[510:512] = b"\x55\xaa"
    assert detect_builtin(write(tmp_path / name, bytes(data))) == RAW


def test_builtin_empty_file_is_refused(tmp_path: Path) -> None:
    assert detect_builtin(write(tmp_path / "empty.img", b"")) is None
    assert detect_builtin(write(tmp_path / "empty.bin", b"")) is None


def test_builtin_magic_without_known_extension(tmp_path: Path) -> None:
    assert detect_builtin(write(tmp_path / "disk", qcow2_bytes())) == QCOW2
    assert detect_builtin(write(tmp_path / "disk.bin", VMDK_DESCRIPTOR)) == VMDK


def test_builtin_unknown(tmp_path: Path) -> None:
    assert detect_builtin(write(tmp_path / "x.bin", b"data")) is None


def test_builtin_kernel_initrd_first(tmp_path: Path) -> None:
    # The initrd has a .img extension, but it is part of a kernel+initrd image.
    make_kernel_initrd(tmp_path)
    assert detect_builtin(tmp_path / "linuxkit-initrd.img") == KERNEL_INITRD


def test_builtin_directory_is_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "dir.iso").mkdir()
    assert detect_builtin(tmp_path / "dir.iso") is None


@needs_unreadable
def test_builtin_unreadable_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "disk.qcow2", iso_bytes())
    path.chmod(0)
    try:
        assert detect_builtin(path) is None
    finally:
        path.chmod(0o600)


# --------------------------------------------------------------------------
# resolve_image
# --------------------------------------------------------------------------


def test_resolve_existing_file(tmp_path: Path) -> None:
    path = write(tmp_path / "disk.iso", iso_bytes())
    assert resolve_image(path) == path
    assert resolve_image(str(path)) == path


def test_resolve_relative_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "disk.iso", iso_bytes())
    monkeypatch.chdir(tmp_path)
    resolved = resolve_image("disk.iso")
    assert resolved.is_absolute()
    assert resolved == tmp_path / "disk.iso"


def test_resolve_keeps_symlink_name(tmp_path: Path) -> None:
    target = write(tmp_path / "store-abc123", b"k")
    write(tmp_path / "vm-initrd.img", b"i")
    (tmp_path / "vm-kernel").symlink_to(target)
    assert resolve_image(tmp_path / "vm-kernel") == tmp_path / "vm-kernel"
    assert detect_builtin(resolve_image(tmp_path / "vm-kernel")) == KERNEL_INITRD


def test_resolve_expands_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "disk.iso", iso_bytes())
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_image("~/disk.iso") == tmp_path / "disk.iso"


def test_resolve_kernel_initrd_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "out").mkdir()
    make_kernel_initrd(tmp_path / "out")
    monkeypatch.chdir(tmp_path)
    resolved = resolve_image("out/linuxkit")
    assert resolved == tmp_path / "out" / "linuxkit"
    assert detect_builtin(resolved) == KERNEL_INITRD


def test_resolve_missing(tmp_path: Path) -> None:
    missing = tmp_path / "nope.iso"
    with pytest.raises(NotFoundError) as info:
        resolve_image(missing)
    assert str(info.value) == f"image not found: {missing}"


def test_resolve_missing_prefix_without_initrd(tmp_path: Path) -> None:
    write(tmp_path / "linuxkit-kernel", b"k")
    with pytest.raises(NotFoundError):
        resolve_image(tmp_path / "linuxkit")


def test_resolve_missing_parent(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        resolve_image(tmp_path / "no" / "such" / "disk.iso")


def test_resolve_below_a_file(tmp_path: Path) -> None:
    write(tmp_path / "file", b"")
    with pytest.raises(NotFoundError):
        resolve_image(tmp_path / "file" / "disk.iso")


def test_resolve_dangling_symlink(tmp_path: Path) -> None:
    (tmp_path / "link.iso").symlink_to(tmp_path / "gone")
    with pytest.raises(NotFoundError):
        resolve_image(tmp_path / "link.iso")


def test_resolve_directory(tmp_path: Path) -> None:
    (tmp_path / "images.iso").mkdir()
    with pytest.raises(ImageFormatError) as info:
        resolve_image(tmp_path / "images.iso")
    message = str(info.value)
    assert "directory" in message
    assert "images must be files" in message
    assert "\n" not in message


def test_resolve_empty_path() -> None:
    with pytest.raises(UsageError):
        resolve_image("")


def test_resolve_null_byte() -> None:
    with pytest.raises(NotFoundError):
        resolve_image("bad\0name.iso")


def test_resolve_does_not_check_format(tmp_path: Path) -> None:
    path = write(tmp_path / "x.bin", b"data")
    assert resolve_image(path) == path


# --------------------------------------------------------------------------
# require_format
# --------------------------------------------------------------------------


def test_require_format_passes_through() -> None:
    assert require_format(Path("x.iso"), ISO) == ISO
    assert require_format(Path("x"), "plugin-format") == "plugin-format"


def test_require_format_unknown() -> None:
    with pytest.raises(ImageFormatError) as info:
        require_format(Path("x.bin"), None)
    assert str(info.value) == (
        "unknown image format for 'x.bin': expected .iso, .qcow2, .vmdk, .raw, .img"
        " or LinuxKit kernel+initrd output (NAME-kernel + NAME-initrd.img)"
    )
    assert isinstance(info.value, LkError)


def test_require_format_empty_string_is_unknown() -> None:
    with pytest.raises(ImageFormatError):
        require_format(Path("x.bin"), "")


def test_require_format_with_detection(tmp_path: Path) -> None:
    path = write(tmp_path / "x.bin", b"data")
    with pytest.raises(ImageFormatError) as info:
        require_format(path, detect_builtin(path))
    assert str(path) in str(info.value)
    qcow = write(tmp_path / "y.bin", qcow2_bytes())
    assert require_format(qcow, detect_builtin(qcow)) == QCOW2


# --------------------------------------------------------------------------
# I/O errors (simulated, so they are also tested when running as root)
# --------------------------------------------------------------------------


def test_content_open_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "disk.qcow2", qcow2_bytes())

    def refuse(*args: object, **kwargs: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", refuse)
    assert detect_by_content(path) is None
    assert detect_builtin(path) is None  # content unknown: no extension fallback (issue 15)


def test_content_read_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "disk.bin", qcow2_bytes())
    closed: list[int] = []
    real_close = os.close

    def fail(fd: int, size: int) -> bytes:
        raise OSError(5, "Input/output error")

    def close(fd: int) -> None:
        closed.append(fd)
        real_close(fd)

    monkeypatch.setattr(os, "read", fail)
    monkeypatch.setattr(os, "close", close)
    assert detect_by_content(path) is None
    assert len(closed) == 1  # the descriptor is not leaked


def test_resolve_stat_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> os.stat_result:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "stat", refuse)
    with pytest.raises(ImageFormatError) as info:
        resolve_image(tmp_path / "disk.iso")
    assert str(info.value) == f"cannot access image {tmp_path / 'disk.iso'}: Permission denied"
