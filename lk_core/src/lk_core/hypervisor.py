"""The contract a hypervisor plugin implements: two levels.

:class:`Hypervisor` is the general level. Its VMs may live anywhere: a local
process, a libvirt domain on another host, a cloud API. lk asks it to start a
VM (it answers with a :class:`Handle` that lk records), for the VM's state, to
stop it gracefully or by force, to remove it, for the host it lives on, for
its console log and for the SSH endpoint that reaches the guest. An engine
that is its own source of truth (it keeps the container records itself) says
so with :attr:`Hypervisor.owns_records` and lists them with
:meth:`Hypervisor.list_containers`.

:class:`ProcessHypervisor` is the level for hypervisors that are one local
process per VM (QEMU, Hyperkit, the docs' example). They write only
:meth:`~ProcessHypervisor.build_command` (argv as data) and
:meth:`~ProcessHypervisor.request_shutdown`; lk's supervisor owns the
process (identity = PID + start time, liveness on every ``lk ps``, exit
status recorded, forced stop by identity-checked signal).

Optional capabilities are declared in :attr:`Hypervisor.capabilities`, never
guessed: a hypervisor that lacks one makes the matching option fail in one
line naming the hypervisor (see :func:`require`). Optional methods have
defaults in the base class that refuse or return "nothing to say", like
Lima's ``BaseDriver``.

A plugin written against lk 0.1's contract (a plain class with
``build_command`` and ``request_shutdown``, no base class) still works: the
plugin manager wraps it in :class:`LegacyProcessHypervisor`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from lk_core.errors import HypervisorError, PluginError

if TYPE_CHECKING:
    from lk_core.model import Availability, Container, HypervisorOptions
    from lk_core.options import OptionSpec
    from lk_core.plugins import Plugins
    from lk_core.state import StoreOperations
    from lk_core.vm import CheckpointInfo, Handle, Listing, SshEndpoint, VmState

__all__ = [
    "Capability",
    "Hypervisor",
    "LegacyProcessHypervisor",
    "ProcessHypervisor",
    "as_hypervisor",
    "require",
]


class Capability(str, enum.Enum):
    """An optional thing a hypervisor can do. Declared in :attr:`Hypervisor.capabilities`."""

    #: Publish guest ports on the host (``lk run -p``).
    PORTS = "ports"
    #: Share host folders with the guest (``lk run -v``).
    VOLUMES = "volumes"
    #: Attach data disks (``lk run --disk``) and run disk images on an overlay.
    DISKS = "disks"
    #: An interactive serial console (``lk attach``): implement :meth:`Hypervisor.open_console`.
    CONSOLE = "console"
    #: Save and resume a running VM (``lk checkpoint``, ``--from-checkpoint``, ``--warm``).
    CHECKPOINTS = "checkpoints"
    #: Start a stopped VM again (``lk start``, ``lk restart``).
    RESTART = "restart"
    #: The LinuxKit metadata CD (SSH key, user data) can be attached.
    METADATA = "metadata"

    def __str__(self) -> str:
        return self.value


#: What each capability is called in an error message, by the option that needs it.
_NEEDS = {
    Capability.PORTS: "publish ports (-p)",
    Capability.VOLUMES: "share folders (-v)",
    Capability.DISKS: "attach data disks (--disk)",
    Capability.CONSOLE: "offer an interactive console (lk attach)",
    Capability.CHECKPOINTS: "save or resume checkpoints",
    Capability.RESTART: "start a stopped container again",
    Capability.METADATA: "attach the metadata CD",
}


def require(hypervisor: Hypervisor, capability: Capability) -> None:
    """Raise a one-line :class:`HypervisorError` unless ``hypervisor`` declares ``capability``."""
    if capability not in hypervisor.capabilities:
        raise HypervisorError(
            f"hypervisor {hypervisor.name} cannot {_NEEDS.get(capability, capability.value)}"
        )


class Hypervisor:
    """Base of every hypervisor: a way of running VMs, wherever they live.

    Subclasses set the class attributes and implement :meth:`availability`,
    :meth:`start`, :meth:`state`, :meth:`request_stop` and :meth:`kill`.
    Everything else has a default that either does the usual thing (console
    log in lk's log file, SSH on 127.0.0.1) or refuses in one line.
    """

    #: Lower-case name users pass to ``--hypervisor``.
    name: ClassVar[str] = ""
    #: One line shown by ``lk hypervisors``.
    description: ClassVar[str] = ""
    #: Image formats this hypervisor can boot (see :mod:`lk_core.formats`).
    formats: frozenset[str] = frozenset()
    #: Formats in order of preference when lk may choose (e.g. a template build).
    preferred_formats: tuple[str, ...] = ()
    #: When several are available and the user names none, the highest wins.
    priority: int = 0
    #: Optional capabilities this hypervisor has.
    capabilities: frozenset[Capability] = frozenset()
    #: True when the engine keeps the container records itself (libvirt's
    #: domain metadata): lk then lists them with :meth:`list_containers` and
    #: never writes them to its own state store.
    owns_records: ClassVar[bool] = False

    # -- what it is --------------------------------------------------------------
    def availability(self) -> Availability:
        """Say whether this hypervisor can run VMs here and, if not, why not.

        Cheap (no subprocess, no network): ``lk hypervisors`` and every ``lk
        run`` call it. ``details`` may add facts shown by ``lk hypervisors``.
        """
        raise NotImplementedError

    def options(self) -> list[OptionSpec]:
        """Options this hypervisor adds to ``lk run`` (``--accel``...); none by default.

        Two hypervisors that declare an option of the same name share one
        command-line flag; its value reaches the hypervisor that runs the
        container, typed, in :attr:`HypervisorOptions.options`, and is kept
        in the record (``plugin_options[<name>]``) for a later start. A
        hypervisor that did not declare an option the user gave refuses it.
        """
        return []

    def explain_format(self, fmt: str) -> str | None:
        """Why images of format ``fmt`` cannot be booted here, or None for the generic message."""
        return None

    # -- the VM's life -----------------------------------------------------------
    def start(self, plugins: Plugins, container: Container, spec: HypervisorOptions) -> Handle:
        """Create and boot the VM of ``container`` as ``spec`` describes; return its handle.

        Returns once the VM is booting (not when the guest is ready). Raise
        :class:`~lk_core.errors.LkError` with one line for options it cannot
        honour, and leave nothing behind when it raises. For an engine that
        :attr:`owns_records`, ``container`` is the record to keep with the VM.
        """
        raise NotImplementedError

    def restart(self, plugins: Plugins, container: Container, spec: HypervisorOptions) -> Handle:
        """Boot a stopped VM again (cold) with its recorded options; needs ``RESTART``.

        The default starts it as new with :meth:`start`, which is right for a
        hypervisor whose VMs leave nothing behind when they stop.
        """
        require(self, Capability.RESTART)
        return self.start(plugins, container, spec)

    def state(self, container: Container) -> VmState:
        """The VM's state now (``running``, ``stopped``, ``error``, ``broken``...)."""
        raise NotImplementedError

    def request_stop(self, container: Container) -> None:
        """Ask the VM to power off gracefully (ACPI), without waiting.

        lk calls this about once a second until :meth:`state` is no longer
        active or the stop timeout passes, then calls :meth:`kill`.
        """
        raise NotImplementedError

    def kill(self, container: Container) -> None:
        """Power the VM off at once. Not an error if it is off already."""
        raise NotImplementedError

    def remove(self, container: Container) -> None:
        """Forget a stopped VM for good (undefine it, delete its volumes). Default: nothing."""

    def list_containers(self) -> Listing:
        """The records of every VM this engine owns (only if :attr:`owns_records`)."""
        from lk_core.vm import Listing

        return Listing()

    def update_record(self, container: Container) -> None:
        """Store a changed record with an engine that :attr:`owns_records`.

        Called, for example, when lk pins the guest's SSH host key. Engines
        that do not own records are never asked.
        """
        raise HypervisorError(f"hypervisor {self.name} does not keep container records")

    # -- reaching it -------------------------------------------------------------
    def console_log(self, container: Container, follow: bool = False) -> Iterator[bytes] | None:
        """The console log's bytes (with ``follow``, until the VM stops), or None.

        None (the default) means lk's own log file has it: lk reads
        ``<logs>/<id>.log``. An engine whose console is logged elsewhere (on
        another host) streams it here.
        """
        return None

    def ssh_endpoint(self, container: Container) -> SshEndpoint:
        """Where the guest's SSH answers. Default: ``127.0.0.1`` and the recorded SSH port."""
        from lk_core.vm import SshEndpoint

        return SshEndpoint("127.0.0.1", container.ssh_port)

    def open_console(self, container: Container) -> Any:
        """A connected socket-like object on the interactive serial console; needs ``CONSOLE``."""
        require(self, Capability.CONSOLE)
        raise HypervisorError(f"hypervisor {self.name} has no console to attach to")

    # -- disks (Capability.DISKS) --------------------------------------------------
    def create_overlay(self, image: Path, fmt: str, directory: Path) -> tuple[Path, str]:
        """Create a container's writable boot disk in ``directory``, with ``image``'s content.

        ``image`` (of format ``fmt``) must never be opened for writing: it is
        shared by every container of the image. Usually a copy-on-write
        overlay backed by it. Returns the new file and its format. Needs
        ``DISKS``; raise a one-line :class:`~lk_core.errors.LkError` on failure.
        """
        require(self, Capability.DISKS)
        raise HypervisorError(f"hypervisor {self.name} cannot create disks")

    def create_disk(self, stem: Path, size: int) -> tuple[Path, str]:
        """Create an empty sparse disk of ``size`` bytes at ``stem`` plus the format's suffix.

        Returns the file and its format (``qcow2``, ``raw``). Needs ``DISKS``.
        """
        require(self, Capability.DISKS)
        raise HypervisorError(f"hypervisor {self.name} cannot create disks")

    def commit_disk(self, disk: Path, fmt: str, target: Path) -> None:
        """Write the disk ``disk`` (with its backing file) as a standalone qcow2 image ``target``.

        For ``lk commit``; the VM is stopped. Needs ``DISKS``.
        """
        require(self, Capability.DISKS)
        raise HypervisorError(f"hypervisor {self.name} cannot commit disks")

    # -- checkpoints (Capability.CHECKPOINTS) ---------------------------------------
    def save_checkpoint(self, container: Container, folder: Path, stop: bool) -> CheckpointInfo:
        """Pause the running VM of ``container``, save its state and disks into ``folder``.

        Writes the state (RAM and devices) and links or copies each writable
        disk of the container (its boot overlay, anonymous data disks) into
        ``folder`` as a frozen, read-only layer taken at the same instant;
        the container goes on with new disks on top of its old ones (its
        record's ``disks`` are updated by lk from the answer's ``details``
        ``"new_disks"``, paths in the same order). Then the VM resumes, or is
        powered off with ``stop``. Raise a one-line
        :class:`~lk_core.errors.LkError` and leave the VM running on failure.
        Needs ``CHECKPOINTS``; a resume is a start whose spec has ``incoming``.
        """
        require(self, Capability.CHECKPOINTS)
        raise HypervisorError(f"hypervisor {self.name} cannot save checkpoints")

    def checkpoint_compat(self) -> dict[str, str]:
        """What a checkpoint must have been saved with to resume here.

        Compared with :attr:`lk_core.vm.CheckpointInfo.compat` before a
        resume (e.g. the hypervisor's version and machine type), and part of
        ``lk run --warm``'s key. Cheap (cached). Needs ``CHECKPOINTS``.
        """
        require(self, Capability.CHECKPOINTS)
        raise HypervisorError(f"hypervisor {self.name} cannot save checkpoints")

    def check_resume(self, saved: dict[str, Any], spec: HypervisorOptions) -> None:
        """Refuse in one line to resume ``spec`` from a checkpoint whose ``details`` are ``saved``.

        E.g. the guest's devices differ from the source's. Default: nothing to check.
        """

    def wait_resumed(self, container: Container, timeout: float) -> None:
        """Block until a VM started with ``incoming`` runs; raise a one-line error if it failed.

        Needs ``CHECKPOINTS``.
        """
        require(self, Capability.CHECKPOINTS)

    def stats(self, container: Container) -> dict[str, int]:
        """Counters of a running VM for ``lk stats``; ``{}`` (nothing to say) by default.

        Keys lk shows: ``block_read_bytes`` and ``block_write_bytes`` (disk
        I/O), ``memory_bytes`` (the VM's memory use, for VMs that are not a
        local process lk can measure itself). A column nobody reports is
        left out. Must be quick and never raise for a VM that is stopping.
        """
        return {}


class ProcessHypervisor(Hypervisor):
    """A hypervisor that is one local process per VM, owned by lk's supervisor.

    Write :meth:`build_command` and :meth:`request_shutdown`; lk launches the
    command under its supervisor, records the PID with its start time, checks
    liveness on every ``lk ps``, records the exit status and, after a stop's
    timeout, signals the verified process.
    """

    capabilities: frozenset[Capability] = frozenset({Capability.RESTART})

    def build_command(self, options: HypervisorOptions) -> list[str]:
        """Return the argv that boots a VM with ``options``.

        The process must keep running in the foreground until the VM is off,
        send the serial console to its standard output or to
        ``options.console_log``, and keep private files inside
        ``options.runtime_dir``. Raise :class:`~lk_core.errors.LkError` for
        options this hypervisor cannot honour.
        """
        raise NotImplementedError

    def request_shutdown(self, container: Container, runtime_dir: Path) -> None:
        """Ask the VM to power off gracefully (ACPI), without waiting.

        lk calls this about once a second until the process exits or the stop
        timeout passes, then signals the (verified) process. Raise
        :class:`~lk_core.errors.HypervisorError` if it cannot be delivered.
        """
        raise NotImplementedError

    def signal(self, container: Container, signum: int) -> bool:
        """Send ``signum`` to the container's hypervisor process, identity-checked.

        Returns whether it was delivered (False when the process is gone or
        its PID now belongs to another process).
        """
        from lk_core.process import signal_process

        return signal_process(container.pid, container.pid_started, signum)

    # -- the general contract, served by lk's supervisor ---------------------------
    def record_command(
        self, store: StoreOperations, container: Container, spec: HypervisorOptions
    ) -> list[str]:
        """Build the argv for ``spec`` and record it in the container for the supervisor."""
        argv = self.build_command(spec)

        def change(record: Container) -> None:
            record.command = list(argv)

        store.update(container.id, change)
        return argv

    def start(self, plugins: Plugins, container: Container, spec: HypervisorOptions) -> Handle:
        """Launch :meth:`build_command`'s argv under a detached supervisor."""
        from lk_core.supervisor import spawn_supervisor
        from lk_core.vm import Handle

        spawn_supervisor(container.id)
        return Handle()

    def state(self, container: Container) -> VmState:
        """Liveness from the recorded process identities (see :mod:`lk_core.liveness`)."""
        from lk_core.liveness import process_state

        return process_state(container)

    def request_stop(self, container: Container) -> None:
        """Calls :meth:`request_shutdown` with the container's runtime folder."""
        from lk_core.paths import runtime_dir

        self.request_shutdown(container, runtime_dir(container.id))

    def kill(self, container: Container) -> None:
        """SIGTERM, then SIGKILL after 3 s, to the verified hypervisor process."""
        import signal

        from lk_core.liveness import hypervisor_alive
        from lk_core.waiting import wait_until

        def gone() -> bool:
            return not hypervisor_alive(container)

        if self.signal(container, signal.SIGTERM) and wait_until(gone, 3.0):
            return
        self.signal(container, signal.SIGKILL)
        wait_until(gone, 3.0)


class LegacyProcessHypervisor(ProcessHypervisor):
    """Wraps a hypervisor object written against lk 0.1's protocol (no base class).

    Such an object has ``name``, ``description``, ``formats``, ``priority``,
    ``availability()``, ``build_command(options)`` and
    ``request_shutdown(container, runtime_dir)``; it received lk's
    hypervisor options as a ``dict[str, str]`` and could publish ports and
    share folders. Its optional ``explain_format`` is used when present.
    """

    capabilities = frozenset(
        {Capability.RESTART, Capability.PORTS, Capability.VOLUMES, Capability.METADATA}
    )

    def __init__(self, wrapped: Any) -> None:
        for attribute in ("name", "availability", "build_command", "request_shutdown"):
            if not hasattr(wrapped, attribute):
                raise PluginError(f"hypervisor object {wrapped!r} has no {attribute!r}")
        self.wrapped = wrapped
        self.name = str(wrapped.name)  # type: ignore[misc]
        self.description = str(getattr(wrapped, "description", ""))  # type: ignore[misc]
        self.formats = frozenset(getattr(wrapped, "formats", frozenset()))
        self.priority = int(getattr(wrapped, "priority", 0))

    def __repr__(self) -> str:
        return f"LegacyProcessHypervisor({self.wrapped!r})"

    def availability(self) -> Availability:
        """The wrapped object's answer."""
        result: Availability = self.wrapped.availability()
        return result

    def explain_format(self, fmt: str) -> str | None:
        """The wrapped object's ``explain_format`` if it has one."""
        explain = getattr(self.wrapped, "explain_format", None)  # the 0.1 protocol's optional
        return explain(fmt) if callable(explain) else None

    def build_command(self, options: HypervisorOptions) -> list[str]:
        """The wrapped object's argv."""
        return list(self.wrapped.build_command(options))

    def request_shutdown(self, container: Container, runtime_dir: Path) -> None:
        """The wrapped object's shutdown request."""
        self.wrapped.request_shutdown(container, runtime_dir)


def as_hypervisor(candidate: object) -> Hypervisor:
    """``candidate`` as a :class:`Hypervisor`: itself, or wrapped if written for lk 0.1."""
    if isinstance(candidate, Hypervisor):
        if not candidate.name:
            raise PluginError(f"hypervisor {candidate!r} has no name")
        return candidate
    return LegacyProcessHypervisor(candidate)
