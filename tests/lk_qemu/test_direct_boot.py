"""Direct boot of LinuxKit ISOs: boot-loader configs, ISO reading, PVH kernels, argv."""

from __future__ import annotations

import io
import lzma
import struct
from pathlib import Path

import pytest
from lk_qemu.argv import DirectBoot, build_argv

from lk_qemu import direct_boot as db

TEST_IMAGE_CFG = """SERIAL 0 115200
DEFAULT lk
PROMPT 0
TIMEOUT 0
LABEL lk
  KERNEL /boot/kernel
  INITRD /boot/initrd.img
  APPEND console=ttyS0 quiet no_timer_check tsc=reliable
"""

LINUXKIT_CFG = """DEFAULT linux
LABEL linux
    KERNEL /kernel
    INITRD /initrd.img
    APPEND ro console=ttyS0 console=tty0 page_poison=1
"""


def test_syslinux_cfg_gives_what_syslinux_passes() -> None:
    # isolinux adds BOOT_IMAGE= first and initrd= last (checked against /proc/cmdline).
    entry = db.parse_syslinux_cfg(TEST_IMAGE_CFG)
    assert entry == db.BootEntry(
        "/boot/kernel",
        "/boot/initrd.img",
        "BOOT_IMAGE=/boot/kernel console=ttyS0 quiet no_timer_check tsc=reliable "
        "initrd=/boot/initrd.img",
    )
    linuxkit = db.parse_syslinux_cfg(LINUXKIT_CFG)
    assert linuxkit is not None
    assert linuxkit.cmdline == (
        "BOOT_IMAGE=/kernel ro console=ttyS0 console=tty0 page_poison=1 initrd=/initrd.img"
    )


def test_syslinux_initrd_in_append_and_first_label() -> None:
    cfg = "label a\n linux vmlinuz\n append initrd=initrd.gz root=/dev/ram0\nlabel b\n kernel x\n"
    entry = db.parse_syslinux_cfg(cfg)
    assert entry == db.BootEntry(
        "vmlinuz", "initrd.gz", "BOOT_IMAGE=vmlinuz initrd=initrd.gz root=/dev/ram0"
    )


@pytest.mark.parametrize(
    "cfg",
    [
        "UI menu.c32\nLABEL a\n KERNEL k\n INITRD i\n",  # a menu module is the default
        "DEFAULT vesamenu.c32\nLABEL a\n KERNEL k\n INITRD i\n",
        "DEFAULT a\nLABEL a\n KERNEL k\n",  # no initrd: not a LinuxKit image
        "DEFAULT a\nLABEL a\n KERNEL k\n INITRD i1,i2\n",  # several initrds
        "INCLUDE other.cfg\n",
        "DEFAULT a\nLABEL a\n COM32 chain.c32\n",
        "",
    ],
)
def test_syslinux_layouts_lk_does_not_know(cfg: str) -> None:
    entry = db.parse_syslinux_cfg(cfg)
    if cfg.startswith("UI"):  # UI menus fall back to the first label only without DEFAULT
        assert entry is not None and entry.kernel == "k"
    else:
        assert entry is None


def test_grub_cfg() -> None:
    cfg = """set timeout=0
set gfxpayload=text
menuentry 'LinuxKit ISO Image' {
        linuxefi /kernel ro console=ttyS0 console=tty0
        initrdefi /initrd.img
}
"""
    assert db.parse_grub_cfg(cfg) == db.BootEntry(
        "/kernel", "/initrd.img", "BOOT_IMAGE=/kernel ro console=ttyS0 console=tty0"
    )
    second = cfg + "menuentry 'b' {\n linux /k2 quiet\n initrd /i2\n}\n"
    assert db.parse_grub_cfg("set default=1\n" + second) == db.BootEntry(
        "/k2", "/i2", "BOOT_IMAGE=/k2 quiet"
    )
    assert db.parse_grub_cfg("menuentry x {\n linux $root/k\n initrd /i\n}\n") is None
    assert db.parse_grub_cfg("set default=3\n" + cfg) is None
    assert db.parse_grub_cfg("submenu x {\n}\n") is None


def test_relative_paths_resolve_from_the_config_folder() -> None:
    entry = db._parse("/isolinux/isolinux.cfg", "LABEL a\n KERNEL ../boot/k\n INITRD i.img\n")
    assert entry is not None
    assert (entry.kernel, entry.initrd) == ("/boot/k", "/isolinux/i.img")
    assert entry.cmdline == "BOOT_IMAGE=../boot/k initrd=i.img"  # as written, like syslinux


def _iso(tmp_path: Path, files: dict[str, bytes]) -> Path:
    """An ISO 9660 image with Rock Ridge and Joliet names, as xorriso -r -J writes."""
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, rock_ridge="1.09", joliet=3)
    made: set[str] = set()

    def short(name: str) -> str:
        stem, _, ext = name.upper().replace("-", "_").partition(".")
        return stem[:8] + ("." + ext[:3] if ext else "")

    for path, data in files.items():
        parts = path.strip("/").split("/")
        for depth in range(1, len(parts)):
            folder = "/" + "/".join(parts[:depth])
            if folder not in made:
                made.add(folder)
                iso.add_directory(
                    "/" + "/".join(short(p) for p in parts[:depth]),
                    rr_name=parts[depth - 1],
                    joliet_path=folder,
                )
        iso_path = "/" + "/".join(short(p) for p in parts) + ";1"
        iso.add_fp(io.BytesIO(data), len(data), iso_path, rr_name=parts[-1], joliet_path=path)
    out = tmp_path / f"image{len(list(tmp_path.glob('*.iso')))}.iso"
    iso.write(str(out))
    iso.close()
    return out


