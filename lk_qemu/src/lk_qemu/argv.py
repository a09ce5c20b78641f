"""Building QEMU's command line from :class:`~lk_core.model.HypervisorOptions`.

:func:`build_argv` is pure: it reads nothing from the file system (the
kernel+initrd files and command line are resolved by the caller and passed in
as a :class:`DirectBoot`), so every decision below is unit-tested as data.

Decisions:

* No window and no terminal: ``-display none -nodefaults -no-user-config``;
  the serial console is a ``socket`` chardev on ``<runtime_dir>/console.sock``
  (server, no wait: ``lk attach`` connects to it) whose ``logfile=`` appends
  everything the guest prints to ``console_log``, attached or not. Never
  ``-nographic`` or ``-serial stdio`` (QEMU refuses the pair).
* Control through QMP on ``<runtime_dir>/qmp.sock``; ``-pidfile
  <runtime_dir>/qemu.pid``. A unix socket path must fit in ``sun_path``
  (107 bytes on Linux, 103 on macOS): a longer one is an error that suggests
  a shorter ``$LK_HOME``.
* User-mode networking with a stable, locally administered MAC derived from
  the container ID; every host forward is bound to an explicit IPv4 address
  (``127.0.0.1`` unless the user gave one), never to an empty address.
* Every user-controlled value placed inside a comma-separated QEMU option
  (``file=``, ``path=``, ``mount_tag=``, ``-name``) has its commas doubled,
  QEMU's escape. The plain-argument options ``-kernel``, ``-initrd``,
  ``-append`` and ``-pidfile`` take their value verbatim and are not escaped
  (checked against QEMU 7.2: doubling there would name a different file).
* Every path must be absolute; a relative ``file=`` value such as
  ``nbd:host:10809`` or ``json:{...}`` would otherwise be taken as a QEMU
  protocol.
"""

from __future__ import annotations

import hashlib
import ipaddress
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lk_core.errors import HypervisorError, UsageError
from lk_core.formats import ISO, KERNEL_INITRD, QCOW2, RAW, VMDK
from lk_core.model import HypervisorOptions, PortMapping, VolumeMapping

__all__ = [
    "CONSOLE_SOCKET_NAME",
    "DISK_CACHE",
    "MIN_MEMORY_MB",
    "OPTION_KEYS",
    "PIDFILE_NAME",
    "QMP_SOCKET_NAME",
    "SUPPORTED_FORMATS",
    "DirectBoot",
    "build_argv",
    "console_socket_path",
    "escape",
    "kernel_cmdline",
    "pidfile_path",
    "qmp_socket_path",
    "requested_accel",
    "socket_path_limit",
    "stable_mac",
]

#: Formats :func:`build_argv` can boot.
SUPPORTED_FORMATS: frozenset[str] = frozenset({ISO, QCOW2, VMDK, RAW, KERNEL_INITRD})
#: Smallest ``-m`` accepted, in MB.
MIN_MEMORY_MB = 16
#: The QMP socket's file name inside the runtime folder.
QMP_SOCKET_NAME = "qmp.sock"
#: The serial console socket's file name inside the runtime folder (``lk attach``).
CONSOLE_SOCKET_NAME = "console.sock"
#: QEMU's pidfile name inside the runtime folder.
PIDFILE_NAME = "qemu.pid"
#: Cache mode of writable disks: the host page cache is used and the guest's
#: flushes are honoured (QEMU's default, made explicit; ``none`` needs O_DIRECT,
#: which tmpfs lacks, and ``unsafe`` drops flushes).
DISK_CACHE = "writeback"
#: Keys of ``HypervisorOptions.options`` this plugin understands.
OPTION_KEYS: tuple[str, ...] = ("accel", "qemu_args")

_X86_64 = "x86_64"
_AARCH64 = "aarch64"
_HARDWARE_ACCELS = frozenset({"kvm", "hvf"})
# UEFI firmware that QEMU looks up in its data folder (shipped by Homebrew and
# by Debian's qemu-efi-aarch64); the aarch64 ``virt`` machine has no BIOS.
_AARCH64_FIRMWARE = "edk2-aarch64-code.fd"


@dataclass(frozen=True)
class DirectBoot:
    """A kernel and initrd booted directly (``-kernel``/``-initrd``/``-append``).

    ``cmdline`` is the image's command line as read from ``NAME-cmdline``
    (``""`` if none); :func:`build_argv` adds the serial console to it.
    """

    kernel: Path
    initrd: Path
    cmdline: str = ""


