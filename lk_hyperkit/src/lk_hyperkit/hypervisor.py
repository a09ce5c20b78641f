"""The Hyperkit hypervisor (macOS on Intel; deprecated upstream).

:class:`HyperkitHypervisor` turns :class:`~lk_core.model.HypervisorOptions`
into a hyperkit command line. :meth:`HyperkitHypervisor.plan` returns the
whole decision as data (:class:`HyperkitPlan`: hyperkit's argv, the network
chosen, the port forwards that were asked for, warnings);
:meth:`HyperkitHypervisor.build_command` wraps it for lk.

What hyperkit can and cannot do, and so what lk does:

- Boot: hyperkit has no BIOS. LinuxKit's kernel+initrd output boots directly
  (``-f kexec,KERNEL,INITRD,CMDLINE``). ISO, raw and qcow2 images boot only
  through UEFI firmware (``-f bootrom,FIRMWARE,,``) given with
  ``$LK_HYPERKIT_FIRMWARE`` or the ``firmware`` option; without it lk refuses
  with an explanation (a BIOS ISO would never start). VMDK is refused: hyperkit
  cannot read it.
- Console: hyperkit's ``log=`` back-end is a 64 KiB ring buffer, not a log, so
  the command lk runs is :mod:`lk_hyperkit.launch`, which copies the console
  terminal (``autopty=``) into ``options.console_log`` and then *becomes*
  hyperkit (exec). The ring buffer is kept as ``RUNTIME/console-ring``.
- Network: vpnkit when a socket is found, otherwise none (hyperkit's own
  ``virtio-net`` uses vmnet.framework, which needs root; ask for it with
  ``network=vmnet``).
- Ports: hyperkit has no port forwarding. lk refuses ``-p`` and warns that the
  SSH port is not forwarded. The requested forwards are kept in
  :attr:`HyperkitPlan.forwards` (see :func:`vpnkit_port_spec`).
- Disks: hyperkit's qcow2 reader cannot follow a backing file, so instead of
  an overlay each container boots a private sparse copy of its raw or qcow2
  image; data disks are sparse raw files in PCI slots 6 and up (hyperkit
  cannot set their serial: the guest finds them by order). See
  :mod:`lk_hyperkit.disks`.
- Volumes: hyperkit's virtio-9p device only connects to an external 9P server
  socket; lk has none to offer, so ``-v`` is refused.
- Commas: hyperkit splits every option on ``,`` and has no escape, so a path
  with a comma is refused (qcow2 paths are percent-encoded in a ``file://``
  URI instead, which hyperkit decodes).
"""

from __future__ import annotations

# ``lk ps`` imports this module (to instantiate the hypervisor), so it imports
# only what the class needs to exist; what a method needs (logging, uuid,
# signal, platform, urllib, liveness) is imported in that method.
import functools
import os
import shutil
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
from lk_core.disks import BOOT
from lk_core.errors import HypervisorError, UsageError
from lk_core.formats import ISO, KERNEL_INITRD, QCOW2, RAW, VMDK, find_kernel_initrd
from lk_core.hypervisor import Capability, ProcessHypervisor
from lk_core.model import Availability, PortMapping

from lk_hyperkit.disks import data_disk_slots

if TYPE_CHECKING:
    import uuid

    from lk_core.model import Container, HypervisorOptions
    from lk_core.options import OptionSpec

__all__ = [
    "ENV_BINARY",
    "ENV_FIRMWARE",
    "ENV_NETWORK",
    "ENV_VPNKIT_SOCKET",
    "LAUNCHER",
    "NETWORK_MODES",
    "OPTION_KEYS",
    "HyperkitHypervisor",
    "HyperkitPlan",
    "hyperkit_path",
    "qcow2_disk",
    "vm_uuid",
    "vpnkit_port_spec",
    "with_serial_console",
]

#: Path of the hyperkit binary (default: ``hyperkit`` on ``$PATH``).
ENV_BINARY = "LK_HYPERKIT"
#: UEFI firmware (e.g. ``UEFI.fd``) used to boot ISO, raw and qcow2 images.
ENV_FIRMWARE = "LK_HYPERKIT_FIRMWARE"
#: vpnkit's ethernet socket (default: Docker for Mac's, when it exists).
ENV_VPNKIT_SOCKET = "LK_VPNKIT_SOCKET"
#: Network mode: ``auto`` (default), ``vpnkit``, ``vmnet`` or ``none``.
ENV_NETWORK = "LK_HYPERKIT_NETWORK"

