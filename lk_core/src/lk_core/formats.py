"""Image-format detection.

A format is a plain ``str``: the set is open (plugins may add formats). The
built-in names are the constants :data:`ISO`, :data:`QCOW2`, :data:`VMDK`,
:data:`RAW` and :data:`KERNEL_INITRD`.

Detection order (:func:`detect_builtin`): LinuxKit kernel+initrd output first,
then magic bytes, then the file extension. Raw images have no magic bytes and
are recognised by extension only (``.raw``, ``.img``); a ``.img`` file with ISO
9660 magic is an ISO.

LinuxKit's kernel+initrd output is three files in one directory:
``NAME-kernel``, ``NAME-initrd.img`` and, optionally, ``NAME-cmdline``. Such an
image may be named by the ``NAME-kernel`` path, the ``NAME-initrd.img`` path or
the prefix ``NAME`` (a path that does not itself exist).

Every function here is pure apart from reading the file system; none of them
changes it.
"""

from __future__ import annotations

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


def detect_builtin(path: Path) -> str | None:
    """Detect the built-in format of the image at ``path``; ``None`` if unknown.

    Tries, in order: LinuxKit kernel+initrd output (:func:`find_kernel_initrd`),
    magic bytes (:func:`detect_by_content`), then the extension
    (:func:`detect_by_extension`). A directory is never an image, so it gives
    ``None`` whatever its name. Never raises.
    """
    if find_kernel_initrd(path) is not None:
        return KERNEL_INITRD
    try:
        if path.is_dir():
            return None
    except (OSError, ValueError):
        pass
    return detect_by_content(path) or detect_by_extension(path)


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


def require_format(path: Path, fmt: str | None) -> str:
    """Return ``fmt``, or raise if the format of ``path`` is unknown.

    ``fmt`` is the result of detection; ``None`` (or ``""``) means no format
    was recognised and raises :class:`~lk_core.errors.ImageFormatError`.
    """
    if not fmt:
        raise ImageFormatError(f"unknown image format for '{path}': {_expected_formats()}")
    return fmt
