"""Image-format detection.

A format is a plain ``str``: the set is open (plugins may add formats). The
built-in names are the constants :data:`ISO`, :data:`QCOW2`, :data:`VMDK`,
:data:`RAW` and :data:`KERNEL_INITRD`.

Detection order (:func:`detect_builtin`): LinuxKit kernel+initrd output first,
then magic bytes, then the file extension. Content always decides: a file is
taken for a format only if its content is that format's (a ``.img`` file with
ISO 9660 magic is an ISO). Raw images have no magic bytes: a ``.raw`` or
``.img`` file is a raw disk if it has a boot sector (``0x55AA`` at offset 510)
or a GPT header. A file that matches no format (an empty ``.iso``, a text file
named ``.qcow2``) is refused with a message saying what it is
(:func:`describe_unrecognised`).

LinuxKit's kernel+initrd output is three files in one directory:
``NAME-kernel``, ``NAME-initrd.img`` and, optionally, ``NAME-cmdline``. Such an
image may be named by the ``NAME-kernel`` path, the ``NAME-initrd.img`` path or
the prefix ``NAME`` (a path that does not itself exist).

Every function here is pure apart from reading the file system; none of them
changes it.
"""

from __future__ import annotations

import codecs
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import attrs

from lk_core.errors import ImageFormatError, NotFoundError, UsageError

__all__ = [
    "BUILTIN_FORMATS",
    "EXTENSIONS",
    "ISO",
    "KERNEL_INITRD",
    "QCOW2",
    "RAW",
    "VMDK",
    "KernelInitrd",
    "describe_unrecognised",
    "detect_builtin",
    "detect_by_content",
    "detect_by_extension",
    "find_kernel_initrd",
    "require_format",
    "resolve_image",
]

ISO = "iso"
QCOW2 = "qcow2"
VMDK = "vmdk"
RAW = "raw"
KERNEL_INITRD = "kernel+initrd"

BUILTIN_FORMATS: tuple[str, ...] = (ISO, QCOW2, VMDK, RAW, KERNEL_INITRD)
"""The built-in format names."""

EXTENSIONS: Mapping[str, str] = MappingProxyType(
    {".iso": ISO, ".qcow2": QCOW2, ".vmdk": VMDK, ".raw": RAW, ".img": RAW}
)
"""Lower-case file extension -> format, in the order shown in messages."""

KERNEL_SUFFIX = "-kernel"
INITRD_SUFFIX = "-initrd.img"
CMDLINE_SUFFIX = "-cmdline"

_QCOW2_MAGIC = b"QFI\xfb"
_VMDK_SPARSE_MAGIC = b"KDMV"
_VMDK_DESCRIPTOR_MAGIC = b"# Disk DescriptorFile"
_ISO_MAGIC = b"CD001"
_ISO_MAGIC_OFFSET = 0x8001
# A raw disk: an MBR boot sector signature, or a GPT header at LBA 1 (512- or
# 4096-byte sectors).
_BOOT_SIGNATURE = b"\x55\xaa"
_BOOT_SIGNATURE_OFFSET = 510
_GPT_MAGIC = b"EFI PART"
_GPT_OFFSETS = (512, 4096)
# Enough to see every magic above.
_HEAD_SIZE = _ISO_MAGIC_OFFSET + len(_ISO_MAGIC)
# The VMDK descriptor signature may follow a UTF-8 byte order mark and blank
# space, as long as it is within this many leading bytes.
_DESCRIPTOR_WINDOW = 512


@attrs.frozen
class KernelInitrd:
    """The files of a LinuxKit kernel+initrd image."""

    kernel: Path
    initrd: Path
    cmdline: Path | None

    def read_cmdline(self) -> str:
        """Return the kernel command line, stripped; ``""`` if there is no cmdline file.

        Raises :class:`~lk_core.errors.ImageFormatError` if the cmdline file
        cannot be read or is not UTF-8 text.
        """
        if self.cmdline is None:
            return ""
        try:
            return self.cmdline.read_bytes().decode("utf-8").strip()
        except OSError as error:
            raise ImageFormatError(
                f"cannot read kernel command line {self.cmdline}: {error.strerror or error}"
            ) from error
        except UnicodeDecodeError as error:
            raise ImageFormatError(
                f"kernel command line {self.cmdline} is not UTF-8 text"
            ) from error