#: Keys accepted in ``HypervisorOptions.options`` (they override the variables above).
OPTION_KEYS = ("firmware", "network", "vpnkit")
NETWORK_MODES = ("auto", "vpnkit", "vmnet", "none")

#: Where Docker for Mac keeps vpnkit's ethernet socket (newer name first), under ``$HOME``.
DOCKER_VPNKIT_SOCKETS = (
    "Library/Containers/com.docker.docker/Data/vpnkit.eth.sock",
    "Library/Containers/com.docker.docker/Data/s50",
)

#: The console launcher lk runs (it execs hyperkit, see :mod:`lk_hyperkit.launch`).
LAUNCHER = Path(__file__).with_name("launch.py")

#: hyperkit's VM_MAXCPU.
MAX_CPUS = 16
#: macOS limit of a unix socket path (``sun_path`` is 104 bytes with the NUL).
MAX_SOCKET_PATH = 103

# Fixed PCI slots, so the guest always sees the same devices (reference: disk 2, network 3).
SLOT_HOSTBRIDGE = "0:0"
SLOT_DISK = 2
SLOT_NETWORK = 3
SLOT_METADATA = 4
SLOT_RNG = 5
SLOT_LPC = 31

PIDFILE_NAME = "hyperkit.pid"
TTY_NAME = "tty"
RING_NAME = "console-ring"

#: The qcow2 settings Docker for Mac uses (TRIM support, compaction after unmaps).
QCOW_CONFIG = "discard=true;compact_after_unmaps=262144;keep_erased=262144;runtime_asserts=false"

_HYPERKIT_FORMATS = frozenset({KERNEL_INITRD, ISO, RAW, QCOW2})
_FIRMWARE_HELP = (
    f"set {ENV_FIRMWARE}=/path/to/UEFI.fd (hyperkit's UEFI firmware, from its releases or "
    "Docker for Mac) or pass the option firmware=/path/to/UEFI.fd"
)


@functools.cache
def _uuid_namespace() -> uuid.UUID:
    """Namespace of the VM UUIDs (uuid5 of the container ID): stable across runs.

    Computed on first use, not at import: uuid5 imports :mod:`hashlib` (~4 ms),
    which ``lk ps`` does not need.
    """
    import uuid

    return uuid.uuid5(uuid.NAMESPACE_DNS, "hyperkit.lk.invalid")


def vm_uuid(container_id: str) -> str:
    """Return the VM's UUID: a uuid5 of ``container_id``, the same every time.

    hyperkit shows it to the guest (SMBIOS) and vpnkit uses it to give the VM
    the same IP address on every boot.
    """
    import uuid

    return str(uuid.uuid5(_uuid_namespace(), container_id))


def with_serial_console(cmdline: str) -> str:
    """Return the kernel command line with ``console=ttyS0`` added unless already there.

    hyperkit's only console is the first serial port (``com1``).
    """
    words = cmdline.split()
    if any(word == "console=ttyS0" or word.startswith("console=ttyS0,") for word in words):
        return cmdline.strip()
    return " ".join([*words, "console=ttyS0"])


def hyperkit_path(path: Path | str, what: str) -> str:
    """Return ``path`` as text for a hyperkit option, refusing what hyperkit would mis-parse.

    hyperkit splits its ``-s``, ``-l`` and ``-f`` options on commas and has no
    way to escape one, so a comma in ``path`` would silently turn the rest of
    the path into other options. Raises :class:`HypervisorError` naming
    ``what`` (e.g. "disk image") and the way out.
    """
    text = str(path)
    if "," in text:
        raise HypervisorError(
            f"hyperkit cannot use the {what} {text!r}: its path contains a comma, which "
            "hyperkit's option parser would split. Rename it, or point to it through a "
            "symlink whose path has no comma"
        )
    if "\n" in text or "\0" in text:
        raise HypervisorError(f"hyperkit cannot use the {what} {text!r}: bad character in path")
    return text