def test_iso_files_are_extracted_once_and_cached(tmp_path: Path) -> None:
    iso = _iso(
        tmp_path,
        {
            "/isolinux/isolinux.cfg": TEST_IMAGE_CFG.encode(),
            "/boot/kernel": b"KERNEL",
            "/boot/initrd.img": b"INITRD",
        },
    )
    cache = tmp_path / "cache"
    found = db.iso_files(iso, cache)
    assert found is not None
    kernel, initrd, cmdline = found
    assert (kernel.read_bytes(), initrd.read_bytes()) == (b"KERNEL", b"INITRD")
    assert cmdline.startswith("BOOT_IMAGE=/boot/kernel console=ttyS0")
    assert db.iso_files(iso, cache) == found  # from the cache


def test_unrecognised_iso_boots_through_the_bios(tmp_path: Path) -> None:
    no_cfg = _iso(tmp_path, {"/boot/kernel": b"K"})
    assert db.iso_files(no_cfg, tmp_path / "c") is None
    missing = _iso(tmp_path, {"/isolinux/isolinux.cfg": TEST_IMAGE_CFG.encode()})
    assert db.iso_files(missing, tmp_path / "c2") is None
    not_iso = tmp_path / "x.iso"
    not_iso.write_bytes(b"not an iso" * 100)
    assert db.iso_files(not_iso, tmp_path / "c3") is None


def _elf_with_notes(pvh: bool) -> bytes:
    note_type = 18 if pvh else 5
    note = struct.pack("<III", 4, 4, note_type) + b"Xen\0" + b"\0\0\0\0"
    phoff, ehsize = 64, 64
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", header, 0x20, phoff)
    struct.pack_into("<HH", header, 0x36, 56, 1)
    offset = ehsize + 56
    phdr = struct.pack("<IIQQQQQQ", 4, 0, offset, 0, 0, len(note), len(note), 4)
    return bytes(header) + phdr + note


def _bzimage(payload: bytes) -> bytes:
    setup = bytearray(5 * 512)
    setup[0x1F1] = 4
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, 0x20F)
    struct.pack_into("<II", setup, 0x248, 16, len(payload))
    return bytes(setup) + b"\0" * 16 + payload + b"\0" * 8


def test_pvh_kernel_is_decompressed_on_the_host(tmp_path: Path) -> None:
    elf = _elf_with_notes(pvh=True)
    kernel = tmp_path / "kernel"
    kernel.write_bytes(_bzimage(lzma.compress(elf, format=lzma.FORMAT_XZ)))
    out = db.pvh_kernel(kernel, tmp_path / "cache")
    assert out is not None and out.read_bytes() == elf
    assert db.pvh_kernel(kernel, tmp_path / "cache") == out


def test_kernels_without_pvh_entry_are_left_alone(tmp_path: Path) -> None:
    kernel = tmp_path / "kernel"
    kernel.write_bytes(_bzimage(lzma.compress(_elf_with_notes(pvh=False), format=lzma.FORMAT_XZ)))
    assert db.pvh_kernel(kernel, tmp_path / "cache") is None
    assert db.pvh_kernel(kernel, tmp_path / "cache") is None  # remembered
    zstd = tmp_path / "zstd-kernel"
    zstd.write_bytes(_bzimage(b"\x28\xb5\x2f\xfd" + b"\0" * 64))
    assert db.pvh_kernel(zstd, tmp_path / "cache") is None
    junk = tmp_path / "junk"
    junk.write_bytes(b"MZ" + b"\0" * 100)
    assert db.pvh_kernel(junk, tmp_path / "cache") is None


def test_switch() -> None:
    assert db.enabled({})
    assert not db.enabled({"LK_QEMU_DIRECT_BOOT": "0"})
    assert not db.enabled({"LK_QEMU_DIRECT_BOOT": "bios"})


def test_iso_direct_boot_argv_keeps_the_cd_and_the_cmdline(tmp_path: Path) -> None:
    from qemu_helpers import make_options

    options = make_options()
    boot = DirectBoot(Path("/c/k"), Path("/c/i"), "BOOT_IMAGE=/boot/kernel a  b initrd=/x")
    argv = build_argv(options, binary="qemu-system-x86_64", accel="tcg", direct_boot=boot)
    assert argv[argv.index("-append") + 1] == "BOOT_IMAGE=/boot/kernel a  b initrd=/x"
    assert argv[argv.index("-kernel") + 1] == "/c/k"
    cd = [a for a in argv if a.startswith("ide-cd,drive=boot")]
    assert cd == ["ide-cd,drive=boot,bus=ide.0"]  # attached, not the boot device
    plain = build_argv(options, binary="qemu-system-x86_64", accel="tcg")
    assert "-kernel" not in plain and "ide-cd,drive=boot,bus=ide.0,bootindex=0" in plain