def _is_file(path: Path) -> bool:
    """Return whether ``path`` is an existing regular file (following symlinks), never raising."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def _read_head(path: Path) -> bytes | None:
    """Return up to the first ``_HEAD_SIZE`` bytes of a regular file or block device.

    Returns ``None`` for anything else (directories, FIFOs, sockets) and for
    anything that cannot be opened or read. Opens non-blocking so a FIFO never
    hangs the caller.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except (OSError, ValueError):
        return None
    try:
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISBLK(mode)):
            return None
        chunks: list[bytes] = []
        remaining = _HEAD_SIZE
        while remaining > 0:
            chunk = os.read(fd, remaining)
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def detect_by_content(path: Path) -> str | None:
    """Detect an image's format from its magic bytes.

    Recognises qcow2 (``QFI\\xfb`` at offset 0), VMDK (sparse ``KDMV`` at
    offset 0, or a text descriptor starting with ``# Disk DescriptorFile``) and
    ISO 9660 (``CD001`` at offset 0x8001). Returns ``None`` if none matches,
    and also, without raising, if ``path`` is missing, unreadable, too short,
    or not a regular file or block device.
    """
    head = _read_head(path)
    if head is None:
        return None
    if head.startswith(_QCOW2_MAGIC):
        return QCOW2
    if head.startswith(_VMDK_SPARSE_MAGIC):
        return VMDK
    window = head[:_DESCRIPTOR_WINDOW].removeprefix(b"\xef\xbb\xbf").lstrip()
    if window.startswith(_VMDK_DESCRIPTOR_MAGIC):
        return VMDK
    if head[_ISO_MAGIC_OFFSET : _ISO_MAGIC_OFFSET + len(_ISO_MAGIC)] == _ISO_MAGIC:
        return ISO
    return None


def _is_raw_disk(head: bytes) -> bool:
    """Whether ``head`` starts with a boot sector or a GPT partition table."""
    end = _BOOT_SIGNATURE_OFFSET + len(_BOOT_SIGNATURE)
    if head[_BOOT_SIGNATURE_OFFSET:end] == _BOOT_SIGNATURE:
        return True
    return any(head[o : o + len(_GPT_MAGIC)] == _GPT_MAGIC for o in _GPT_OFFSETS)


def detect_by_extension(path: Path) -> str | None:
    """Detect an image's format from its file extension, case-insensitively.

    ``.iso``, ``.qcow2``, ``.vmdk``, ``.raw`` and ``.img`` (raw) are known.
    Only the name is looked at; the file need not exist.
    """
    return EXTENSIONS.get(path.suffix.lower())


def find_kernel_initrd(path: Path) -> KernelInitrd | None:
    """Find the LinuxKit kernel+initrd image ``path`` names, if it names one.

    ``path`` may be ``NAME-kernel``, ``NAME-initrd.img`` or, if nothing exists
    at ``path`` itself, the prefix ``NAME``. The suffixes are matched
    case-sensitively, as LinuxKit writes them. Both ``NAME-kernel`` and
    ``NAME-initrd.img`` must be existing regular files; ``NAME-cmdline`` is
    included if it is one. The returned paths are built from ``path`` as given
    (relative stays relative). Never raises.
    """
    name = path.name
    if name.endswith(KERNEL_SUFFIX):
        prefix = name[: -len(KERNEL_SUFFIX)]
    elif name.endswith(INITRD_SUFFIX):
        prefix = name[: -len(INITRD_SUFFIX)]
    elif not _exists(path):
        prefix = name
    else:
        return None
    if not prefix:
        return None
    kernel = path.with_name(prefix + KERNEL_SUFFIX)
    initrd = path.with_name(prefix + INITRD_SUFFIX)
    if not (_is_file(kernel) and _is_file(initrd)):
        return None
    cmdline = path.with_name(prefix + CMDLINE_SUFFIX)
    return KernelInitrd(
        kernel=kernel, initrd=initrd, cmdline=cmdline if _is_file(cmdline) else None
    )