def qcow2_disk(path: Path) -> str:
    """Return hyperkit's virtio-blk configuration for the qcow2 image at ``path``.

    hyperkit reads qcow2 through its ``file://`` URI back-end; the path is
    percent-encoded (hyperkit decodes it), so commas and spaces are safe here.
    """
    from urllib.parse import quote

    uri = "file://" + quote(str(path), safe="/")
    return f"{uri}?sync=os&buffered=1,format=qcow,qcow-config={QCOW_CONFIG}"


def vpnkit_port_spec(mapping: PortMapping, guest_ip: str) -> str:
    """Return vpnkit's port-forward spec for ``mapping`` to a guest at ``guest_ip``.

    The format is vpnkit's ``proto:outIP:outPort:proto:inIP:inPort``; it names
    the directory created in vpnkit's port-control 9P file system (or the body
    of its HTTP ``/expose`` call). lk does not create forwards itself (see
    :attr:`HyperkitPlan.forwards`).
    """
    proto = str(mapping.protocol)
    return f"{proto}:{mapping.host_ip}:{mapping.host_port}:{proto}:{guest_ip}:{mapping.guest_port}"


@attrs.frozen
class HyperkitPlan:
    """Everything :meth:`HyperkitHypervisor.plan` decided, as data.

    ``hyperkit`` and ``args`` are hyperkit's own argv; :meth:`command` is what
    lk runs (the console launcher, which execs hyperkit). ``network`` is
    ``vpnkit``, ``vmnet`` or ``none``. ``forwards`` are the host->guest
    forwards the run asked for (the SSH port first); hyperkit cannot create
    them, so they are recorded, not published. ``warnings`` are shown to the
    user (logged by :meth:`HyperkitHypervisor.build_command`).
    """

    hyperkit: str
    args: tuple[str, ...]
    uuid: str
    console_log: Path
    tty: Path
    pidfile: Path
    console_ring: Path
    network: str
    vpnkit_socket: str = ""
    forwards: tuple[PortMapping, ...] = ()
    warnings: tuple[str, ...] = ()

    def hyperkit_argv(self) -> list[str]:
        """hyperkit's own command line (binary first)."""
        return [self.hyperkit, *self.args]

    def command(self) -> list[str]:
        """The argv lk runs: the console launcher, then ``--``, then hyperkit's argv."""
        return [
            sys.executable,
            "-I",
            str(LAUNCHER),
            "--console-log",
            str(self.console_log),
            "--tty",
            str(self.tty),
            "--pidfile",
            str(self.pidfile),
            "--",
            *self.hyperkit_argv(),
        ]


