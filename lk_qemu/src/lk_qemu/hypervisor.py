"""The QEMU hypervisor: finds the binary, picks the accelerator, builds argv, stops via QMP.

This module is imported on every ``lk`` start-up (through the plugin), so it
imports only the standard library and :mod:`lk_core.errors`; the model, the
command-line builder and the QMP client are imported when used.
"""

from __future__ import annotations

import os
import platform
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lk_core.errors import HypervisorError, LkError
from lk_core.hypervisor import Capability, ProcessHypervisor

from lk_qemu.accel import choose_accelerator

if TYPE_CHECKING:
    import socket

    from lk_core.model import Availability, Container, HypervisorOptions
    from lk_core.options import OptionSpec
    from lk_core.vm import CheckpointInfo

    from lk_qemu.argv import DirectBoot

__all__ = [
    "ENV_BINARY",
    "SHUTDOWN_TIMEOUT",
    "QemuHypervisor",
    "default_binary_name",
    "find_binary",
    "host_arch",
]

#: Environment variable naming the QEMU binary (a name on ``PATH`` or a path).
ENV_BINARY = "LK_QEMU"
#: Seconds :meth:`QemuHypervisor.request_shutdown` waits for QMP to answer.
SHUTDOWN_TIMEOUT = 2.0

_ARCH_ALIASES = {
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "x64": "x86_64",
    "aarch64": "aarch64",
    "arm64": "aarch64",
}
_INSTALL_HINT = {
    "x86_64": "apt install qemu-system-x86 / brew install qemu",
    "aarch64": "apt install qemu-system-arm / brew install qemu",
}


def host_arch(machine: str | None = None) -> str:
    """The QEMU architecture for the host (``"x86_64"`` or ``"aarch64"``).

    ``machine`` defaults to :func:`platform.machine`; anything unknown maps to
    ``"x86_64"`` (which QEMU can still emulate).
    """
    value = platform.machine() if machine is None else machine
    return _ARCH_ALIASES.get(value.lower(), "x86_64")


def default_binary_name(machine: str | None = None) -> str:
    """``qemu-system-x86_64`` or ``qemu-system-aarch64``, by host machine."""
    return f"qemu-system-{host_arch(machine)}"


def _binary_arch(binary: str, machine: str | None) -> str:
    """The guest architecture of ``binary``, judged by its name, else the host's."""
    name = os.path.basename(binary)
    if "aarch64" in name:
        return "aarch64"
    if "x86_64" in name:
        return "x86_64"
    return host_arch(machine)


def find_binary(
    environ: Mapping[str, str] | None = None,
    machine: str | None = None,
    which: Callable[[str], str | None] = shutil.which,
) -> tuple[str | None, str]:
    """Locate QEMU: ``(path or None, reason it is missing or "")``.

    ``$LK_QEMU`` (a command name or a path) wins; otherwise the system
    emulator for the host's machine is searched on ``PATH``.
    """
    env = os.environ if environ is None else environ
    override = env.get(ENV_BINARY, "").strip()
    if override:
        found = which(override)
        if found is None:
            return None, f"${ENV_BINARY}={override} is not an executable found on PATH"
        return found, ""
    name = default_binary_name(machine)
    found = which(name)
    if found is None:
        hint = _INSTALL_HINT[host_arch(machine)]
        return None, f"{name} not found on PATH (install qemu: {hint})"
    return found, ""


