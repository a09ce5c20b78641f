"""The data model: containers, run options, port and volume mappings, templates.

All classes are attrs classes. They are (un)structured to JSON by the one
converter in :mod:`lk_core.serialize`. Field names follow the reference state
file (``id``, ``name``, ``image``, ``status``, ``pid``, ``started_at``,
``ports``, ``memory``, ``cpus``) and add what lk needs on top.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any

import attrs

from lk_core.disks import Disk, DiskRequest

#: Image formats are an open set of strings: plugins may add their own.
ImageFormat = str

DEFAULT_MEMORY_MB = 1024
DEFAULT_CPUS = 1


class Status(str, enum.Enum):
    """The life-cycle state of a container."""

    STARTING = "starting"
    RUNNING = "running"
    STOPPED = "stopped"
    ERROR = "error"
    #: Not stored: shown when a record's processes disagree (see ``status_reason``).
    BROKEN = "broken"

    def __str__(self) -> str:
        return self.value


class Protocol(str, enum.Enum):
    """A published port's transport protocol."""

    TCP = "tcp"
    UDP = "udp"

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class PortMapping:
    """A host port forwarded to a guest port (``[IP:]HOST:GUEST[/proto]``)."""

    host_port: int
    guest_port: int
    host_ip: str = "127.0.0.1"
    protocol: Protocol = Protocol.TCP

    def __str__(self) -> str:
        return f"{self.host_ip}:{self.host_port}->{self.guest_port}/{self.protocol}"


@attrs.frozen
class VolumeMapping:
    """A host directory shared into the guest over 9p under a unique ``tag``."""

    host_path: str
    guest_path: str
    read_only: bool = False
    tag: str = ""

    def __str__(self) -> str:
        suffix = ":ro" if self.read_only else ""
        return f"{self.host_path}:{self.guest_path}{suffix}"


@attrs.define
class Container:
    """One VM managed by lk, as stored in the state file.

    ``pid``/``pid_started`` identify the hypervisor process,
    ``supervisor_pid``/``supervisor_started`` the process that owns it; the
    start times make sure a reused PID is never taken for the VM.
    ``extra`` keeps fields written by newer versions of lk, so they survive
    a read-modify-write by this one.
    """

    id: str
    image: str
    name: str = ""
    format: str = ""
    hypervisor: str = ""
    status: Status = Status.STARTING
    status_reason: str = ""
    pid: int = 0
    pid_started: str = ""
    supervisor_pid: int = 0
    supervisor_started: str = ""
    started_at: str = ""
    finished_at: str = ""
    exit_code: int | None = None
    ports: list[PortMapping] = attrs.field(factory=list)
    volumes: list[VolumeMapping] = attrs.field(factory=list)
    memory: int = DEFAULT_MEMORY_MB
    cpus: int = DEFAULT_CPUS
    ssh_port: int = 0
    ssh_key: str = ""
    command: list[str] = attrs.field(factory=list)
    #: ``lk run --rm``: remove the record, log and runtime files once the VM exits.
    auto_remove: bool = False
    #: lk 0.1 kept the hypervisor's options here; read for old records only.
    hypervisor_options: dict[str, Any] = attrs.field(factory=dict)
    #: Each plugin's option values, by plugin (hypervisor) name, for a later start.
    plugin_options: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    #: Where the VM lives (a host name shown by ``lk ps``); empty for this machine.
    host: str = ""
    #: The hypervisor's own handle on the VM (see :class:`lk_core.hypervisor.Handle`).
    handle: dict[str, Any] = attrs.field(factory=dict)
    #: The container's disks: its boot overlay, then its data disks (see :mod:`lk_core.disks`).
    disks: list[Disk] = attrs.field(factory=list)
    extra: dict[str, Any] = attrs.field(factory=dict)

    @property
    def display_name(self) -> str:
        """The name if one was given, else the ID."""
        return self.name or self.id

    def options_for(self, owner: str) -> dict[str, Any]:
        """The option values recorded for plugin (or hypervisor) ``owner``."""
        if owner in self.plugin_options:
            return dict(self.plugin_options[owner])
        if owner == self.hypervisor:  # a record written by lk 0.1
            return dict(self.hypervisor_options)
        return {}

    @property
    def is_active(self) -> bool:
        """True while the VM is starting or running (or broken: processes may remain)."""
        return self.status in (Status.STARTING, Status.RUNNING, Status.BROKEN)