class HyperkitHypervisor(ProcessHypervisor):
    """lk's Hyperkit hypervisor: preferred on Intel Macs where hyperkit is installed.

    The constructor arguments replace what is read from the machine, for
    tests and embedding: ``platform`` (default ``sys.platform``), ``machine``
    (default ``platform.machine()``), ``environ`` (default ``os.environ``,
    read at each call: ``PATH``, ``HOME`` and the ``LK_*`` variables) and
    ``euid`` (default ``os.geteuid()``).
    """

    name = "hyperkit"
    description = "Hyperkit (macOS on Intel; deprecated upstream, prefer qemu)"
    formats = _HYPERKIT_FORMATS
    #: LinuxKit's kernel+initrd boots without firmware; the rest needs UEFI.
    preferred_formats = (KERNEL_INITRD, ISO, RAW, QCOW2)
    priority = 20
    capabilities = frozenset({Capability.RESTART, Capability.METADATA, Capability.DISKS})

    def __init__(
        self,
        *,
        platform: str | None = None,
        machine: str | None = None,
        environ: Mapping[str, str] | None = None,
        euid: int | None = None,
    ) -> None:
        self._platform = platform
        self._machine = machine
        self._environ = environ
        self._euid = euid

    # -- the machine ----------------------------------------------------------
    @property
    def platform(self) -> str:
        """The platform in use (``sys.platform`` unless given)."""
        return self._platform if self._platform is not None else sys.platform

    @property
    def machine(self) -> str:
        """The CPU architecture (``platform.machine()`` unless given)."""
        if self._machine is not None:
            return self._machine
        import platform

        return platform.machine()

    @property
    def environ(self) -> Mapping[str, str]:
        """The environment variables in use (``os.environ`` unless given)."""
        return self._environ if self._environ is not None else os.environ

    def _is_root(self) -> bool:
        euid = self._euid if self._euid is not None else os.geteuid()
        return euid == 0

    def find_binary(self) -> str | None:
        """Return the hyperkit executable (``$LK_HYPERKIT`` or on ``$PATH``), or None."""
        configured = self.environ.get(ENV_BINARY, "").strip()
        search_path = self.environ.get("PATH", os.defpath)
        if configured:
            if os.sep in configured:
                candidate = Path(configured).expanduser()
                return str(candidate) if _is_executable_file(candidate) else None
            return shutil.which(configured, path=search_path)
        return shutil.which("hyperkit", path=search_path)

    def find_vpnkit_socket(self, options: Mapping[str, str] | None = None) -> str | None:
        """Return vpnkit's ethernet socket: option ``vpnkit``, ``$LK_VPNKIT_SOCKET``, Docker's.

        A socket named explicitly is the only candidate: None if it is not a
        unix socket (the plan then refuses to start rather than run offline).
        """
        explicit = (options or {}).get("vpnkit", "") or self.environ.get(ENV_VPNKIT_SOCKET, "")
        if explicit.strip():
            path = Path(explicit.strip()).expanduser()
            return str(path) if _is_socket(path) else None
        home = self.environ.get("HOME", "")
        if not home:
            return None
        for relative in DOCKER_VPNKIT_SOCKETS:
            path = Path(home) / relative
            if _is_socket(path):
                return str(path)
        return None

    # -- the Hypervisor contract ----------------------------------------------
    def options(self) -> list[OptionSpec]:
        """``--firmware``, ``--network`` and ``--vpnkit`` (see the module docstring)."""
        from lk_core.options import OptionSpec

        return [
            OptionSpec(
                "firmware",
                f"UEFI firmware (UEFI.fd) to boot ISO, raw and qcow2 images (or ${ENV_FIRMWARE}).",
                metavar="FILE",
            ),
            OptionSpec(
                "network",
                f"Network: {', '.join(NETWORK_MODES)} (default: auto, or ${ENV_NETWORK}).",
                metavar="MODE",
            ),
            OptionSpec(
                "vpnkit",
                f"vpnkit's ethernet socket (default: ${ENV_VPNKIT_SOCKET}, or Docker's).",
                metavar="SOCKET",
            ),
        ]

    def availability(self) -> Availability:
        """Available only on macOS on Intel with a hyperkit executable; say why not otherwise."""
        if self.platform != "darwin":
            return Availability(False, f"requires macOS (this is {self.platform})")
        if self.machine.lower() in ("arm64", "aarch64"):
            return Availability(
                False,
                "hyperkit is x86-only: on Apple Silicon use qemu (with HVF) or a "
                "Virtualization.framework tool",
            )
        binary = self.find_binary()
        if binary is None:
            configured = self.environ.get(ENV_BINARY, "").strip()
            if configured:
                return Availability(
                    False, f"{ENV_BINARY}={configured} is not an executable hyperkit"
                )
            return Availability(False, f"hyperkit not found (set {ENV_BINARY} or install it)")
        socket = self.find_vpnkit_socket()
        firmware = self.environ.get(ENV_FIRMWARE, "").strip()
        return Availability(
            True,
            "",
            {
                "binary": binary,
                "network": f"vpnkit ({socket})" if socket else "none (no vpnkit socket found)",
                "firmware": firmware or "not set (only kernel+initrd images boot)",
                "note": "hyperkit is deprecated upstream; prefer qemu",
            },
        )

    def build_command(self, options: HypervisorOptions) -> list[str]:
        """Return the argv lk runs for ``options`` (see :meth:`plan`), logging its warnings.

        On top of :meth:`plan`, refuses published ports (``-p``): hyperkit
        cannot forward them, and dropping them silently would lie to the user.
        """
        import logging

        plan = self.plan(options)
        if options.ports:
            asked = ", ".join(str(port) for port in options.ports)
            raise HypervisorError(
                f"hyperkit cannot publish ports ({asked}): it has no port forwarding "
                f"(network: {plan.network}). Use --hypervisor qemu, or reach the guest "
                "another way (vmnet gives it an address the Mac can reach)"
            )
        for warning in plan.warnings:
            logging.getLogger(__name__).warning("%s", warning)
        return plan.command()

    def request_shutdown(self, container: Container, runtime_dir: Path) -> None:
        """Send SIGTERM to hyperkit, which turns it into an ACPI power-button press.

        lk verifies the process identity before calling this; PIDs 0 and 1
        are refused all the same. A process that is already gone is not an
        error (the VM is off).
        """
        import signal

        from lk_core.liveness import hypervisor_alive

        if container.pid <= 1:
            raise HypervisorError(f"refusing to signal PID {container.pid}: not a hyperkit process")
        # Identity-checked: a process that is gone (or whose PID was reused) is off.
        if not self.signal(container, signal.SIGTERM) and hypervisor_alive(container):
            raise HypervisorError(
                f"cannot signal hyperkit (PID {container.pid}): permission denied?"
            )

    # -- disks (see lk_hyperkit.disks) ------------------------------------------
    def create_overlay(self, image: Path, fmt: str, directory: Path) -> tuple[Path, str]:
        """A private sparse copy of ``image`` (hyperkit's qcow2 cannot follow a backing file)."""
        from lk_hyperkit.disks import create_private_copy

        return create_private_copy(image, fmt, directory)

    def create_disk(self, stem: Path, size: int) -> tuple[Path, str]:
        """An empty sparse raw disk ``<stem>.raw`` (hyperkit reads raw natively)."""
        from lk_hyperkit.disks import create_sparse_disk

        return create_sparse_disk(stem, size)

    def commit_disk(self, disk: Path, fmt: str, target: Path) -> None:
        """Copy a qcow2 disk, or convert a raw one with qemu-img when it is installed."""
        from lk_hyperkit.disks import commit

        commit(disk, fmt, target, self.environ)

    # -- the plan --------------------------------------------------------------
    def explain_format(self, fmt: str) -> str | None:
        """Say why images of format ``fmt`` cannot be booted, or None if they can."""
        if fmt in self.formats:
            return None
        if fmt == VMDK:
            return (
                "hyperkit cannot read VMDK images: convert it with "
                "'qemu-img convert -O qcow2 IMAGE.vmdk IMAGE.qcow2', or use --hypervisor qemu"
            )
        supported = ", ".join(sorted(self.formats))
        return f"hyperkit cannot boot {fmt!r} images (it boots: {supported})"

    def plan(self, options: HypervisorOptions) -> HyperkitPlan:
        """Decide hyperkit's command line for ``options``, as data.

        Raises :class:`HypervisorError` for what hyperkit cannot do (VMDK,
        volumes, a BIOS boot, paths with commas, too many CPUs, a missing
        binary or vpnkit socket) and :class:`UsageError` for unknown or bad
        options. Does not refuse ports (:meth:`build_command` does): they are
        recorded in :attr:`HyperkitPlan.forwards`.
        """
        hv_options = dict(options.options)
        _check_option_keys(hv_options)
        problem = self.explain_format(options.format)
        if problem is not None:
            raise HypervisorError(problem)
        if options.volumes:
            raise HypervisorError(
                "hyperkit cannot share host folders (-v): its virtio-9p device needs an "
                "external 9P server, which lk does not provide. Use --hypervisor qemu for "
                "volumes, or copy files in over SSH"
            )
        if not 1 <= options.cpus <= MAX_CPUS:
            raise HypervisorError(f"hyperkit supports 1 to {MAX_CPUS} CPUs, not {options.cpus}")
        if options.memory < 1:
            raise HypervisorError(f"invalid memory size {options.memory} MB")
        binary = self.find_binary()
        if binary is None:
            raise HypervisorError(f"hyperkit not found (set {ENV_BINARY} or install it)")

        vm_id = vm_uuid(options.id)
        runtime = options.runtime_dir
        tty = runtime / TTY_NAME
        ring = runtime / RING_NAME
        pidfile = runtime / PIDFILE_NAME
        warnings: list[str] = []
        args: list[str] = [
            "-A",
            "-u",
            "-F", str(pidfile),
            "-c", str(options.cpus),
            "-m", f"{options.memory}M",
            "-U", vm_id,
            "-s", f"{SLOT_HOSTBRIDGE},hostbridge",
            "-s", f"{SLOT_LPC},lpc",
        ]  # fmt: skip

        boot = self._boot(options, hv_options)
        disk = _disk(options)
        if disk:
            args += ["-s", f"{SLOT_DISK},{disk}"]
        for slot, data_disk in data_disk_slots(options.disks):
            args += ["-s", f"{slot},{_virtio_blk(Path(data_disk.path), data_disk.format)}"]

        network, socket = self._network(hv_options, warnings)
        if network == "vpnkit":
            socket_text = hyperkit_path(socket, "vpnkit socket")
            args += ["-s", f"{SLOT_NETWORK}:0,virtio-vpnkit,path={socket_text},uuid={vm_id}"]
        elif network == "vmnet":
            args += ["-s", f"{SLOT_NETWORK}:0,virtio-net"]

        if options.metadata_iso is not None:
            iso = hyperkit_path(options.metadata_iso, "metadata CD")
            args += ["-s", f"{SLOT_METADATA},ahci-cd,{iso}"]
        args += ["-s", f"{SLOT_RNG},virtio-rnd"]
        args += [
            "-l",
            f"com1,autopty={hyperkit_path(tty, 'runtime folder')},"
            f"log={hyperkit_path(ring, 'runtime folder')}",
        ]
        args += boot

        forwards = _forwards(options)
        if options.ssh_port > 0:
            warnings.append(
                f"hyperkit cannot forward host port {options.ssh_port} to the guest's SSH "
                "(no port forwarding): 'lk exec' and ssh will not reach this VM; "
                "use --hypervisor qemu for them"
            )
        return HyperkitPlan(
            hyperkit=binary,
            args=tuple(args),
            uuid=vm_id,
            console_log=options.console_log,
            tty=tty,
            pidfile=pidfile,
            console_ring=ring,
            network=network,
            vpnkit_socket=socket,
            forwards=forwards,
            warnings=tuple(warnings),
        )

    def _boot(self, options: HypervisorOptions, hv_options: Mapping[str, str]) -> list[str]:
        """Return the ``-f`` firmware arguments (kexec or UEFI bootrom)."""
        if options.format == KERNEL_INITRD:
            found = find_kernel_initrd(options.image)
            if found is None:
                raise HypervisorError(
                    f"cannot find the kernel and initrd of {options.image} "
                    "(expected NAME-kernel and NAME-initrd.img side by side)"
                )
            kernel = hyperkit_path(found.kernel, "kernel")
            initrd = hyperkit_path(found.initrd, "initrd")
            # No quotes: there is no shell. hyperkit takes everything after the
            # third comma, commas included, as the command line.
            cmdline = with_serial_console(found.read_cmdline())
            return ["-f", f"kexec,{kernel},{initrd},{cmdline}"]
        firmware = self._firmware(hv_options)
        if firmware is None:
            raise HypervisorError(_no_firmware_message(options))
        return ["-f", f"bootrom,{hyperkit_path(firmware, 'firmware')},,"]

    def _firmware(self, hv_options: Mapping[str, str]) -> Path | None:
        """Return the UEFI firmware (option ``firmware``, else ``$LK_HYPERKIT_FIRMWARE``)."""
        value = hv_options.get("firmware", "").strip() or self.environ.get(ENV_FIRMWARE, "").strip()
        if not value:
            return None
        path = Path(value).expanduser().absolute()
        if not path.is_file():
            raise HypervisorError(f"hyperkit firmware {value} is not a file ({_FIRMWARE_HELP})")
        return path

    def _network(self, hv_options: Mapping[str, str], warnings: list[str]) -> tuple[str, str]:
        """Choose the network (``vpnkit``, ``vmnet`` or ``none``) and the vpnkit socket."""
        mode = (hv_options.get("network") or self.environ.get(ENV_NETWORK, "") or "auto").strip()
        mode = mode.lower()
        if mode not in NETWORK_MODES:
            raise UsageError(
                f"unknown hyperkit network {mode!r}: use one of {', '.join(NETWORK_MODES)}"
            )
        if mode in ("auto", "vpnkit"):
            socket = self.find_vpnkit_socket(hv_options)
            explicit = hv_options.get("vpnkit", "") or self.environ.get(ENV_VPNKIT_SOCKET, "")
            if socket is None and explicit.strip():
                raise HypervisorError(
                    f"the vpnkit socket {explicit.strip()} does not exist or is not a socket "
                    f"(is vpnkit running?); fix {ENV_VPNKIT_SOCKET} or unset it"
                )
            if socket is not None:
                if len(os.fsencode(socket)) > MAX_SOCKET_PATH:
                    raise HypervisorError(
                        f"the vpnkit socket path {socket} is longer than macOS allows for a "
                        f"unix socket ({MAX_SOCKET_PATH} bytes): use a shorter path or symlink"
                    )
                return "vpnkit", socket
            if mode == "vpnkit":
                raise HypervisorError(
                    "network=vpnkit but no vpnkit socket was found: start vpnkit (or Docker "
                    f"for Mac) and set {ENV_VPNKIT_SOCKET}=/path/to/vpnkit.eth.sock"
                )
            if self._is_root():
                return "vmnet", ""
            warnings.append(
                "no vpnkit socket found: the VM has no network (hyperkit's own virtio-net "
                f"needs root). Set {ENV_VPNKIT_SOCKET} to vpnkit's ethernet socket, or "
                f"{ENV_NETWORK}=vmnet with a root (setuid) hyperkit"
            )
            return "none", ""
        if mode == "vmnet" and not self._is_root():
            warnings.append(
                "network=vmnet: hyperkit's virtio-net uses vmnet.framework, which needs "
                "root; a hyperkit that is not setuid root will exit at start"
            )
        return mode, ""


