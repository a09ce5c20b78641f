"""The interface a hypervisor plugin implements.

A hypervisor turns :class:`~lk_core.model.HypervisorOptions` into a command
line (data, so it can be tested without running anything) and knows how to ask
its VM to shut down gracefully. Everything else (the supervisor process, the
state, liveness, forced stops) is done by lk_core for every hypervisor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from lk_core.model import Availability, Container, HypervisorOptions


@runtime_checkable
class Hypervisor(Protocol):
    """A way of running VMs (QEMU, Hyperkit, ...)."""

    #: Lower-case name users pass to ``--hypervisor``.
    name: str
    #: One line shown by ``lk hypervisors``.
    description: str
    #: Image formats this hypervisor can boot (see :mod:`lk_core.formats`).
    formats: frozenset[str]
    #: When several are available and the user names none, the highest wins.
    priority: int

    def availability(self) -> Availability:
        """Say whether this hypervisor can run VMs here and, if not, why not.

        ``details`` may add facts shown by ``lk hypervisors`` (for QEMU, the
        accelerator that would be used and why).
        """
        ...

    def build_command(self, options: HypervisorOptions) -> list[str]:
        """Return the argv that boots a VM with ``options``.

        The process must keep running in the foreground until the VM is off,
        send the serial console to ``options.console_log``, and keep private
        files inside ``options.runtime_dir``. Raise
        :class:`lk_core.errors.HypervisorError` (or another ``LkError``) for
        options this hypervisor cannot honour.
        """
        ...

    def request_shutdown(self, container: Container, runtime_dir: Path) -> None:
        """Ask the VM to power off gracefully (ACPI), without waiting.

        lk calls this about once a second until the hypervisor exits or the
        stop timeout passes, then kills the (verified) hypervisor process.
        Raise :class:`lk_core.errors.HypervisorError` if the request cannot be
        delivered.
        """
        ...
