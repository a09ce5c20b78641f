"""What lk knows about one VM from its hypervisor: handle, state, SSH endpoint, listings.

Data only (attrs classes), used by :mod:`lk_core.hypervisor`'s contract.
"""

from __future__ import annotations

from typing import Any

import attrs

from lk_core.model import Container, Status

__all__ = ["CheckpointInfo", "Handle", "Listing", "SshEndpoint", "Tunnel", "VmState"]


@attrs.frozen
class Handle:
    """How a hypervisor finds its VM again; recorded in the container (``handle``).

    ``data`` is JSON-ready and the hypervisor's own (a libvirt URI and domain
    UUID, a cloud instance ID...). ``host`` is where the VM lives, shown by
    ``lk ps`` (empty for this machine).
    """

    data: dict[str, Any] = attrs.field(factory=dict)
    host: str = ""


@attrs.frozen
class VmState:
    """What a hypervisor says about one VM right now."""

    status: Status
    #: Why it is in that state (shown by ``ps``/``inspect`` for ``error``/``broken``).
    reason: str = ""
    exit_code: int | None = None


@attrs.frozen
class Tunnel:
    """An SSH server that forwards lk's connection to the guest (``direct-tcpip``)."""

    host: str
    port: int = 22
    user: str = ""
    key_file: str = ""
    #: The tunnel host's own key, as a ``known_hosts`` line; empty = refuse unknown.
    known_host: str = ""


@attrs.frozen
class SshEndpoint:
    """Where the guest's SSH server answers, as seen from lk (through ``via`` if set)."""

    host: str
    port: int
    via: Tunnel | None = None


@attrs.frozen
class Listing:
    """The containers an engine owns, and the places it could not reach."""

    containers: list[Container] = attrs.field(factory=list)
    #: Location (host name) -> one-line reason it did not answer.
    unreachable: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class CheckpointInfo:
    """What a hypervisor saved for a checkpoint, in the folder lk gave it.

    ``state`` is the saved state file (RAM and devices), relative to the
    folder; ``disks`` are the container's frozen disk layers (read-only from
    now on), with ``path`` relative to the folder and the source's role,
    serial and size. ``compat`` is what must match for a resume (the
    hypervisor's version, machine type...), compared by the hypervisor;
    ``details`` is shown by ``lk checkpoint inspect``.
    """

    state: str
    disks: tuple[Any, ...] = ()
    compat: dict[str, str] = attrs.field(factory=dict)
    details: dict[str, Any] = attrs.field(factory=dict)
    #: Seconds the guest was paused while its state was saved.
    paused_seconds: float = 0.0
