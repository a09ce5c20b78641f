"""The container life cycle: run, list, stop, logs, remove, inspect.

Hypervisor-agnostic: it talks to hypervisors only through the
:class:`~lk_core.hypervisor.Hypervisor` contract and to plugins through the
hooks. Every check that can fail on user input happens before anything is
created (:mod:`lk_core.run_plan`), and a start that fails removes what it
created, so bad input changes nothing.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

import attrs

from lk_core.disks import Disk
from lk_core.errors import ContainerStateError, LkError
from lk_core.hypervisor import Capability, Hypervisor, ProcessHypervisor
from lk_core.model import Container, HypervisorOptions, RunOptions, RunRequest, Status
from lk_core.paths import ensure_logs_dir, ensure_private_dir, generate_id, log_path, runtime_dir
from lk_core.plugins import Plugins, get_plugins
from lk_core.refs import resolve_ref
from lk_core.timeutil import now_rfc3339

if TYPE_CHECKING:
    from lk_core.ssh import ExecResult

DEFAULT_STOP_TIMEOUT = 10.0


class Manager:
    """Runs and tracks containers. All public methods are the Python API of the CLI."""

    def __init__(self, plugins: Plugins | None = None) -> None:
        self.plugins = plugins or get_plugins()
        self.ops = self.plugins.store()
        self.store = self.ops.store
        #: Hosts that did not answer during the last :meth:`list`: location -> reason.
        self.unreachable: dict[str, str] = {}

    # -- looking up ------------------------------------------------------------
    def hypervisor_of(self, container: Container) -> Hypervisor | None:
        """The hypervisor that runs ``container``, or None if its plugin is not loaded."""
        return self.plugins.hypervisors().get(container.hypervisor.lower())

    def records(self) -> builtins.list[Container]:
        """Every container record: lk's store, then those kept by engines that own theirs."""
        return self._with_engine_records(self.ops.all())

    def _with_engine_records(self, stored: builtins.list[Container]) -> builtins.list[Container]:
        """``stored`` followed by the records of engines that own theirs (not already there)."""
        records = list(stored)
        self.unreachable = {}
        seen = {c.id for c in records}
        for hv in self.plugins.hypervisors().values():
            if not hv.owns_records:
                continue
            listing = hv.list_containers()
            self.unreachable.update(listing.unreachable)
            for container in listing.containers:
                if container.id not in seen:
                    seen.add(container.id)
                    records.append(container)
        return records

    def get(self, ref: str) -> Container:
        """The container ``ref`` names (ID, name or unique ID prefix), with live status.

        The exact ID of a container that runs on this machine (in lk's store,
        under a hypervisor that does not own its records) is taken as is:
        engines and other hosts are not asked.
        """
        stored = self.ops.all()
        for local in stored:
            if local.id == ref.strip():
                hv = self.hypervisor_of(local)
                if hv is None or not hv.owns_records:
                    return self._check_liveness(local)
        return self._check_liveness(resolve_ref(ref, self._with_engine_records(stored)))

    def list(self, all: bool = False) -> builtins.list[Container]:
        """Containers with their live status; only active ones unless ``all``."""
        containers = [self._check_liveness(c) for c in self.records()]
        return containers if all else [c for c in containers if c.is_active]

    def _check_liveness(self, container: Container) -> Container:
        """Ask the container's hypervisor for its state; record what changed."""
        if container.status not in (Status.STARTING, Status.RUNNING):
            return container
        hv = self.hypervisor_of(container)
        if hv is None:  # its plugin is gone: judge by the recorded processes
            from lk_core.liveness import process_state

            state = process_state(container)
        else:
            state = hv.state(container)
        if state.status is container.status:
            return container
        if state.status in (Status.BROKEN, Status.STARTING, Status.RUNNING) or (
            hv is not None and hv.owns_records
        ):
            return attrs.evolve(
                container,
                status=state.status,
                status_reason=state.reason,
                exit_code=state.exit_code,
            )
        return self._reconcile(container, state.status, state.reason, state.exit_code)

    def _reconcile(
        self, container: Container, status: Status, reason: str, exit_code: int | None
    ) -> Container:
        """Record that an active container's VM ended without its supervisor saying so."""

        def change(record: Container) -> None:
            if record.status in (Status.STARTING, Status.RUNNING):
                record.status = status
                record.status_reason = reason
                record.exit_code = exit_code
                record.finished_at = record.finished_at or now_rfc3339()

        try:
            final = self.ops.update(container.id, change)
        except LkError:
            return attrs.evolve(container, status=status, status_reason=reason)
        self.plugins.notify("stopped", final)
        return final

    # -- run -------------------------------------------------------------------
    def prepare(self, image: str, options: RunOptions) -> tuple[Container, Hypervisor]:
        """Validate a run and create its record (status ``starting``); see :meth:`create`."""
        return self.create(RunRequest(image, options))

    def create(self, request: RunRequest) -> tuple[Container, Hypervisor]:
        """Pass ``request`` through the plugins, check it, and create the container's record.

        Raises before creating anything if anything is wrong. An engine that
        owns its records is given the record when the VM starts; lk's store
        gets it otherwise.
        """
        from lk_core.run_plan import plan_run

        request = self.plugins.prepare_run(request)
        records = self.list(all=True)
        plan = plan_run(self.plugins, request, records)
        container, hv = plan.container, plan.hypervisor
        taken = {*(c.id for c in records), *(c.name for c in records if c.name)}
        if hv.owns_records:
            container.id = generate_id(taken)
        else:
            with self.store.transaction() as recs:
                container.id = generate_id({*taken, *recs, *(c.name for c in recs.values())})
                if container.name and any(container.name in (c.name, c.id) for c in recs.values()):
                    raise ContainerStateError(f"the name {container.name!r} is already in use")
                recs[container.id] = container
        self.plugins.notify("created", container)
        return container, hv

    def _spec(self, container: Container, hv: Hypervisor, options: RunOptions) -> HypervisorOptions:
        """Create the runtime dir, log and metadata CD; return what the hypervisor gets."""
        rdir = ensure_private_dir(runtime_dir(container.id))
        ensure_logs_dir()
        log = log_path(container.id)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.close(fd)
        metadata_iso = None
        if options.metadata and Capability.METADATA in hv.capabilities:
            from lk_core.metadata import write_metadata_cd

            metadata_iso = write_metadata_cd(container, options, rdir)
        disks = self._create_disks(container, hv, rdir)
        return HypervisorOptions.of(
            container, hv.name, log, rdir, metadata_iso=metadata_iso, disks=disks
        )

    def _create_disks(self, container: Container, hv: Hypervisor, rdir: Path) -> tuple[Disk, ...]:
        """Create the container's planned disks (overlay, data disks) and record them."""
        if not container.disks:
            return ()
        from lk_core.disks import create_container_disks

        disks = create_container_disks(hv, container, rdir)
        container.disks = list(disks)

        def change(record: Container) -> None:
            record.disks = list(disks)

        if not hv.owns_records:
            self.ops.update(container.id, change)
        return disks

    def cleanup(self, container_id: str) -> None:
        """Remove a container's record, log and runtime folder (no process checks)."""
        self.ops.remove(container_id)
        log_path(container_id).unlink(missing_ok=True)
        shutil.rmtree(runtime_dir(container_id), ignore_errors=True)

    def run(self, image: str, options: RunOptions | None = None) -> Container:
        """Start a detached VM from ``image`` and return its record once it runs."""
        return self.run_request(RunRequest(image, options or RunOptions()))

    def run_request(self, request: RunRequest) -> Container:
        """Start a detached VM for ``request`` (image, options, plugin option values)."""
        container, hv = self.create(request)
        try:
            spec = self._spec(container, hv, request.options)
            if isinstance(hv, ProcessHypervisor):
                hv.record_command(self.ops, container, spec)
            handle = hv.start(self.plugins, container, spec)
            self._record_handle(container, hv, handle.data, handle.host)
        except BaseException:
            self._discard(container, hv)
            raise
        started = self.get(container.id)
        self.plugins.notify("started", started)
        return started

    def _record_handle(
        self, container: Container, hv: Hypervisor, data: Mapping[str, object], host: str
    ) -> None:
        if hv.owns_records or not (data or host):
            return

        def change(record: Container) -> None:
            record.handle = dict(data)
            record.host = host

        self.ops.update(container.id, change)

    def _discard(self, container: Container, hv: Hypervisor) -> None:
        """Undo a start that failed: the engine's VM, the record, the log, the runtime dir."""
        if hv.owns_records:
            with contextlib.suppress(LkError):
                hv.remove(container)
        self.cleanup(container.id)

    def run_foreground(
        self,
        image: str,
        options: RunOptions,
        on_ready: Callable[[Container], None] | None = None,
        request: RunRequest | None = None,
    ) -> Container:
        """Run a VM attached to this process; return its final record when it exits.

        ``on_ready`` is called with the running record (e.g. to start
        streaming the console). Ctrl-C is the caller's to turn into :meth:`stop`.
        For a process hypervisor this process is the VM's supervisor.
        """
        from lk_core.errors import HypervisorError

        container, hv = self.create(request or RunRequest(image, options))
        try:
            spec = self._spec(container, hv, options if request is None else request.options)
            if isinstance(hv, ProcessHypervisor):
                hv.record_command(self.ops, container, spec)
            else:
                handle = hv.start(self.plugins, container, spec)
                self._record_handle(container, hv, handle.data, handle.host)
        except BaseException:
            self._discard(container, hv)
            raise
        if not isinstance(hv, ProcessHypervisor):
            return self._follow_engine_vm(container, on_ready)
        from lk_core.supervisor import LaunchReport, supervise

        outcome: list[LaunchReport] = []

        def ready(report: LaunchReport) -> None:
            outcome.append(report)
            if report.ok:
                running = self.get(container.id)
                self.plugins.notify("started", running)
                if on_ready is not None:
                    on_ready(running)

        final = supervise(self.ops, container.id, ready)
        if outcome and not outcome[0].ok and final is None:
            raise HypervisorError(outcome[0].reason)
        if final is not None:
            self.plugins.notify("stopped", final)
        return final or container

    def _follow_engine_vm(
        self, container: Container, on_ready: Callable[[Container], None] | None
    ) -> Container:
        """Wait for an engine's VM to stop, calling ``on_ready`` once it runs."""
        import time

        running = self.get(container.id)
        self.plugins.notify("started", running)
        if on_ready is not None:
            on_ready(running)
        while True:
            current = self.get(container.id)
            if not current.is_active:
                return current
            time.sleep(0.5)

    # -- start again -------------------------------------------------------------
    def start(self, ref: str) -> Container:
        """Boot a stopped container again, cold, with its recorded options (``lk start``)."""
        from lk_core.restarting import start_container

        return start_container(self, ref)

    # -- stop ------------------------------------------------------------------
    def stop(
        self, ref: str, timeout: float = DEFAULT_STOP_TIMEOUT, force: bool = False
    ) -> Container:
        """Stop a container: ACPI power-off (repeated each second), then force after ``timeout``.

        Only processes whose identity matches the record are ever signalled.
        """
        container = self.get(ref)
        if not container.is_active:
            return container
        hv = self.hypervisor_of(container)
        if hv is None:
            from lk_core.stopping import stop_orphan

            final = stop_orphan(self.ops, container)
        else:
            from lk_core.stopping import stop_vm

            final = stop_vm(self, hv, container, 0.0 if force else max(timeout, 0.0))
        self.plugins.notify("stopped", final)
        if final.auto_remove:
            self._auto_remove(final, hv)
        return final

    def _auto_remove(self, container: Container, hv: Hypervisor | None) -> None:
        """``--rm``: remove a container that exited, unless its own supervisor does it."""
        from lk_core.process import is_same_process

        supervisor = container.supervisor_pid
        if supervisor == os.getpid() or (
            supervisor and is_same_process(supervisor, container.supervisor_started)
        ):
            return  # a foreground lk run, or the detached supervisor, removes it
        if hv is not None:
            with contextlib.suppress(LkError):
                hv.remove(container)
        self.cleanup(container.id)
        self.plugins.notify("removed", container)

    # -- remove, logs ----------------------------------------------------------
    def remove(self, refs: Iterable[str], force: bool = False) -> builtins.list[Container]:
        """Remove containers (record, log, runtime dir); ``force`` stops running ones first."""
        targets = [self.get(ref) for ref in refs]
        for container in targets:
            if container.is_active and not force:
                raise ContainerStateError(
                    f"container {container.display_name} is {container.status}: "
                    f"stop it first or use 'lk rm -f {container.display_name}'"
                )
        for container in targets:
            if container.is_active:
                self.stop(container.id, force=True)
            hv = self.hypervisor_of(container)
            if hv is not None:
                hv.remove(container)
            self.cleanup(container.id)
            self.plugins.notify("removed", container)
        return targets

    def commit(self, ref: str, target: str, force: bool = False) -> Path:
        """Write a stopped container's disk (overlay and image) as a new qcow2 image ``target``."""
        from lk_core.disks import boot_disk, commit_target

        container = self.get(ref)
        disk = boot_disk(container)
        if disk is None:
            from lk_core.formats import ISO, KERNEL_INITRD

            if container.format in (ISO, KERNEL_INITRD):
                why = f"it boots a read-only {container.format} image, which it never changes"
            else:
                why = f"it runs {container.image} in place: that file holds its changes"
            raise ContainerStateError(
                f"container {container.display_name} has no disk of its own to commit: {why}"
            )
        if container.is_active:
            raise ContainerStateError(
                f"container {container.display_name} is {container.status}: stop it before "
                f"committing its disk ('lk stop {container.display_name}')"
            )
        path = commit_target(target, force)
        hv = self.hypervisor_of(container)
        if hv is None:
            raise ContainerStateError(
                f"container {container.display_name} ran on hypervisor {container.hypervisor}, "
                "whose plugin is not installed: it cannot commit its disk"
            )
        hv.commit_disk(Path(disk.path), disk.format, path)
        return path

    def logs(
        self, ref: str, follow: bool = False, tail: int | None = None, poll: float = 0.1
    ) -> Iterator[bytes]:
        """Yield the console log of a container; with ``follow`` until the VM exits."""
        from lk_core.logs import follow_file, read_tail

        container = self.get(ref)
        hv = self.hypervisor_of(container)
        stream = hv.console_log(container, follow) if hv is not None else None
        if stream is not None:
            yield from stream
            return
        path = log_path(container.id)
        if not follow:
            yield from read_tail(path, tail)
            return

        def still_running() -> bool:
            try:
                return self.get(container.id).is_active
            except LkError:
                return False

        yield from follow_file(path, tail, still_running, poll)

    def wait(
        self,
        ref: str,
        timeout: float = 120.0,
        progress: Callable[[float], None] | None = None,
    ) -> float:
        """Block until the container's SSH answers; return the seconds waited."""
        from lk_core.ssh import wait_for_ssh

        container = self.get(ref)
        return wait_for_ssh(
            container, lambda: self.get(container.id), timeout, progress, plugins=self.plugins
        )

    def exec(
        self,
        ref: str,
        argv: Sequence[str],
        *,
        tty: bool = False,
        stdin: IO[bytes] | None = None,
        env: Mapping[str, str] | None = None,
        workdir: str = "",
        stream: bool = False,
    ) -> ExecResult:
        """Run ``argv`` in the container over SSH; see :func:`lk_core.ssh.exec_command`."""
        from lk_core.ssh import exec_command

        return exec_command(
            self.get(ref),
            argv,
            tty=tty,
            stdin=stdin,
            env=env,
            workdir=workdir,
            stream=stream,
            plugins=self.plugins,
        )

    def inspect(self, ref: str) -> dict[str, object]:
        """Everything known about a container, as JSON-ready data."""
        from lk_core.serialize import container_to_dict

        container = self.get(ref)
        data = container_to_dict(container)
        data["log_path"] = str(log_path(container.id))
        data["runtime_dir"] = str(runtime_dir(container.id))
        return data
