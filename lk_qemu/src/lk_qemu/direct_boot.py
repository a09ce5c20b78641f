"""Booting a LinuxKit image's kernel directly, without firmware boot loader or in-guest unpacking.

Two things make a cold boot under TCG (no KVM) slow before the guest's own
init runs, and lk removes both where it can do so invisibly to the guest:

* **A LinuxKit ISO boots through SeaBIOS and isolinux/GRUB**, which read the
  kernel and initrd through an emulated CD drive. lk reads the boot loader's
  configuration from the ISO (``isolinux.cfg``, ``syslinux.cfg`` or
  ``grub.cfg``, with pycdlib: no mount), extracts the kernel and initrd it
  names and boots them with ``-kernel``/``-initrd``/``-append``. The command
  line is the one the boot loader would have passed, byte for byte
  (``BOOT_IMAGE=`` and syslinux's ``initrd=`` included). The ISO stays
  attached as the same CD-ROM. An ISO whose layout lk does not recognise
  boots through the BIOS as before.
* **A compressed kernel (bzImage) decompresses itself under emulation**
  (xz: seconds under TCG). When the kernel is an ELF with a PVH entry point
  (``XEN_ELFNOTE_PHYS32_ENTRY``, set in distribution kernels), lk
  decompresses it once on the host and QEMU starts it at that entry. Same
  kernel code, same command line, same initrd.

Both results are cached under ``<state dir>/cache/qemu-boot/`` by the
source file's identity (path, size, mtime, inode). ``LK_QEMU_DIRECT_BOOT=0``
turns both off (the image boots exactly as it did before lk 0.x did this).
"""

from __future__ import annotations

import hashlib
import os
import shlex
import struct
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

__all__ = [
    "ENV_SWITCH",
    "BootEntry",
    "enabled",
    "iso_boot_entry",
    "parse_grub_cfg",
    "parse_syslinux_cfg",
    "pvh_kernel",
]

#: ``0`` boots ISOs through the BIOS and kernels as given.
ENV_SWITCH = "LK_QEMU_DIRECT_BOOT"
#: Where the boot-loader configurations are looked for in an ISO, in order.
CONFIG_PATHS = (
    "/isolinux/isolinux.cfg",
    "/isolinux.cfg",
    "/syslinux/syslinux.cfg",
    "/syslinux.cfg",
    "/boot/isolinux/isolinux.cfg",
    "/boot/syslinux/syslinux.cfg",
    "/EFI/BOOT/grub.cfg",
    "/boot/grub/grub.cfg",
    "/boot/grub2/grub.cfg",
)
_XEN_ELFNOTE_PHYS32_ENTRY = 18


