"""The container life cycle: run, list, stop, logs, remove, inspect.

Hypervisor-agnostic: it talks to hypervisors and the state store only through
the plugin hooks. Every check that can fail on user input happens before
anything is created, and a start that fails removes what it created, so bad
input changes nothing.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

import attrs

from lk_core.errors import (
    ContainerStateError,
    HypervisorError,
    ImageFormatError,
    LkError,
    UsageError,
)
from lk_core.hypervisor import Hypervisor
from lk_core.model import Container, HypervisorOptions, RunOptions, Status
from lk_core.paths import (
    default_state_path,
    ensure_logs_dir,
    ensure_private_dir,
    generate_id,
    log_path,
    runtime_dir,
)
from lk_core.plugins import Plugins, get_plugins
from lk_core.process import is_same_process, signal_process
from lk_core.refs import resolve_ref
from lk_core.state import StoreOperations
from lk_core.supervisor import request_stop_marker
from lk_core.timeutil import now_rfc3339, parse_rfc3339

if TYPE_CHECKING:
    from lk_core.ssh import ExecResult

DEFAULT_STOP_TIMEOUT = 10.0
#: How long ``lk run -d`` waits for the supervisor to report the launch.
LAUNCH_TIMEOUT = 60.0
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
#: A record still ``starting`` after this long without a supervisor is dead.
_STARTING_GRACE = 30.0


class Manager:
    """Runs and tracks containers. All public methods are the Python API of the CLI."""

    def __init__(self, plugins: Plugins | None = None) -> None:
        self.plugins = plugins or get_plugins()
        self.store = self.plugins.state_store(default_state_path())
        self.ops = StoreOperations(self.store)

    # -- looking up ------------------------------------------------------------
    def get(self, ref: str) -> Container:
        """The container ``ref`` names (ID, name or unique prefix), with live status."""
        return self._check_liveness(resolve_ref(ref, self.store.load().values()))

    def list(self, all: bool = False) -> list[Container]:
        """Containers with their live status; only active ones unless ``all``."""
        containers = [self._check_liveness(c) for c in self.ops.all()]
        return containers if all else [c for c in containers if c.is_active]

    def _check_liveness(self, container: Container) -> Container:
        """Compare the record with the processes it names; reconcile or mark broken."""
        if container.status not in (Status.STARTING, Status.RUNNING):
            return container
        hv_alive = is_same_process(container.pid, container.pid_started)
        sup_alive = is_same_process(container.supervisor_pid, container.supervisor_started)
        if container.status is Status.STARTING and not container.supervisor_pid:
            started = parse_rfc3339(container.started_at)
            young = started is not None and time.time() - started.timestamp() < _STARTING_GRACE
            if young:
                return container
            return self._reconcile(container, "the VM never started (lk was interrupted)")
        if hv_alive and sup_alive:
            return container
        if hv_alive:
            return attrs.evolve(
                container,
                status=Status.BROKEN,
                status_reason=(
                    f"its supervisor (pid {container.supervisor_pid}) is gone but the "
                    f"hypervisor (pid {container.pid}) still runs: "
                    f"'lk stop {container.display_name}' stops it"
                ),
            )
        if sup_alive:
            return container  # the supervisor is recording the exit right now
        return self._reconcile(
            container, "the hypervisor and its supervisor are gone (host restarted or killed?)"
        )

    def _reconcile(self, container: Container, reason: str) -> Container:
        def change(record: Container) -> None:
            if record.status in (Status.STARTING, Status.RUNNING):
                record.status = Status.ERROR
                record.status_reason = reason
                record.finished_at = record.finished_at or now_rfc3339()

        try:
            return self.ops.update(container.id, change)
        except LkError:
            return attrs.evolve(container, status=Status.ERROR, status_reason=reason)

    # -- run -------------------------------------------------------------------
    def prepare(self, image: str, options: RunOptions) -> tuple[Container, Hypervisor]:
        """Validate everything about a run and create its record (status ``starting``).

        Raises before creating anything if the image, hypervisor, ports,
        volumes or name are wrong.
        """
        from lk_core.formats import resolve_image
        from lk_core.images import detect_image_format
        from lk_core.ports import check_ports_free, free_port
        from lk_core.volumes import assign_tags

        image_path = resolve_image(image)
        fmt = detect_image_format(image_path, self.plugins)
        hv = (
            self.plugins.get_hypervisor(options.hypervisor)
            if options.hypervisor
            else self.plugins.detect_hypervisor(fmt)
        )
        availability = hv.availability()
        if not availability.available:
            raise HypervisorError(f"hypervisor {hv.name} is not available: {availability.reason}")
        if fmt not in hv.formats:
            explain = getattr(hv, "explain_format", None)
            reason = explain(fmt) if callable(explain) else None
            supported = ", ".join(sorted(hv.formats))
            default = f"hypervisor {hv.name} cannot boot {fmt} images (it supports: {supported})"
            raise ImageFormatError(reason or default)
        if options.name and not _NAME.match(options.name):
            raise UsageError(
                f"invalid name {options.name!r}: use letters, digits, '.', '_' or '-' "
                "(at most 63, starting with a letter or digit)"
            )
        if options.cpus < 1:
            raise UsageError("--cpus must be at least 1")
        check_ports_free(options.ports)
        volumes = assign_tags(options.volumes)
        records = self.list(all=True)
        if options.name and any(options.name in (c.name, c.id) for c in records):
            raise UsageError(
                f"the name {options.name!r} is already in use: choose another, "
                f"or remove the old container with 'lk rm {options.name}'"
            )
        if options.ssh_port:
            from lk_core.model import PortMapping

            if any(p.host_port == options.ssh_port and p.protocol == "tcp" for p in options.ports):
                raise UsageError(f"host port {options.ssh_port} is both --ssh-port and published")
            check_ports_free([PortMapping(options.ssh_port, 22)], flag="--ssh-port")
            ssh_port = options.ssh_port
        else:
            taken = {c.ssh_port for c in records if c.is_active}
            taken |= {p.host_port for c in records if c.is_active for p in c.ports}
            taken |= {p.host_port for p in options.ports}
            ssh_port = free_port(avoid=taken)
        _check_image_not_in_use(image_path, fmt, records)
        ssh_key = _choose_ssh_key(options)
        container = Container(
            id="",
            image=str(image_path),
            name=options.name,
            format=fmt,
            hypervisor=hv.name,
            status=Status.STARTING,
            started_at=now_rfc3339(),
            ports=list(options.ports),
            volumes=list(volumes),
            memory=options.memory,
            cpus=options.cpus,
            ssh_port=ssh_port,
            ssh_key=ssh_key,
            hypervisor_options=dict(options.hypervisor_options),
        )
        with self.store.transaction() as recs:
            container.id = generate_id({*recs, *(c.name for c in recs.values())})
            if options.name and any(options.name in (c.name, c.id) for c in recs.values()):
                raise UsageError(f"the name {options.name!r} is already in use")
            recs[container.id] = container
        return container, hv

    def _build(self, container: Container, hv: Hypervisor, options: RunOptions) -> Container:
        """Create the runtime dir, log and metadata CD, and record the launch command."""
        rdir = ensure_private_dir(runtime_dir(container.id))
        ensure_logs_dir()
        log = log_path(container.id)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.close(fd)
        metadata_iso = self._write_metadata(container, options, rdir)
        hv_options = HypervisorOptions(
            id=container.id,
            image=Path(container.image),
            format=container.format,
            console_log=log,
            runtime_dir=rdir,
            memory=container.memory,
            cpus=container.cpus,
            ssh_port=container.ssh_port,
            ports=tuple(container.ports),
            volumes=tuple(container.volumes),
            metadata_iso=metadata_iso,
            options=dict(container.hypervisor_options),
        )
        argv = hv.build_command(hv_options)

        def record_command(record: Container) -> None:
            record.command = list(argv)

        return self.ops.update(container.id, record_command)

    def _write_metadata(self, container: Container, options: RunOptions, rdir: Path) -> Path | None:
        """Write the LinuxKit metadata CD for this VM, or None when turned off."""
        if not options.metadata:
            return None
        from lk_core.metadata import write_metadata_cd

        return write_metadata_cd(container, options, rdir)

    def cleanup(self, container_id: str) -> None:
        """Remove a container's record, log and runtime folder (no process checks)."""
        self.ops.remove(container_id)
        log_path(container_id).unlink(missing_ok=True)
        shutil.rmtree(runtime_dir(container_id), ignore_errors=True)

    def run(self, image: str, options: RunOptions | None = None) -> Container:
        """Start a detached VM from ``image`` and return its record once it runs.

        For a foreground run use :meth:`run_foreground`.
        """
        options = options or RunOptions()
        container, hv = self.prepare(image, options)
        try:
            container = self._build(container, hv, options)
            self._spawn_supervisor(container.id)
        except BaseException:
            self.cleanup(container.id)
            raise
        return self.get(container.id)

    def _spawn_supervisor(self, container_id: str) -> None:
        read_fd, write_fd = os.pipe()
        supervisor_log = runtime_dir(container_id) / "supervisor.log"
        try:
            with supervisor_log.open("ab") as out:
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "lk_core.supervisor",
                        "--id",
                        container_id,
                        "--ready-fd",
                        str(write_fd),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                    pass_fds=(write_fd,),
                    start_new_session=True,
                    close_fds=True,
                )
        finally:
            os.close(write_fd)
        message = _read_message(read_fd, LAUNCH_TIMEOUT)
        if message == "ok":
            return
        if not message:
            if proc.poll() is None:
                proc.kill()
            tail = _tail_text(supervisor_log)
            message = "error: the supervisor exited without reporting"
            message += f": {tail}" if tail else ""
        raise HypervisorError(message.removeprefix("error: "))

    def run_foreground(
        self,
        image: str,
        options: RunOptions,
        on_ready: Callable[[Container], None] | None = None,
    ) -> Container:
        """Run a VM attached to this process; return its final record when it exits.

        ``on_ready`` is called with the running record (e.g. to start
        streaming the console). Ctrl-C is the caller's to turn into :meth:`stop`.
        """
        from lk_core.supervisor import supervise

        container, hv = self.prepare(image, options)
        try:
            container = self._build(container, hv, options)
        except BaseException:
            self.cleanup(container.id)
            raise
        outcome: list[str] = []

        def ready(message: str) -> None:
            outcome.append(message)
            if message == "ok" and on_ready is not None:
                on_ready(self.get(container.id))

        final = supervise(self.ops, container.id, ready)
        if outcome and outcome[0].startswith("error: ") and final is None:
            raise HypervisorError(outcome[0].removeprefix("error: "))
        return final or container

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
        request_stop_marker(container.id)
        if container.status is Status.STARTING and not container.pid:
            container = self._wait_for_pid(container)
        deadline = time.monotonic() + (0 if force else max(timeout, 0))
        hv = self.plugins.hypervisors().get(container.hypervisor.lower())
        rdir = runtime_dir(container.id)
        while hv is not None and time.monotonic() < deadline and self._vm_alive(container):
            with contextlib.suppress(LkError):  # e.g. the socket is not up yet: retry
                hv.request_shutdown(container, rdir)
            _wait_until(lambda: not self._vm_alive(container), min(1.0, _left(deadline)))
        if self._vm_alive(container):
            signal_process(container.pid, container.pid_started, signal.SIGTERM)
            if not _wait_until(lambda: not self._vm_alive(container), 3.0):
                signal_process(container.pid, container.pid_started, signal.SIGKILL)
                _wait_until(lambda: not self._vm_alive(container), 3.0)
        return self._await_final(container)

    def _vm_alive(self, container: Container) -> bool:
        return is_same_process(container.pid, container.pid_started)

    def _wait_for_pid(self, container: Container) -> Container:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            current = self.ops.get(container.id)
            if current is None or current.pid or current.status is not Status.STARTING:
                return current or container
            time.sleep(0.05)
        return container

    def _await_final(self, container: Container) -> Container:
        """Wait for the supervisor to record the exit; record it ourselves if it is gone."""

        def settled() -> bool:
            record = self.ops.get(container.id)
            return record is None or record.status not in (Status.STARTING, Status.RUNNING)

        supervisor_alive = is_same_process(container.supervisor_pid, container.supervisor_started)
        if supervisor_alive and container.supervisor_pid != os.getpid():
            _wait_until(settled, 10.0)
        if not settled():

            def change(record: Container) -> None:
                if record.status in (Status.STARTING, Status.RUNNING):
                    record.status = Status.STOPPED
                    record.status_reason = ""
                    record.finished_at = now_rfc3339()

            self.ops.update(container.id, change)
        return self.ops.get(container.id) or container

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
            self.cleanup(container.id)
        self._prune_template_builds()
        return targets

    def _prune_template_builds(self) -> None:
        """Delete cached template builds that no container uses any more."""
        from lk_core.linuxkit import default_build_cache_dir, prune_unused_builds

        if default_build_cache_dir().is_dir():
            prune_unused_builds({c.image for c in self.ops.all()}, min_age=60.0)

    def logs(
        self, ref: str, follow: bool = False, tail: int | None = None, poll: float = 0.1
    ) -> Iterator[bytes]:
        """Yield the console log of a container; with ``follow`` until the VM exits."""
        from lk_core.logs import follow_file, read_tail

        container = self.get(ref)
        path = log_path(container.id)
        if not follow:
            yield from read_tail(path, tail)
            return

        def still_running() -> bool:
            record = self.ops.get(container.id)
            return record is not None and self._check_liveness(record).is_active

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
        return wait_for_ssh(container, lambda: self.get(container.id), timeout, progress)

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
            self.get(ref), argv, tty=tty, stdin=stdin, env=env, workdir=workdir, stream=stream
        )

    def inspect(self, ref: str) -> dict[str, object]:
        """Everything known about a container, as JSON-ready data."""
        from lk_core.serialize import container_to_dict

        container = self.get(ref)
        data = container_to_dict(container)
        data["log_path"] = str(log_path(container.id))
        data["runtime_dir"] = str(runtime_dir(container.id))
        return data