def escape(value: str) -> str:
    """Escape ``value`` for use inside a comma-separated QEMU option (doubles commas)."""
    return value.replace(",", ",,")


def socket_path_limit(platform: str | None = None) -> int:
    """The longest unix socket path (in bytes) the platform accepts.

    ``sun_path`` is 108 bytes on Linux and 104 on macOS/BSD, including the
    terminating NUL that QEMU requires.
    """
    system = sys.platform if platform is None else platform
    return 107 if system.startswith("linux") else 103


def qmp_socket_path(runtime_dir: Path) -> Path:
    """The QMP socket of the VM whose runtime folder is ``runtime_dir``."""
    return runtime_dir / QMP_SOCKET_NAME


def console_socket_path(runtime_dir: Path) -> Path:
    """The serial console socket (``lk attach``) of the VM with this runtime folder."""
    return runtime_dir / CONSOLE_SOCKET_NAME


def pidfile_path(runtime_dir: Path) -> Path:
    """QEMU's pidfile for the VM whose runtime folder is ``runtime_dir``."""
    return runtime_dir / PIDFILE_NAME


def stable_mac(container_id: str) -> str:
    """A MAC address derived from ``container_id``: unicast, locally administered (``02:...``)."""
    digest = hashlib.sha256(b"lk-mac:" + container_id.encode("utf-8")).digest()
    return ":".join(f"{byte:02x}" for byte in (0x02, *digest[:5]))


def kernel_cmdline(cmdline: str, console: str = "ttyS0") -> str:
    """Return ``cmdline`` with ``console=<console>`` appended unless it already names it.

    ``console=ttyS0`` and ``console=ttyS0,115200`` both count as present. The
    console named last becomes ``/dev/console``, so appending makes userspace
    output reach the serial log.
    """
    words = cmdline.split()
    for word in words:
        if word == f"console={console}" or word.startswith(f"console={console},"):
            return " ".join(words)
    return " ".join([*words, f"console={console}"])


def _absolute(path: Path | str, what: str) -> str:
    """Return ``path`` as a string, raising :class:`HypervisorError` unless it is absolute."""
    text = str(path)
    if not text or not Path(text).is_absolute():
        raise HypervisorError(f"{what} must be an absolute path, got {text!r}")
    if "\0" in text:
        raise HypervisorError(f"{what} contains a NUL character: {text!r}")
    return text


def _check_socket_path(path: Path, limit: int) -> None:
    """Raise :class:`HypervisorError` if ``path`` is too long for a unix socket."""
    size = len(str(path).encode("utf-8", "surrogateescape"))
    if size > limit:
        raise HypervisorError(
            f"the socket path {path} is {size} bytes, longer than the {limit} bytes "
            "a unix socket path may have: set LK_HOME to a shorter folder (e.g. LK_HOME=~/.lk)"
        )


