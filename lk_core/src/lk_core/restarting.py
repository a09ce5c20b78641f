"""``lk start``: boot a stopped container again, cold, with its recorded options.

The record keeps everything the first ``lk run`` decided (image, memory,
CPUs, ports, volumes, disks, each plugin's option values); the runtime folder
keeps the metadata CD. A new SSH port is chosen only if the recorded one is
taken now; published ports must be free. The console log is kept and
appended to.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from lk_core.errors import ContainerStateError, HypervisorError
from lk_core.hypervisor import Capability, Hypervisor, ProcessHypervisor, require
from lk_core.model import Container, HypervisorOptions, Status
from lk_core.paths import ensure_logs_dir, ensure_private_dir, log_path, runtime_dir
from lk_core.timeutil import now_rfc3339

if TYPE_CHECKING:
    from lk_core.manager import Manager

__all__ = ["restart_ports_note", "restart_spec", "start_container"]

#: Files in the runtime folder that describe the last run only.
_LAST_RUN_MARKERS = ("stop-requested", "stop-forced")


def restart_spec(container: Container, hv: Hypervisor) -> HypervisorOptions:
    """What ``hv`` gets to boot ``container`` again: its recorded settings, the same files."""
    from lk_core.metadata import CD_NAME

    rdir = ensure_private_dir(runtime_dir(container.id))
    ensure_logs_dir()
    log = log_path(container.id)
    log.touch(mode=0o600, exist_ok=True)
    metadata = rdir / CD_NAME
    use_cd = metadata.is_file() and Capability.METADATA in hv.capabilities
    # The disks created by the first run are reused as they are (they are in the record).
    return HypervisorOptions.of(
        container, hv.name, log, rdir, metadata_iso=metadata if use_cd else None
    )


def _choose_ports(container: Container, others: list[Container]) -> int:
    """Check the published ports are free; keep the SSH port unless it is taken now."""
    from lk_core.ports import check_ports_free, free_port, port_is_free

    local = [c for c in others if c.is_active and not c.host]
    taken = {c.ssh_port for c in local} | {p.host_port for c in local for p in c.ports}
    for mapping in container.ports:
        if mapping.host_port in taken:
            owner = next(
                c.display_name
                for c in local
                if mapping.host_port in {c.ssh_port, *(p.host_port for p in c.ports)}
            )
            raise ContainerStateError(
                f"cannot start {container.display_name}: host port {mapping.host_port} "
                f"is used by container {owner} now"
            )
    check_ports_free(container.ports)
    port = container.ssh_port
    if port and port not in taken and port_is_free("127.0.0.1", port):
        return port
    return free_port(avoid=taken | {p.host_port for p in container.ports})


def _check_image_free(container: Container, others: list[Container]) -> None:
    """Refuse to boot a disk image in place that another active container has open."""
    from lk_core.formats import ISO, KERNEL_INITRD

    if container.format in (ISO, KERNEL_INITRD) or getattr(container, "disks", None):
        return  # read-only media, or the container boots its own overlay
    for other in others:
        if other.is_active and other.image == container.image and not other.host:
            if getattr(other, "disks", None):
                continue
            raise ContainerStateError(
                f"cannot start {container.display_name}: its disk image {container.image} "
                f"is in use by container {other.display_name}"
            )


def start_container(manager: Manager, ref: str) -> Container:
    """Boot the stopped container ``ref`` again; return its record once it runs."""
    container = manager.get(ref)
    if container.is_active:
        raise ContainerStateError(
            f"container {container.display_name} is already {container.status}"
        )
    hv = manager.hypervisor_of(container)
    if hv is None:
        raise HypervisorError(
            f"the plugin of hypervisor {container.hypervisor!r} is not loaded: "
            f"cannot start {container.display_name}"
        )
    require(hv, Capability.RESTART)
    if hv.owns_records:
        handle = hv.restart(manager.plugins, container, restart_spec(container, hv))
        del handle  # the engine keeps its records (and the handle) itself
        started = manager.get(container.id)
        manager.plugins.notify("started", started)
        return started
    others = [c for c in manager.list(all=True) if c.id != container.id]
    _check_image_free(container, others)
    ssh_port = _choose_ports(container, others)

    def claim(record: Container) -> None:
        if record.is_active:
            raise ContainerStateError(f"container {record.display_name} is already {record.status}")
        record.status = Status.STARTING
        record.status_reason = ""
        record.exit_code = None
        record.started_at = now_rfc3339()
        record.finished_at = ""
        record.pid = record.supervisor_pid = 0
        record.pid_started = record.supervisor_started = ""
        record.ssh_port = ssh_port

    claimed = manager.ops.update(container.id, claim)
    rdir = runtime_dir(container.id)
    for name in _LAST_RUN_MARKERS:
        with contextlib.suppress(OSError):
            (rdir / name).unlink()
    try:
        spec = restart_spec(claimed, hv)
        if isinstance(hv, ProcessHypervisor):
            hv.record_command(manager.ops, claimed, spec)
        handle = hv.restart(manager.plugins, claimed, spec)
        if handle.data or handle.host:

            def record_handle(record: Container) -> None:
                record.handle = dict(handle.data)
                record.host = handle.host

            manager.ops.update(container.id, record_handle)
    except BaseException as error:
        reason = getattr(error, "message", "") or str(error) or type(error).__name__

        def failed(record: Container) -> None:
            if record.status is Status.STARTING:
                record.status = Status.ERROR
                record.status_reason = f"start failed: {reason}"
                record.finished_at = now_rfc3339()

        with contextlib.suppress(Exception):
            manager.ops.update(container.id, failed)
        raise
    started = manager.get(container.id)
    manager.plugins.notify("started", started)
    return started


def restart_ports_note(before: Container, after: Container) -> str:
    """A line saying the SSH port changed, or ``""``."""
    if before.ssh_port and after.ssh_port != before.ssh_port:
        return (
            f"{after.display_name}: SSH port {before.ssh_port} is taken now; "
            f"SSH is on 127.0.0.1:{after.ssh_port}"
        )
    return ""