def _check_option_keys(hv_options: Mapping[str, str]) -> None:
    """Refuse option keys hyperkit does not know, so typos are not silently ignored."""
    unknown = sorted(set(hv_options) - set(OPTION_KEYS))
    if not unknown:
        return
    hint = " (--accel is for QEMU)" if "accel" in unknown else ""
    raise UsageError(
        f"hyperkit does not take the option(s) {', '.join(unknown)}{hint}; "
        f"it knows: {', '.join(OPTION_KEYS)}"
    )


def _virtio_blk(path: Path, fmt: str) -> str:
    """A ``virtio-blk`` device for the raw or qcow2 disk at ``path``."""
    if fmt == QCOW2:
        return f"virtio-blk,{qcow2_disk(path)}"
    if fmt == RAW:
        return f"virtio-blk,{hyperkit_path(path, 'disk')}"
    raise HypervisorError(f"hyperkit cannot attach {fmt} disks ({path})")


def _disk(options: HypervisorOptions) -> str:
    """Return the PCI device (emulation and configuration) of the boot image, or ""."""
    boot = next((d for d in options.disks if d.role == BOOT), None)
    if boot is not None:  # the container's private copy (see lk_hyperkit.disks)
        return _virtio_blk(Path(boot.path), boot.format)
    if options.format == ISO:
        return f"ahci-cd,{hyperkit_path(options.image, 'ISO image')}"
    if options.format == RAW:
        return f"virtio-blk,{hyperkit_path(options.image, 'disk image')}"
    if options.format == QCOW2:
        return f"virtio-blk,{qcow2_disk(options.image)}"
    return ""