def _port(value: int, what: str) -> int:
    """Validate a TCP/UDP port number."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise HypervisorError(f"{what} must be a port number from 1 to 65535, got {value!r}")
    return value


def _host_ip(value: str) -> str:
    """Validate a forward's host address: IPv4 only (QEMU's slirp), ``""`` means loopback."""
    text = value.strip() or "127.0.0.1"
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        raise HypervisorError(
            f"cannot bind a QEMU port forward to {value!r}: user-mode networking needs an "
            "IPv4 address such as 127.0.0.1"
        ) from None
    return str(address)


def _forwards(options: HypervisorOptions) -> list[str]:
    """The ``hostfwd=`` values: SSH first (if any), then each published port."""
    rules: list[tuple[str, str, int, int]] = []
    if options.ssh_port:
        rules.append(("tcp", "127.0.0.1", _port(options.ssh_port, "the SSH port"), 22))
    for mapping in options.ports:
        rules.append(_forward_rule(mapping))
    for index, (proto, ip, host, guest) in enumerate(rules):
        for other_proto, other_ip, other_host, other_guest in rules[:index]:
            overlap = ip == other_ip or "0.0.0.0" in (ip, other_ip)
            if proto == other_proto and host == other_host and overlap:
                raise HypervisorError(
                    f"host port {proto} {ip}:{host} is forwarded twice "
                    f"(to guest ports {other_guest} and {guest})"
                )
    return [f"hostfwd={proto}:{ip}:{host}-:{guest}" for proto, ip, host, guest in rules]


def _forward_rule(mapping: PortMapping) -> tuple[str, str, int, int]:
    """Validate one published port."""
    proto = str(getattr(mapping.protocol, "value", mapping.protocol)).lower()
    if proto not in ("tcp", "udp"):
        raise HypervisorError(f"unsupported port protocol {proto!r} (expected tcp or udp)")
    return (
        proto,
        _host_ip(mapping.host_ip),
        _port(mapping.host_port, "a published host port"),
        _port(mapping.guest_port, "a published guest port"),
    )


def _volume_args(index: int, volume: VolumeMapping) -> list[str]:
    """``-fsdev`` + ``virtio-9p-pci`` for one shared folder."""
    path = _absolute(volume.host_path, "a volume's host folder")
    tag = volume.tag or f"lkvol{index}"
    fsdev = f"local,id=fsdev{index},path={escape(path)},security_model=none"
    if volume.read_only:
        fsdev += ",readonly=on"
    return [
        "-fsdev",
        fsdev,
        "-device",
        f"virtio-9p-pci,fsdev=fsdev{index},mount_tag={escape(tag)}",
    ]


def _cd_args(drive_id: str, path: str, bus: str, arch: str, boot: bool) -> list[str]:
    """A read-only CD-ROM drive and its device."""
    drive = f"file={escape(path)},media=cdrom,if=none,id={drive_id},readonly=on"
    bootindex = ",bootindex=0" if boot else ""
    if arch == _AARCH64:
        # The virt machine has no IDE/AHCI controller: CDs go on virtio-scsi.
        device = f"scsi-cd,drive={drive_id},bus=scsi0.0{bootindex}"
    else:
        device = f"ide-cd,drive={drive_id},bus={bus}{bootindex}"
    return ["-drive", drive, "-device", device]


def _extra_args(value: str) -> list[str]:
    """Split the user's extra QEMU arguments like a POSIX shell would."""
    try:
        return shlex.split(value)
    except ValueError as error:
        raise UsageError(f"cannot parse the extra QEMU arguments {value!r}: {error}") from None


