"""Liveness of a VM that is a local process owned by lk's supervisor.

A record names two processes: the hypervisor and the supervisor that owns it,
each by PID and start token (see :mod:`lk_core.process`). Their states
together say what the VM is doing; a record whose processes disagree is
``broken``, never silently ``running``.
"""

from __future__ import annotations

import time

from lk_core.model import Container, Status
from lk_core.process import is_same_process
from lk_core.timeutil import parse_rfc3339
from lk_core.vm import VmState

#: A record still ``starting`` after this long without a supervisor is dead.
STARTING_GRACE = 30.0


def process_state(container: Container) -> VmState:
    """The state of ``container``'s VM judged from its recorded processes.

    Records that are not active keep their recorded status.
    """
    recorded = VmState(container.status, container.status_reason, container.exit_code)
    if container.status not in (Status.STARTING, Status.RUNNING):
        return recorded
    if container.status is Status.STARTING and not container.supervisor_pid:
        started = parse_rfc3339(container.started_at)
        if started is not None and time.time() - started.timestamp() < STARTING_GRACE:
            return recorded
        return VmState(Status.ERROR, "the VM never started (lk was interrupted)")
    hv_alive = is_same_process(container.pid, container.pid_started)
    sup_alive = is_same_process(container.supervisor_pid, container.supervisor_started)
    if hv_alive and sup_alive:
        return recorded
    if hv_alive:
        return VmState(
            Status.BROKEN,
            f"its supervisor (pid {container.supervisor_pid}) is gone but the "
            f"hypervisor (pid {container.pid}) still runs: "
            f"'lk stop {container.display_name}' stops it",
        )
    if sup_alive:
        return recorded  # the supervisor is recording the exit right now
    return VmState(
        Status.ERROR, "the hypervisor and its supervisor are gone (host restarted or killed?)"
    )


def hypervisor_alive(container: Container) -> bool:
    """True while the recorded hypervisor process is alive."""
    return is_same_process(container.pid, container.pid_started)