def _faster_boot(
    options: HypervisorOptions, direct_boot: DirectBoot | None, environ: Mapping[str, str]
) -> DirectBoot | None:
    """Direct boot of a recognised LinuxKit ISO, and a PVH kernel (see :mod:`lk_qemu.direct_boot`).

    Anything that cannot be read or recognised leaves the boot as it was.
    """
    from lk_core.paths import default_state_dir

    from lk_qemu import direct_boot as db
    from lk_qemu.argv import DirectBoot

    if not db.enabled(environ):
        return direct_boot
    cache = default_state_dir() / "cache" / "qemu-boot"
    try:
        if options.format == "iso" and direct_boot is None:
            found = db.iso_files(Path(options.image), cache)
            if found is not None:
                direct_boot = DirectBoot(*found)
        if direct_boot is not None:
            vmlinux = db.pvh_kernel(Path(direct_boot.kernel), cache)
            if vmlinux is not None:
                direct_boot = DirectBoot(vmlinux, direct_boot.initrd, direct_boot.cmdline)
    except (OSError, ValueError, EOFError, MemoryError):
        pass  # boot the way QEMU would without lk's help
    return direct_boot


class QemuHypervisor(ProcessHypervisor):
    """Runs VMs with QEMU (KVM/HVF when usable, TCG emulation otherwise)."""

    name = "qemu"
    description = "QEMU (KVM on Linux, HVF on macOS, TCG emulation elsewhere)"
    formats: frozenset[str] = frozenset({"iso", "qcow2", "vmdk", "raw", "kernel+initrd"})
    preferred_formats = ("iso", "kernel+initrd", "qcow2", "raw", "vmdk")
    priority = 10
    capabilities = frozenset(
        {
            Capability.RESTART,
            Capability.PORTS,
            Capability.VOLUMES,
            Capability.METADATA,
            Capability.CONSOLE,
            Capability.DISKS,
            Capability.CHECKPOINTS,
        }
    )

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        machine: str | None = None,
    ) -> None:
        # Both default to the live process values, read at each call.
        self._environ = environ
        self._machine = machine

    def __repr__(self) -> str:
        return "QemuHypervisor()"

    def _env(self) -> Mapping[str, str]:
        """The environment to read ``$LK_QEMU``/``$LK_QEMU_ACCEL`` from."""
        return os.environ if self._environ is None else self._environ

    def options(self) -> list[OptionSpec]:
        """``--accel`` (the accelerator; default: the best usable) and ``--qemu-args``."""
        from lk_core.options import OptionSpec

        return [
            OptionSpec(
                "accel",
                "Accelerator: kvm, hvf, tcg (default: the best one that works here).",
                metavar="ACCEL",
            ),
            OptionSpec(
                "qemu_args",
                "Extra QEMU arguments, split like a shell (an escape hatch: lk does not "
                "check them).",
                metavar="ARGS",
            ),
        ]

    def availability(self) -> Availability:
        """Available when the QEMU binary is found; details name it and the accelerator.

        Cheap: only ``PATH`` lookups and ``/dev/kvm`` probes, no subprocess.
        """
        from lk_core.model import Availability

        binary, reason = find_binary(self._env(), self._machine)
        if binary is None:
            return Availability(available=False, reason=reason)
        try:
            accel, why = choose_accelerator(None, environ=self._env())
        except LkError as error:
            return Availability(available=False, reason=error.message, details={"binary": binary})
        return Availability(
            available=True,
            details={"binary": binary, "accelerator": f"{accel} ({why})"},
        )

    def build_command(self, options: HypervisorOptions) -> list[str]:
        """Return the QEMU argv for ``options`` (see :mod:`lk_qemu.argv`)."""
        from lk_qemu.argv import DirectBoot, build_argv, requested_accel

        binary, reason = find_binary(self._env(), self._machine)
        if binary is None:
            raise HypervisorError(reason)
        accel, _why = choose_accelerator(requested_accel(options.options), environ=self._env())
        direct_boot: DirectBoot | None = None
        if options.format == "kernel+initrd":
            from lk_core.formats import find_kernel_initrd

            files = find_kernel_initrd(Path(options.image))
            if files is None:
                raise HypervisorError(
                    f"{options.image} is not a LinuxKit kernel+initrd image: expected "
                    "NAME-kernel and NAME-initrd.img next to each other"
                )
            direct_boot = DirectBoot(files.kernel, files.initrd, files.read_cmdline())
        arch = _binary_arch(binary, self._machine)
        if arch == "x86_64":
            direct_boot = _faster_boot(options, direct_boot, self._env())
        return build_argv(
            options,
            binary=binary,
            accel=accel,
            arch=arch,
            direct_boot=direct_boot,
        )

    # -- disks (see lk_qemu.disks) -------------------------------------------------
    def create_overlay(self, image: Path, fmt: str, directory: Path) -> tuple[Path, str]:
        """A qcow2 overlay ``directory/boot.qcow2`` backed (read-only) by ``image``."""
        from lk_qemu.disks import find_disk_tool, overlay_argv, run_disk_tool

        overlay = directory / "boot.qcow2"
        argv = overlay_argv(find_disk_tool(self._env()), image.absolute(), fmt, overlay)
        run_disk_tool(argv, f"create the overlay of {image}")
        return overlay, "qcow2"

    def create_disk(self, stem: Path, size: int) -> tuple[Path, str]:
        """An empty sparse qcow2 disk ``<stem>.qcow2`` of ``size`` bytes."""
        from lk_qemu.disks import create_argv, find_disk_tool, run_disk_tool

        path = stem.with_name(stem.name + ".qcow2")
        run_disk_tool(create_argv(find_disk_tool(self._env()), path, size), f"create {path}")
        return path, "qcow2"

    def commit_disk(self, disk: Path, fmt: str, target: Path) -> None:
        """``qemu-img convert -O qcow2`` to a temporary file beside ``target``, then renamed."""
        from lk_qemu.disks import commit_argv, find_disk_tool, run_disk_tool

        tool = find_disk_tool(self._env())
        partial = target.with_name(f".{target.name}.partial")
        try:
            run_disk_tool(commit_argv(tool, disk, fmt, partial), f"write {target}")
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)

    # -- checkpoints (see lk_qemu.checkpoint) ---------------------------------------
    def save_checkpoint(self, container: Container, folder: Path, stop: bool) -> CheckpointInfo:
        """Pause, copy the writable disks, migrate the state to ``folder/state``, resume or quit."""
        import attrs
        from lk_core.disks import BOOT
        from lk_core.paths import runtime_dir
        from lk_core.vm import CheckpointInfo

        from lk_qemu.argv import qmp_socket_path
        from lk_qemu.checkpoint import STATE_FILE, save

        layers = folder / "disks"
        layers.mkdir(exist_ok=True)
        copies: list[tuple[Path, Path]] = []
        frozen = []
        for disk in container.disks:
            if disk.name or disk.read_only or not disk.path:
                raise HypervisorError(
                    f"disk {disk.name or disk.path} of {container.display_name} is not the "
                    "container's own: it cannot be frozen in a checkpoint"
                )
            target = layers / Path(disk.path).name
            copies.append((Path(disk.path), target))
            role = "boot" if disk.role == BOOT else disk.role
            frozen.append(attrs.evolve(disk, path=f"disks/{target.name}", role=role))
        details = save(
            qmp_socket_path(runtime_dir(container.id)),
            container.command,
            copies,
            folder / STATE_FILE,
            stop,
        )
        return CheckpointInfo(
            state=STATE_FILE,
            disks=tuple(frozen),
            compat={"version": details["version"], "machine": details["machine"]},
            details=details,
            paused_seconds=float(details["paused_seconds"]),
        )

    def checkpoint_compat(self) -> dict[str, str]:
        """QEMU's version and the machine type ``q35``/``virt`` stands for (cached)."""
        from lk_core.paths import default_state_dir

        from lk_qemu.checkpoint import binary_identity

        binary, reason = find_binary(self._env(), self._machine)
        if binary is None:
            raise HypervisorError(reason)
        alias = "q35" if _binary_arch(binary, self._machine) == "x86_64" else "virt"
        return binary_identity(binary, alias, default_state_dir() / "cache")

    def check_resume(self, saved: dict[str, Any], spec: HypervisorOptions) -> None:
        """Refuse unless the new QEMU's devices are the source's (host-side values aside)."""
        from lk_qemu.checkpoint import guest_argv

        before = [str(word) for word in saved.get("argv", [])]
        after = guest_argv(self.build_command(spec))
        if before == after:
            return
        index = next(
            (i for i, (a, b) in enumerate(zip(before, after, strict=False)) if a != b),
            min(len(before), len(after)),
        )
        was = before[index] if index < len(before) else "(nothing)"
        now = after[index] if index < len(after) else "(nothing)"
        raise HypervisorError(
            f"the VM would not have the source's devices (argument {index}: saved {was!r}, "
            f"now {now!r})"
        )

    def wait_resumed(self, container: Container, timeout: float) -> None:
        """Until QMP says ``running``; a one-line error if QEMU exits while loading."""
        from lk_core.liveness import hypervisor_alive
        from lk_core.paths import runtime_dir

        from lk_qemu.argv import qmp_socket_path
        from lk_qemu.checkpoint import wait_resumed

        def alive() -> bool:
            return hypervisor_alive(container)  # the record after the launch: its PID is known

        wait_resumed(qmp_socket_path(runtime_dir(container.id)), alive, timeout)

    def request_shutdown(self, container: Container, runtime_dir: Path) -> None:
        """Send QMP ``system_powerdown`` (an ACPI power button press); do not wait.

        One attempt through ``<runtime_dir>/qmp.sock`` with a short timeout;
        raises :class:`~lk_core.errors.HypervisorError` if it cannot be
        delivered.
        """
        from lk_qemu.argv import qmp_socket_path
        from lk_qemu.qmp import QmpClient, QmpError

        try:
            with QmpClient(qmp_socket_path(runtime_dir), timeout=SHUTDOWN_TIMEOUT) as qmp:
                qmp.execute("system_powerdown")
        except QmpError as error:
            raise HypervisorError(
                f"cannot ask container {container.display_name} to shut down: {error.message}"
            ) from error

    def open_console(self, container: Container) -> socket.socket:
        """A connected unix socket on the serial console (``<runtime_dir>/console.sock``).

        QEMU's server socket takes one client at a time: lk refuses a second
        ``lk attach`` before it gets here.
        """
        import socket

        from lk_core.paths import runtime_dir

        from lk_qemu.argv import console_socket_path

        path = console_socket_path(runtime_dir(container.id))
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(SHUTDOWN_TIMEOUT)
        try:
            sock.connect(str(path))
        except OSError as error:
            sock.close()
            if isinstance(error, FileNotFoundError):
                why = "it has no console socket (started by an older lk? restart it)"
            else:
                why = error.strerror or str(error)
            raise HypervisorError(
                f"cannot attach to container {container.display_name}: {why}"
            ) from None
        sock.settimeout(None)
        return sock

    def stats(self, container: Container) -> dict[str, int]:
        """Disk bytes read and written by the guest over its drives (QMP ``query-blockstats``).

        ``{}`` when QMP does not answer (the VM is stopping).
        """
        from lk_core.paths import runtime_dir

        from lk_qemu.argv import qmp_socket_path
        from lk_qemu.qmp import QmpClient, QmpError

        try:
            with QmpClient(qmp_socket_path(runtime_dir(container.id)), timeout=2.0) as qmp:
                devices = qmp.execute("query-blockstats")
        except QmpError:
            return {}
        read = written = 0
        for device in devices if isinstance(devices, list) else []:
            counters = device.get("stats", {}) if isinstance(device, dict) else {}
            read += int(counters.get("rd_bytes", 0))
            written += int(counters.get("wr_bytes", 0))
        return {"block_read_bytes": read, "block_write_bytes": written}