def _forwards(options: HypervisorOptions) -> tuple[PortMapping, ...]:
    """The host->guest forwards a run asks for: SSH (to guest port 22) first, then ``-p``."""
    forwards: list[PortMapping] = []
    if options.ssh_port > 0:
        forwards.append(PortMapping(host_port=options.ssh_port, guest_port=22))
    forwards.extend(options.ports)
    return tuple(forwards)


def _no_firmware_message(options: HypervisorOptions) -> str:
    """Explain why an ISO or disk image cannot boot without UEFI firmware, and what to do."""
    if options.format == ISO:
        what = (
            f"hyperkit cannot boot the ISO {options.image} without UEFI firmware: it has no "
            "BIOS, so a BIOS ISO (linuxkit build --format iso-bios) never starts. Build an "
            "EFI ISO (--format iso-efi) and "
        )
    else:
        what = (
            f"hyperkit cannot boot the {options.format} disk {options.image} without UEFI "
            "firmware: it has no BIOS. Build an EFI-bootable disk and "
        )
    return (
        what
        + _FIRMWARE_HELP
        + "; or boot LinuxKit's kernel+initrd output (--format kernel+initrd); "
        "or use --hypervisor qemu"
    )


def _is_executable_file(path: Path) -> bool:
    """Return whether ``path`` is an executable regular file."""
    try:
        return path.is_file() and os.access(path, os.X_OK)
    except OSError:
        return False


def _is_socket(path: Path) -> bool:
    """Return whether ``path`` is a unix socket."""
    try:
        return stat.S_ISSOCK(path.stat().st_mode)
    except OSError:
        return False