def build_argv(
    options: HypervisorOptions,
    *,
    binary: str,
    accel: str,
    arch: str = _X86_64,
    direct_boot: DirectBoot | None = None,
    socket_limit: int | None = None,
) -> list[str]:
    """Return the QEMU argv that boots ``options``.

    ``binary`` is the QEMU executable, ``accel`` the accelerator (see
    :func:`lk_qemu.accel.choose_accelerator`), ``arch`` the guest
    architecture (``"x86_64"`` or ``"aarch64"``). For the ``kernel+initrd``
    format ``direct_boot`` must give the files; for an ISO it boots the
    ISO's kernel and initrd with ``direct_boot.cmdline`` as is (the ISO stays
    attached as a CD); it is ignored otherwise.
    ``socket_limit`` overrides :func:`socket_path_limit`.

    Raises :class:`~lk_core.errors.HypervisorError` for options QEMU cannot
    honour (memory under 16 MB, no CPU, an unknown format, relative paths, a
    bad port or address, a socket path that is too long) and
    :class:`~lk_core.errors.UsageError` for unknown or malformed
    ``options.options`` entries.
    """
    if arch not in (_X86_64, _AARCH64):
        raise HypervisorError(f"unsupported QEMU architecture {arch!r}")
    unknown = sorted(set(options.options) - set(OPTION_KEYS))
    if unknown:
        raise UsageError(
            f"unknown QEMU option(s) {', '.join(map(repr, unknown))}: "
            f"known options are {', '.join(OPTION_KEYS)}"
        )
    if options.format not in SUPPORTED_FORMATS:
        raise HypervisorError(
            f"QEMU cannot boot images of format {options.format!r} "
            f"(supported: {', '.join(sorted(SUPPORTED_FORMATS))})"
        )
    if isinstance(options.memory, bool) or options.memory < MIN_MEMORY_MB:
        raise HypervisorError(
            f"memory must be at least {MIN_MEMORY_MB} MB, got {options.memory} MB"
        )
    if isinstance(options.cpus, bool) or options.cpus < 1:
        raise HypervisorError(f"a VM needs at least 1 CPU, got {options.cpus}")

    runtime_dir = Path(_absolute(options.runtime_dir, "the runtime folder"))
    console_log = _absolute(options.console_log, "the console log")
    qmp_socket = qmp_socket_path(runtime_dir)
    console_socket = console_socket_path(runtime_dir)
    limit = socket_path_limit() if socket_limit is None else socket_limit
    _check_socket_path(qmp_socket, limit)
    _check_socket_path(console_socket, limit)

    hardware = accel in _HARDWARE_ACCELS
    argv = [
        binary,
        "-name",
        escape(f"lk-{options.id}"),
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-machine",
        "q35" if arch == _X86_64 else "virt",
        "-accel",
        accel,
        "-cpu",
        "host" if hardware else "max",
        "-m",
        str(options.memory),
        "-smp",
        str(options.cpus),
        "-pidfile",
        str(pidfile_path(runtime_dir)),
        "-chardev",
        # A socket for ``lk attach``, logging everything the guest prints to
        # the console log whether or not a client is connected.
        f"socket,id=console,path={escape(str(console_socket))},server=on,wait=off,"
        f"logfile={escape(console_log)},logappend=on",
        "-serial",
        "chardev:console",
        "-chardev",
        f"socket,id=qmp,path={escape(str(qmp_socket))},server=on,wait=off",
        "-mon",
        "chardev=qmp,mode=control",
        "-device",
        "virtio-rng-pci",
        "-netdev",
        ",".join(["user", "id=net0", *_forwards(options)]),
        "-device",
        f"virtio-net-pci,netdev=net0,mac={stable_mac(_identity(options))}",
    ]

    needs_cd = options.format == ISO or options.metadata_iso is not None
    if arch == _AARCH64 and needs_cd:
        argv += ["-device", "virtio-scsi-pci,id=scsi0"]

    if options.format == KERNEL_INITRD:
        if direct_boot is None:
            raise HypervisorError(
                f"{options.image} is not a LinuxKit kernel+initrd image "
                "(NAME-kernel and NAME-initrd.img not found)"
            )
        console = "ttyS0" if arch == _X86_64 else "ttyAMA0"
        argv += [
            "-kernel",
            _absolute(direct_boot.kernel, "the kernel"),
            "-initrd",
            _absolute(direct_boot.initrd, "the initrd"),
            "-append",
            kernel_cmdline(direct_boot.cmdline, console),
        ]
    else:
        if arch == _AARCH64:
            argv += ["-bios", _AARCH64_FIRMWARE]
        image = _absolute(options.image, "the image")
        if options.format == ISO and direct_boot is not None:
            # A LinuxKit ISO's own kernel and initrd (see lk_qemu.direct_boot): the
            # command line is its boot loader's, verbatim; the ISO stays attached.
            argv += [
                "-kernel",
                _absolute(direct_boot.kernel, "the kernel"),
                "-initrd",
                _absolute(direct_boot.initrd, "the initrd"),
                "-append",
                direct_boot.cmdline,
            ]
            argv += _cd_args("boot", image, "ide.0", arch, boot=False)
        elif options.format == ISO:
            argv += _cd_args("boot", image, "ide.0", arch, boot=True)
        elif any(disk.role == "boot" for disk in options.disks):
            pass  # the container's overlay replaces the image: attached with the disks below
        else:
            argv += [
                "-drive",
                f"file={escape(image)},format={options.format},if=none,id=boot,cache={DISK_CACHE}",
                "-device",
                "virtio-blk-pci,drive=boot,bootindex=0",
            ]

    if options.metadata_iso is not None:
        metadata = _absolute(options.metadata_iso, "the metadata CD")
        argv += _cd_args("metadata", metadata, "ide.1", arch, boot=False)

    for index, volume in enumerate(options.volumes):
        argv += _volume_args(index, volume)

    if options.disks:  # the boot overlay, then data disks (see lk_qemu.disks)
        from lk_qemu.disks import disk_args

        argv += disk_args(options.disks, DISK_CACHE)

    incoming = getattr(options, "incoming", None)
    if incoming is not None:  # resume a checkpoint's state (see lk_qemu.checkpoint)
        from lk_qemu.checkpoint import incoming_uri

        argv += ["-incoming", incoming_uri(Path(_absolute(incoming, "the saved state")))]

    extra = options.options.get("qemu_args", "")
    if extra.strip():
        argv += _extra_args(extra)
    return argv


def _identity(options: HypervisorOptions) -> str:
    """The ID the guest's MAC derives from: a resumed checkpoint's source, else the container."""
    return getattr(options, "identity", "") or options.id


def requested_accel(options: Mapping[str, str]) -> str | None:
    """The accelerator explicitly requested in ``HypervisorOptions.options``, if any."""
    value = options.get("accel", "").strip()
    return value or None