@dataclass(frozen=True)
class BootEntry:
    """What a boot loader's default entry boots: paths inside the ISO and the full cmdline."""

    kernel: str
    initrd: str
    cmdline: str


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether direct boot is on (``$LK_QEMU_DIRECT_BOOT`` is not 0/no/false/off)."""
    env = os.environ if environ is None else environ
    return env.get(ENV_SWITCH, "1").strip().lower() not in ("0", "no", "false", "off", "bios")


# -- boot-loader configurations ----------------------------------------------------
def _absolute_in(path: str, base: str) -> str:
    """A path of the config (relative to the config's folder) as an absolute ISO path."""
    joined = PurePosixPath(base) / path if not path.startswith("/") else PurePosixPath(path)
    parts: list[str] = []
    for part in joined.parts[1:]:
        if part == "..":
            if parts:
                parts.pop()
        elif part not in (".", ""):
            parts.append(part)
    return "/" + "/".join(parts)


def parse_syslinux_cfg(text: str) -> BootEntry | None:
    """The default entry of an isolinux/syslinux configuration, as syslinux boots it.

    Recognised: ``DEFAULT`` (or the first ``LABEL``), ``KERNEL``/``LINUX``,
    ``INITRD`` (one file), ``APPEND``. syslinux passes ``BOOT_IMAGE=<kernel>``
    first and adds ``initrd=<initrd>`` for an ``INITRD`` line; so does this.
    ``None`` for anything else (``UI`` menus without a ``DEFAULT`` label, COM32
    modules, several initrds, ``INCLUDE``, ``CONFIG``).
    """
    labels: dict[str, dict[str, str]] = {}
    order: list[str] = []
    default = ""
    current: dict[str, str] | None = None
    glob: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, value = line.partition(" ")
        keyword, value = keyword.lower(), value.strip()
        if keyword in ("include", "config", "com32"):
            return None
        if keyword == "default":
            default = value.split()[0] if value else ""
        elif keyword == "label":
            current = {}
            labels[value] = current
            order.append(value)
        elif keyword in ("kernel", "linux", "initrd", "append"):
            (current if current is not None else glob)[
                "kernel" if keyword == "linux" else keyword
            ] = value
    if default and default not in labels:
        if default.endswith(".c32") or not glob.get("kernel"):
            return None  # a menu module, or a kernel named DEFAULT without a label
        entry = {**glob, "kernel": default}
    elif default:
        entry = {**glob, **labels[default]}
    elif order:
        entry = {**glob, **labels[order[0]]}
    else:
        entry = glob
    kernel = entry.get("kernel", "")
    if not kernel or kernel.endswith(".c32") or " " in kernel:
        return None
    append = entry.get("append", "")
    if append == "-":
        append = ""
    initrd = entry.get("initrd", "")
    words = shlex.split(append, posix=False) if append else []
    from_append = [w[len("initrd=") :] for w in words if w.startswith("initrd=")]
    if initrd and from_append:
        return None  # both: syslinux's precedence is version-dependent
    files = initrd or (from_append[0] if from_append else "")
    if not files or "," in files or len(from_append) > 1:
        return None
    cmdline = f"BOOT_IMAGE={kernel} {append}".strip()
    if initrd:
        cmdline += f" initrd={initrd}"
    return BootEntry(kernel=kernel, initrd=files, cmdline=cmdline)


def parse_grub_cfg(text: str) -> BootEntry | None:
    """The default (first, or ``set default=N``) ``menuentry`` of a plain GRUB config.

    GRUB passes ``BOOT_IMAGE=<kernel>`` before the arguments of ``linux``; so
    does this. ``None`` for scripts lk does not evaluate (variables,
    ``search``, ``configfile``, submenus, several initrds).
    """
    default = 0
    entries: list[tuple[str, str, str]] = []
    kernel = initrd = args = ""
    inside = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split()
        head = words[0]
        if "$" in line and inside:
            return None
        if head == "set" and len(words) > 1 and words[1].startswith("default="):
            value = words[1].split("=", 1)[1].strip("\"'")
            if not value.isdigit():
                return None
            default = int(value)
        elif head in ("submenu", "configfile", "source"):
            return None
        elif head == "menuentry":
            inside = True
            kernel = initrd = args = ""
        elif head == "}" and inside:
            inside = False
            if kernel:
                entries.append((kernel, initrd, args))
        elif inside and head in ("linux", "linuxefi", "linux16") and len(words) > 1:
            kernel = words[1]
            args = " ".join(words[2:])
        elif inside and head in ("initrd", "initrdefi", "initrd16"):
            if len(words) != 2:
                return None
            initrd = words[1]
    if default >= len(entries):
        return None
    kernel, initrd, args = entries[default]
    if not initrd:
        return None
    return BootEntry(kernel=kernel, initrd=initrd, cmdline=f"BOOT_IMAGE={kernel} {args}".strip())


def _parse(config_path: str, text: str) -> BootEntry | None:
    entry = parse_grub_cfg(text) if config_path.endswith("grub.cfg") else parse_syslinux_cfg(text)
    if entry is None:
        return None
    base = str(PurePosixPath(config_path).parent)
    if config_path.endswith("grub.cfg"):
        base = "/"  # GRUB paths are from the root of the boot device
    return BootEntry(
        kernel=_absolute_in(entry.kernel, base),
        initrd=_absolute_in(entry.initrd, base),
        cmdline=entry.cmdline,
    )


# -- ISO reading and caching ---------------------------------------------------------
def _identity(path: Path) -> str:
    st = path.stat()
    text = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}|{st.st_dev}"
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:20]


