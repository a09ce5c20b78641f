"""What lk knows about one VM from its hypervisor: handle, state, SSH endpoint, listings.

Data only (attrs classes), used by :mod:`lk_core.hypervisor`'s contract.
"""

from __future__ import annotations

from typing import Any

import attrs

from lk_core.model import Container, Status

__all__ = ["Handle", "Listing", "SshEndpoint", "Tunnel", "VmState"]


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
