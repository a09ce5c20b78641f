"""The supervisor: the process that owns one VM's hypervisor for its whole life.

For a detached VM, ``lk run -d`` starts ``python -m lk_core.supervisor --id ID``
in a session of its own, so it outlives the CLI. It launches the command
recorded in the container's record, records the hypervisor's PID and start
token, tells ``lk run`` whether the launch worked (through a pipe), waits for
the hypervisor to exit, and records the result: ``stopped`` (exit 0, or a stop
was requested) or ``error`` with the exit code and the hypervisor's last
error line. A foreground ``lk run`` calls :func:`supervise` in-process.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import attrs

from lk_core.errors import HypervisorError
from lk_core.model import Container, Status
from lk_core.paths import log_path, runtime_dir
from lk_core.process import signal_process, start_token
from lk_core.state import StoreOperations
from lk_core.timeutil import now_rfc3339
from lk_core.waiting import time_left

#: A hypervisor that exits within this many seconds failed to start.
STARTUP_GRACE_SECONDS = 0.5
#: How long ``lk run -d`` waits for the supervisor to report the launch.
LAUNCH_TIMEOUT = 60.0
STOP_MARKER = "stop-requested"
#: Written by ``lk stop`` before it forces a VM off; holds the reason recorded.
FORCED_MARKER = "stop-forced"
HYPERVISOR_STDERR = "hypervisor.err"
SUPERVISOR_LOG = "supervisor.log"


@attrs.frozen
class LaunchReport:
    """The supervisor's one message to ``lk run``: did the hypervisor start?

    Sent as one line over a pipe: ``ok``, or ``error: <reason>``.
    """

    ok: bool
    reason: str = ""

    def encode(self) -> bytes:
        """The line written to the pipe."""
        return b"ok\n" if self.ok else f"error: {self.reason}\n".encode()

    @classmethod
    def decode(cls, line: str) -> LaunchReport:
        """Parse a line; anything but ``ok`` is a failure."""
        line = line.strip()
        if line == "ok":
            return cls(True)
        return cls(False, line.removeprefix("error: ") or "the supervisor exited without reporting")


def stop_requested(container_id: str) -> bool:
    """True once ``lk stop`` has asked this container to stop."""
    return (runtime_dir(container_id) / STOP_MARKER).exists()


def request_stop_marker(container_id: str) -> None:
    """Record that a stop was asked for, so the exit counts as ``stopped``."""
    directory = runtime_dir(container_id)
    if directory.is_dir():
        (directory / STOP_MARKER).touch()


def mark_forced(container_id: str, reason: str) -> None:
    """Record that a stop had to force the VM off, and why (shown by ``ps``/``inspect``)."""
    directory = runtime_dir(container_id)
    if directory.is_dir():
        (directory / FORCED_MARKER).write_text(reason + "\n", encoding="utf-8")


def forced_reason(container_id: str) -> str:
    """The reason left by :func:`mark_forced`, or ``""`` if the stop was graceful."""
    try:
        return (runtime_dir(container_id) / FORCED_MARKER).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def remove_files(ops: StoreOperations, container_id: str) -> None:
    """Remove a container's record, log and runtime folder (``--rm`` once the VM exited)."""
    import shutil

    ops.remove(container_id)
    log_path(container_id).unlink(missing_ok=True)
    shutil.rmtree(runtime_dir(container_id), ignore_errors=True)


def _last_line(path: Path) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [ln for ln in lines if ln]
    return lines[-1] if lines else ""


def _copy_stderr_to_log(err_path: Path, log: Path) -> None:
    try:
        text = err_path.read_text(errors="replace")
    except OSError:
        return
    if text.strip():
        with log.open("a", encoding="utf-8") as handle:
            for line in text.splitlines():
                if line.strip():
                    handle.write(f"[lk] hypervisor: {line}\n")


