"""Stopping a VM: a graceful request repeated each second, then force after the timeout.

One loop for every hypervisor, through the contract's ``request_stop``,
``state`` and ``kill``. For a process hypervisor lk also leaves a marker so
the supervisor records the exit as ``stopped``, and waits for the supervisor
to record it.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import TYPE_CHECKING

from lk_core.errors import LkError
from lk_core.hypervisor import Hypervisor, ProcessHypervisor
from lk_core.model import Container, Status
from lk_core.process import is_same_process
from lk_core.state import StoreOperations
from lk_core.timeutil import now_rfc3339
from lk_core.waiting import time_left, wait_until

if TYPE_CHECKING:
    from lk_core.manager import Manager

#: Seconds to wait for the supervisor to record a VM's exit.
SUPERVISOR_RECORD_TIMEOUT = 10.0


def _running(hv: Hypervisor, container: Container) -> bool:
    return hv.state(container).status in (Status.STARTING, Status.RUNNING, Status.BROKEN)


def stop_vm(manager: Manager, hv: Hypervisor, container: Container, timeout: float) -> Container:
    """Stop ``container`` through ``hv``: graceful for ``timeout`` seconds, then forced.

    Returns the final record.
    """
    if isinstance(hv, ProcessHypervisor):
        from lk_core.supervisor import request_stop_marker

        request_stop_marker(container.id)
        if container.status is Status.STARTING and not container.pid:
            container = _wait_for_pid(manager.ops, container)
    process = isinstance(hv, ProcessHypervisor)

    def alive() -> bool:
        if process:
            return is_same_process(container.pid, container.pid_started)
        return _running(hv, container)

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        with contextlib.suppress(LkError):  # e.g. the socket is not up yet: retry
            hv.request_stop(container)
        wait_until(lambda: not alive(), min(1.0, time_left(deadline)))
    if alive():
        reason = (
            f"forced after {timeout:g} s: the guest did not power off"
            if timeout > 0
            else "forced: powered off at once (-f), without ACPI shutdown"
        )
        if process:
            from lk_core.supervisor import mark_forced

            mark_forced(container.id, reason)
        hv.kill(container)
        if not process and not hv.owns_records:
            _note_forced(manager.ops, container, reason)
    if isinstance(hv, ProcessHypervisor):
        return await_final(manager.ops, container)
    return manager.get(container.id)


def _note_forced(ops: StoreOperations, container: Container, reason: str) -> None:
    """Record why an engine's VM (kept in lk's store) is stopped: it had to be forced."""

    def change(record: Container) -> None:
        record.status_reason = reason

    with contextlib.suppress(LkError):
        ops.update(container.id, change)


def stop_orphan(ops: StoreOperations, container: Container) -> Container:
    """Stop a container whose hypervisor plugin is not loaded: signal its verified process."""
    import signal

    from lk_core.process import signal_process
    from lk_core.supervisor import request_stop_marker

    request_stop_marker(container.id)

    def alive() -> bool:
        return is_same_process(container.pid, container.pid_started)

    delivered = signal_process(container.pid, container.pid_started, signal.SIGTERM)
    if delivered and not wait_until(lambda: not alive(), 3.0):
        signal_process(container.pid, container.pid_started, signal.SIGKILL)
        wait_until(lambda: not alive(), 3.0)
    return await_final(ops, container)


def _wait_for_pid(ops: StoreOperations, container: Container) -> Container:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        current = ops.get(container.id)
        if current is None or current.pid or current.status is not Status.STARTING:
            return current or container
        time.sleep(0.05)
    return container


def await_final(ops: StoreOperations, container: Container) -> Container:
    """Wait for the supervisor to record the exit; record it ourselves if it is gone."""

    def settled() -> bool:
        record = ops.get(container.id)
        return record is None or record.status not in (Status.STARTING, Status.RUNNING)

    supervisor_alive = is_same_process(container.supervisor_pid, container.supervisor_started)
    if supervisor_alive and container.supervisor_pid != os.getpid():
        wait_until(settled, SUPERVISOR_RECORD_TIMEOUT)
    if not settled():
        from lk_core.supervisor import forced_reason

        reason = forced_reason(container.id)

        def change(record: Container) -> None:
            if record.status in (Status.STARTING, Status.RUNNING):
                record.status = Status.STOPPED
                record.status_reason = reason
                record.finished_at = now_rfc3339()

        ops.update(container.id, change)
    return ops.get(container.id) or container