def _exists(path: Path) -> bool:
    """Return whether anything (even a dangling symlink) is at ``path``, never raising."""
    try:
        os.lstat(path)
    except (OSError, ValueError):
        return False
    return True


def _is_non_empty_file(path: Path) -> bool:
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return False
    return stat.S_ISREG(info.st_mode) and info.st_size > 0


def detect_builtin(path: Path) -> str | None:
    """Detect the built-in format of the image at ``path``; ``None`` if unknown.

    Tries, in order: LinuxKit kernel+initrd output (:func:`find_kernel_initrd`,
    both files non-empty), magic bytes (:func:`detect_by_content`), then, for
    ``.raw`` and ``.img`` files, a boot sector or GPT header. The extension
    alone is never enough: an empty or foreign file named ``.iso`` gives
    ``None`` (:func:`describe_unrecognised` says why). A directory is never an
    image, so it gives ``None`` whatever its name. Never raises.
    """
    found = find_kernel_initrd(path)
    if found is not None:
        if _is_non_empty_file(found.kernel) and _is_non_empty_file(found.initrd):
            return KERNEL_INITRD
        return None
    try:
        if path.is_dir():
            return None
    except (OSError, ValueError):
        pass
    by_content = detect_by_content(path)
    if by_content is not None:
        return by_content
    if detect_by_extension(path) == RAW:
        head = _read_head(path)
        if head is not None and _is_raw_disk(head):
            return RAW
    return None


_ARTICLE_NAME = {
    ISO: "an ISO image",
    QCOW2: "a qcow2 image",
    VMDK: "a VMDK image",
    RAW: "a raw disk image",
}

# (offset, magic, what it is) for files people mistake for images.
_OTHER_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x1f\x8b", "a gzip archive (decompress it first)"),
    (0, b"\xfd7zXZ\x00", "an xz archive (decompress it first)"),
    (0, b"\x28\xb5\x2f\xfd", "a zstd archive (decompress it first)"),
    (0, b"BZh", "a bzip2 archive (decompress it first)"),
    (0, b"PK\x03\x04", "a zip archive (extract it first)"),
    (257, b"ustar", "a tar archive (extract it first)"),
    (0, b"\x7fELF", "an ELF executable"),
    (0, b"MZ", "a PE/EFI executable (a kernel? give NAME-kernel + NAME-initrd.img)"),
)


def _first_bytes(head: bytes) -> str:
    sample = head[:16]
    text = " ".join(f"{b:02x}" for b in sample)
    return text + (" ..." if len(head) > len(sample) else "")


def _what_it_is(head: bytes) -> str:
    """Say in a few words what a file that matches no image format holds."""
    if not head:
        return "it is empty"
    detected = (
        QCOW2
        if head.startswith(_QCOW2_MAGIC)
        else VMDK
        if head.startswith(_VMDK_SPARSE_MAGIC)
        else ISO
        if head[_ISO_MAGIC_OFFSET : _ISO_MAGIC_OFFSET + len(_ISO_MAGIC)] == _ISO_MAGIC
        else RAW
        if _is_raw_disk(head)
        else None
    )
    if detected is not None:
        return f"it looks like {_ARTICLE_NAME[detected]}"
    for offset, magic, what in _OTHER_MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return f"it looks like {what}"
    if not head.strip(b"\0"):
        return f"it holds only zero bytes (the first {len(head)})"
    try:  # an incremental decoder accepts a character cut at the end of the sample
        text = codecs.getincrementaldecoder("utf-8")().decode(head[:256])
    except UnicodeDecodeError:
        text = ""
    if text.strip() and all(c.isprintable() or c in "\t\r\n" for c in text):
        first = text.strip().splitlines()[0]
        return f"it is a text file starting {first[:40]!r}"
    return f"its first bytes are {_first_bytes(head)}"


def _head_or_reason(path: Path) -> tuple[bytes | None, str]:
    """The first bytes of ``path``, or ``None`` and why they cannot be read."""
    head = _read_head(path)
    if head is not None:
        return head, ""
    try:
        info = os.stat(path)
    except OSError as error:
        return None, f"cannot read it: {error.strerror or error}"
    except ValueError as error:
        return None, f"cannot read it: {error}"
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISBLK(info.st_mode)):
        return None, "it is not a regular file"
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as error:
        return None, f"cannot read it: {error.strerror or error}"
    return None, "cannot read it"