def _check_image_not_in_use(image: Path, fmt: str, records: builtins.list[Container]) -> None:
    """Refuse a disk image another active container has open (disks are written in place)."""
    from lk_core.formats import ISO, KERNEL_INITRD

    if fmt in (ISO, KERNEL_INITRD):
        return  # read-only media can be shared
    users = [c.display_name for c in records if c.is_active and c.image == str(image)]
    if users:
        raise UsageError(
            f"disk image {image} is in use by container {users[0]} (disks are written in "
            "place): stop it first, or run a copy of the image"
        )


def _check_private_key(path: Path) -> None:
    """Refuse a key lk cannot use unattended (encrypted, unreadable, not a key)."""
    import paramiko

    try:
        paramiko.PKey.from_path(path)
    except (paramiko.PasswordRequiredException, TypeError) as exc:
        if not isinstance(exc, paramiko.PasswordRequiredException) and (
            "password" not in str(exc).lower()
        ):
            raise UsageError(f"cannot use SSH key {path}: {exc}") from None
        raise UsageError(
            f"SSH key {path} is protected by a passphrase: lk needs an unencrypted key "
            "(or omit --ssh-key to use lk's own)"
        ) from None
    except (OSError, paramiko.SSHException, ValueError) as exc:
        raise UsageError(f"cannot use SSH key {path}: {exc}") from None


def _choose_ssh_key(options: RunOptions) -> str:
    """The private key the VM will trust: the user's, or lk's own (made on first use)."""
    from lk_core.errors import NotFoundError

    if options.ssh_key:
        path = Path(options.ssh_key).expanduser()
        if not path.is_file():
            raise NotFoundError(f"SSH key not found: {options.ssh_key}")
        _check_private_key(path)
        return str(path.absolute())
    if not options.metadata:
        return ""
    from lk_core.ssh_keys import ensure_default_key

    return str(ensure_default_key())


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _wait_until(condition: Callable[[], bool], seconds: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)


def _read_message(fd: int, timeout: float) -> str:
    import select

    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], _left(deadline))
            if not ready:
                return ""
            data = os.read(fd, 4096)
            if not data:
                break
            chunks.append(data)
            if data.endswith(b"\n"):
                break
    finally:
        os.close(fd)
    return b"".join(chunks).decode(errors="replace").strip()


def _tail_text(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""