def _write_atomic(target: Path, fill: Callable[[Path], object]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    try:
        fill(Path(tmp))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def iso_boot_entry(iso: Path) -> tuple[BootEntry, Callable[[str, Path], None]] | None:
    """The default boot entry of a recognised ISO and a function that extracts its files.

    ``None`` when the ISO has no boot-loader configuration lk can read, or the
    kernel or initrd it names is not on the ISO.
    """
    import pycdlib
    from pycdlib.pycdlibexception import PyCdlibException

    reader = pycdlib.PyCdlib()
    try:
        reader.open(str(iso))
    except (PyCdlibException, OSError):
        return None
    facade = reader.get_rock_ridge_facade() if reader.has_rock_ridge() else None

    def read(path: str, into: Path | None = None) -> bytes | None:
        import io

        attempts: list[Callable[[], None]] = []
        sink: io.BytesIO | None = None if into is not None else io.BytesIO()

        def get(**kwargs: str) -> None:
            if into is not None:
                reader.get_file_from_iso(str(into), **kwargs)
            else:
                assert sink is not None
                reader.get_file_from_iso_fp(sink, **kwargs)

        if facade is not None:
            attempts.append(lambda: get(rr_path=path))
        if reader.has_joliet():
            attempts.append(lambda: get(joliet_path=path))
        attempts.append(lambda: get(iso_path=path.upper() + ";1"))
        attempts.append(lambda: get(iso_path=path.upper()))
        for attempt in attempts:
            try:
                attempt()
            except (PyCdlibException, OSError):
                continue
            return sink.getvalue() if sink is not None else b""
        return None

    for config in CONFIG_PATHS:
        data = read(config)
        if data is None:
            continue
        entry = _parse(config, data.decode("utf-8", "replace"))
        if entry is None:
            continue

        def extract(path: str, into: Path) -> None:
            if read(path, into) is None:
                raise OSError(f"cannot extract {path} from {iso}")

        return entry, extract
    return None


def iso_files(iso: Path, cache: Path) -> tuple[Path, Path, str] | None:
    """The kernel and initrd of a recognised LinuxKit ISO, extracted once, and its cmdline."""
    folder = cache / f"iso-{_identity(iso)}"
    kernel, initrd, cmdline_file = folder / "kernel", folder / "initrd.img", folder / "cmdline"
    if kernel.is_file() and initrd.is_file() and cmdline_file.is_file():
        return kernel, initrd, cmdline_file.read_text("utf-8")
    found = iso_boot_entry(iso)
    if found is None:
        return None
    entry, extract = found
    try:
        _write_atomic(kernel, lambda tmp: extract(entry.kernel, tmp))
        _write_atomic(initrd, lambda tmp: extract(entry.initrd, tmp))
    except OSError:
        return None  # the configuration names a file the ISO does not hold
    _write_atomic(cmdline_file, lambda tmp: tmp.write_text(entry.cmdline, "utf-8"))
    return kernel, initrd, entry.cmdline


# -- PVH: the kernel decompressed on the host ---------------------------------------
def _decompress(payload: bytes) -> bytes | None:
    import bz2
    import gzip
    import lzma

    try:
        if payload.startswith(b"\xfd7zXZ\x00"):
            return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(payload)
        if payload.startswith(b"\x1f\x8b"):
            return gzip.GzipFile(fileobj=__import__("io").BytesIO(payload)).read()
        if payload.startswith(b"BZh"):
            return bz2.BZ2Decompressor().decompress(payload)
        if payload.startswith(b"\x5d\x00\x00"):
            return lzma.LZMADecompressor(format=lzma.FORMAT_ALONE).decompress(payload)
    except (OSError, EOFError, lzma.LZMAError, ValueError):
        return None
    return None  # zstd, lz4, lzo: left to the kernel's own decompressor


def bzimage_payload(data: bytes) -> bytes | None:
    """The compressed vmlinux inside an x86 bzImage (boot protocol 2.08+), or None."""
    if len(data) < 0x250 or data[0x202:0x206] != b"HdrS":
        return None
    (version,) = struct.unpack_from("<H", data, 0x206)
    if version < 0x208:
        return None
    setup_sects = data[0x1F1] or 4
    offset, length = struct.unpack_from("<II", data, 0x248)
    start = (setup_sects + 1) * 512 + offset
    if length == 0 or start + length > len(data):
        return None
    return data[start : start + length]


def has_pvh_entry(elf: bytes) -> bool:
    """Whether a 64-bit little-endian ELF has a ``XEN_ELFNOTE_PHYS32_ENTRY`` note."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        return False
    (phoff,) = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for index in range(phnum):
        base = phoff + index * phentsize
        p_type, _flags, p_offset, _va, _pa, p_filesz = struct.unpack_from("<IIQQQQ", elf, base)
        if p_type != 4:  # PT_NOTE
            continue
        pos, end = p_offset, p_offset + p_filesz
        while pos + 12 <= end:
            namesz, descsz, note_type = struct.unpack_from("<III", elf, pos)
            name = elf[pos + 12 : pos + 12 + namesz].rstrip(b"\0")
            if name == b"Xen" and note_type == _XEN_ELFNOTE_PHYS32_ENTRY:
                return True
            pos += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
    return False


def pvh_kernel(kernel: Path, cache: Path) -> Path | None:
    """The kernel decompressed on the host if QEMU can start it at its PVH entry, else None."""
    target = cache / f"pvh-{_identity(kernel)}"
    marker = target.with_suffix(".none")
    if target.is_file():
        return target
    if marker.exists():
        return None
    data = kernel.read_bytes()
    payload = bzimage_payload(data)
    elf = _decompress(payload) if payload is not None else None
    if elf is None or not has_pvh_entry(elf):
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        return None
    _write_atomic(target, lambda tmp: tmp.write_bytes(elf))
    return target