@attrs.frozen
class RunOptions:
    """What the user asked for with ``lk run`` (all optional but the image)."""

    name: str = ""
    detach: bool = False
    #: ``--rm``: remove the container (record, log, runtime files) once the VM exits.
    auto_remove: bool = False
    #: None: a plugin's default (a template's), else :data:`DEFAULT_MEMORY_MB`.
    memory: int | None = None
    #: None: a plugin's default, else :data:`DEFAULT_CPUS`.
    cpus: int | None = None
    ports: tuple[PortMapping, ...] = ()
    volumes: tuple[VolumeMapping, ...] = ()
    ssh_port: int = 0
    ssh_key: str = ""
    hypervisor: str = ""
    #: Values of hypervisor options (``accel``...), for the hypervisor that runs it.
    hypervisor_options: dict[str, Any] = attrs.field(factory=dict)
    metadata: bool = True
    metadata_file: str = ""
    #: Data disks (``--disk``): anonymous sizes or named disks, in order.
    disks: tuple[DiskRequest, ...] = ()
    #: Run a disk image in place (written, one container at a time) instead of on an overlay.
    in_place: bool = False
    #: Show progress of long steps on a terminal (off with ``lk run -q``).
    progress: bool = True


@attrs.frozen
class RunRequest:
    """A run as plugins see it in the ``prepare_run`` hook.

    ``image`` is what the user named ("" when a plugin option such as
    ``--template`` is to supply it); ``plugin_options`` holds each plugin's
    option values by plugin name.
    """

    image: str
    options: RunOptions = attrs.field(factory=RunOptions)
    plugin_options: dict[str, dict[str, Any]] = attrs.field(factory=dict)


@attrs.frozen
class HypervisorOptions:
    """Everything a hypervisor plugin needs to build a launch command.

    Paths are absolute. ``console_log`` receives the serial console;
    ``runtime_dir`` is private to this VM (pidfile, sockets, metadata CD).
    ``options`` carries the values of the options this hypervisor declared
    (:meth:`lk_core.hypervisor.Hypervisor.options`), typed: for QEMU ``accel``.
    """

    id: str
    image: Path
    format: str
    console_log: Path
    runtime_dir: Path
    memory: int = DEFAULT_MEMORY_MB
    cpus: int = DEFAULT_CPUS
    ssh_port: int = 0
    ports: tuple[PortMapping, ...] = ()
    volumes: tuple[VolumeMapping, ...] = ()
    metadata_iso: Path | None = None
    options: dict[str, Any] = attrs.field(factory=dict)
    #: Disks to attach as virtio disks, in this order, each with its serial: the boot
    #: overlay (role ``boot``, which replaces ``image``), then data disks.
    disks: tuple[Disk, ...] = ()
    #: Resume the saved state in this file instead of booting (a checkpoint's; needs
    #: ``Capability.CHECKPOINTS``). The VM runs as soon as the state is loaded.
    incoming: Path | None = None
    #: The ID the guest's hardware identity (MAC address) derives from: the source
    #: container's when resuming a checkpoint; empty means ``id``.
    identity: str = ""

    @classmethod
    def of(
        cls,
        container: Container,
        hypervisor: str,
        console_log: Path,
        runtime_dir: Path,
        **changes: Any,
    ) -> HypervisorOptions:
        """The options that boot ``container`` as recorded, for the hypervisor named ``hypervisor``.

        ``changes`` set the fields the record does not hold (``metadata_iso``,
        ``incoming``, ``identity``) or replace recorded ones (``disks``).
        """
        values: dict[str, Any] = {
            "id": container.id,
            "image": Path(container.image),
            "format": container.format,
            "console_log": console_log,
            "runtime_dir": runtime_dir,
            "memory": container.memory,
            "cpus": container.cpus,
            "ssh_port": container.ssh_port,
            "ports": tuple(container.ports),
            "volumes": tuple(container.volumes),
            "options": container.options_for(hypervisor),
            "disks": tuple(container.disks),
        }
        values.update(changes)
        return cls(**values)


@attrs.frozen
class Availability:
    """Whether a hypervisor can run here, and why (not)."""

    available: bool
    reason: str = ""
    details: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class Template:
    """A LinuxKit YAML template offered by a template source."""

    name: str
    description: str
    source: str
    path: str = ""