def exit_status(returncode: int) -> int:
    """Shell-style exit status: 128+N for a process killed by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def _describe_exit(returncode: int, err_line: str) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        what = f"hypervisor killed by {name}"
    else:
        what = f"hypervisor exited with status {returncode}"
    return f"{what}: {err_line}" if err_line else what


def record_exit(ops: StoreOperations, container_id: str, returncode: int) -> Container | None:
    """Store how the hypervisor ended; returns the updated record (None if it was removed)."""
    err_path = runtime_dir(container_id) / HYPERVISOR_STDERR
    _copy_stderr_to_log(err_path, log_path(container_id))
    requested = stop_requested(container_id)

    def change(record: Container) -> None:
        record.finished_at = now_rfc3339()
        record.exit_code = exit_status(returncode)
        if returncode == 0 or requested:
            record.status = Status.STOPPED
            record.status_reason = forced_reason(container_id) if requested else ""
        else:
            record.status = Status.ERROR
            record.status_reason = _describe_exit(returncode, _last_line(err_path))

    try:
        return ops.update(container_id, change)
    except Exception:
        return None


def supervise(
    ops: StoreOperations,
    container_id: str,
    ready: Callable[[LaunchReport], None],
    started: Callable[[subprocess.Popen[bytes]], None] | None = None,
) -> Container | None:
    """Launch the recorded command of ``container_id``, wait for it and record the exit.

    ``ready`` is called once with an ``ok`` report when the hypervisor
    survived its first moments, or a failure with the reason if it could not
    start. ``started`` (optional) receives the process right after launch.
    """
    record = ops.get(container_id)
    if record is None:
        ready(LaunchReport(False, f"container {container_id} vanished before it started"))
        return None
    rdir = runtime_dir(container_id)
    err_path = rdir / HYPERVISOR_STDERR
    log = log_path(container_id)
    try:
        with log.open("ab") as log_handle, err_path.open("wb") as err_handle:
            proc = subprocess.Popen(
                record.command,
                stdin=subprocess.DEVNULL,
                stdout=log_handle,
                stderr=err_handle,
                start_new_session=True,
                close_fds=True,
            )
    except OSError as exc:
        reason = f"cannot start {record.command[0] if record.command else 'hypervisor'}: "
        reason += exc.strerror or str(exc)

        def failed(rec: Container) -> None:
            rec.status = Status.ERROR
            rec.status_reason = reason
            rec.finished_at = now_rfc3339()

        ops.update(container_id, failed)
        ready(LaunchReport(False, reason))
        return ops.get(container_id)
    token = start_token(proc.pid)

    def mark_running(rec: Container) -> None:
        rec.pid = proc.pid
        rec.pid_started = token
        rec.supervisor_pid = os.getpid()
        rec.supervisor_started = start_token(os.getpid())
        rec.status = Status.RUNNING
        rec.status_reason = ""
        rec.started_at = now_rfc3339()

    ops.update(container_id, mark_running)
    if started is not None:
        started(proc)
    try:
        # A resumed checkpoint is watched by 'lk run' itself until its state is loaded
        # (lk_core.checkpoints), so it need not wait the whole grace here.
        proc.wait(timeout=float(record.extra.get("launch_grace", STARTUP_GRACE_SECONDS)))
    except subprocess.TimeoutExpired:
        ready(LaunchReport(True))
    else:
        final = record_exit(ops, container_id, proc.returncode)
        if final is not None and final.status is Status.ERROR:
            ready(LaunchReport(False, final.status_reason))
        else:
            ready(LaunchReport(True))
        return final
    proc.wait()
    return record_exit(ops, container_id, proc.returncode)


def _forward_term(proc_holder: list[subprocess.Popen[bytes]], container_id: str) -> None:
    def handler(_signum: int, _frame: object) -> None:
        request_stop_marker(container_id)
        for proc in proc_holder:
            token = start_token(proc.pid)
            signal_process(proc.pid, token, signal.SIGTERM)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


def spawn_supervisor(container_id: str, timeout: float = LAUNCH_TIMEOUT) -> None:
    """Start a detached supervisor for ``container_id`` and wait for its launch report.

    Raises :class:`HypervisorError` with the reason when the hypervisor could
    not start (or the supervisor died without saying why).
    """
    read_fd, write_fd = os.pipe()
    log = runtime_dir(container_id) / SUPERVISOR_LOG
    try:
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "lk_core.supervisor", "--id", container_id,
                 "--ready-fd", str(write_fd)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                pass_fds=(write_fd,),
                start_new_session=True,
                close_fds=True,
            )  # fmt: skip
    finally:
        os.close(write_fd)
    line = _read_line(read_fd, timeout)
    report = LaunchReport.decode(line)
    if report.ok:
        return
    if not line:
        if proc.poll() is None:
            proc.kill()
        tail = _last_line(log)
        raise HypervisorError(f"{report.reason}: {tail}" if tail else report.reason)
    raise HypervisorError(report.reason)


def _read_line(fd: int, timeout: float) -> str:
    """Read one line from ``fd`` within ``timeout`` seconds ("" on timeout or EOF); close it."""
    import select

    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], time_left(deadline))
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


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m lk_core.supervisor``."""
    parser = argparse.ArgumentParser(prog="lk-supervisor")
    parser.add_argument("--id", required=True)
    parser.add_argument("--ready-fd", type=int, default=-1)
    args = parser.parse_args(argv)

    def ready(report: LaunchReport) -> None:
        if args.ready_fd >= 0:
            try:
                os.write(args.ready_fd, report.encode())
                os.close(args.ready_fd)
            except OSError:
                pass
            args.ready_fd = -1

    try:
        from lk_core.plugins import new_plugins

        plugins = new_plugins()
        holder: list[subprocess.Popen[bytes]] = []
        _forward_term(holder, args.id)
        ops = plugins.store()
        final = supervise(ops, args.id, ready, started=holder.append)
        if final is not None:
            plugins.notify("stopped", final)
            if final.auto_remove:  # lk run --rm -d
                remove_files(ops, args.id)
                plugins.notify("removed", final)
    except Exception as exc:
        ready(LaunchReport(False, f"supervisor failed: {exc}"))
        print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} supervisor failed: {exc!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