def describe_unrecognised(path: Path, shown: str | Path | None = None) -> str:
    """A one-line message saying why ``path`` is not an image lk can boot.

    For a file whose extension names a format (``x.iso``) it says what the
    file holds instead: ``x.iso is not an ISO image: it is empty``, ``...: its
    first bytes are ...``, ``...: it looks like a raw disk image``. For a
    kernel+initrd image with an empty part it names that part. Otherwise it
    lists the formats lk knows. ``shown`` is the name to print (default:
    ``path``). Reads the file system only; never raises.
    """
    name = str(path if shown is None else shown)
    found = find_kernel_initrd(path)
    if found is not None:
        empty = [p for p in (found.kernel, found.initrd) if not _is_non_empty_file(p)]
        parts = " and ".join(p.name for p in empty) or "a part"
        verb = "are" if len(empty) > 1 else "is"
        return f"{name} is not a usable LinuxKit kernel+initrd image: {parts} {verb} empty"
    expected = detect_by_extension(path)
    if expected is None:
        return f"unknown image format for '{name}': {_expected_formats()}"
    head, reason = _head_or_reason(path)
    if head is None:
        return f"{name} is not {_ARTICLE_NAME.get(expected, 'an image')}: {reason}"
    what = _what_it_is(head)
    if path.name.endswith(INITRD_SUFFIX):
        kernel = path.with_name(path.name[: -len(INITRD_SUFFIX)] + KERNEL_SUFFIX)
        what += f" (a LinuxKit initrd? {kernel.name} is missing)"
    elif expected == ISO and head and len(head) < _HEAD_SIZE and what.startswith("its first"):
        what += f", and it is only {len(head)} bytes long"
    return f"{name} is not {_ARTICLE_NAME.get(expected, 'an image')}: {what}"


def _expected_formats() -> str:
    """Describe the built-in formats for error messages."""
    return (
        f"expected {', '.join(EXTENSIONS)} or LinuxKit kernel+initrd output"
        f" (NAME{KERNEL_SUFFIX} + NAME{INITRD_SUFFIX})"
    )


def resolve_image(path: str | Path) -> Path:
    """Turn a user-supplied image path into an absolute path.

    ``~`` is expanded; the result is made absolute without resolving symlinks
    (a symlinked ``NAME-kernel`` keeps its name). A kernel+initrd prefix
    ``NAME`` (nothing at the path itself, but ``NAME-kernel`` and
    ``NAME-initrd.img`` exist) is returned as is, made absolute.

    Raises :class:`~lk_core.errors.UsageError` for an empty path,
    :class:`~lk_core.errors.NotFoundError` if nothing is at ``path`` and it is
    not a kernel+initrd prefix, and :class:`~lk_core.errors.ImageFormatError`
    if ``path`` is a directory or cannot be examined.
    """
    if str(path) == "":
        raise UsageError("image path is empty")
    absolute = Path(path).expanduser().absolute()
    try:
        mode: int | None = os.stat(absolute).st_mode
    except (FileNotFoundError, NotADirectoryError, ValueError):
        mode = None
    except OSError as error:
        raise ImageFormatError(f"cannot access image {path}: {error.strerror or error}") from error
    if mode is None:
        if find_kernel_initrd(absolute) is not None:
            return absolute
        raise NotFoundError(f"image not found: {path}")
    if stat.S_ISDIR(mode):
        raise ImageFormatError(
            f"{path} is a directory: images must be files ({_expected_formats()})"
        )
    return absolute


def require_format(path: Path, fmt: str | None, examine: Path | None = None) -> str:
    """Return ``fmt``, or raise if the format of ``path`` is unknown.

    ``fmt`` is the result of detection; ``None`` (or ``""``) means no format
    was recognised and raises :class:`~lk_core.errors.ImageFormatError` with
    a message from :func:`describe_unrecognised` (the file at ``examine``,
    default ``path``, is read to say what it holds; ``path`` is the name shown).
    """
    if not fmt:
        raise ImageFormatError(describe_unrecognised(examine or path, shown=path))
    return fmt
