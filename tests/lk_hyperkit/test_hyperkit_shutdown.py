"""request_shutdown: SIGTERM to hyperkit (an ACPI power-button press), never to PID <= 1."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest
from lk_core.errors import HypervisorError
from lk_core.model import Container
from lk_core.process import start_token
from lk_hyperkit.hypervisor import HyperkitHypervisor


def _record(pid: int) -> Container:
    return Container(id="x", image="i", pid=pid, pid_started=start_token(pid))


def test_sends_sigterm_to_the_process(tmp_path: Path) -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        HyperkitHypervisor().request_shutdown(_record(child.pid), tmp_path)
        assert child.wait(timeout=10) == -signal.SIGTERM
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


@pytest.mark.parametrize("pid", [1, 0, -1, -12345])
def test_refuses_pid_one_and_below(
    pid: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr("os.kill", lambda p, s: sent.append((p, s)))
    with pytest.raises(HypervisorError, match=f"refusing to signal PID {pid}"):
        HyperkitHypervisor().request_shutdown(Container(id="x", image="i", pid=pid), tmp_path)
    assert sent == []


def test_a_process_that_is_gone_is_not_an_error(tmp_path: Path) -> None:
    child = subprocess.Popen(["true"])
    record = _record(child.pid)
    child.wait()
    HyperkitHypervisor().request_shutdown(record, tmp_path)


def test_a_reused_pid_is_never_signalled(tmp_path: Path) -> None:
    # The record's start token is not this process's: its PID was reused.
    child = subprocess.Popen(["sleep", "30"])
    try:
        record = Container(id="x", image="i", pid=child.pid, pid_started="another-process")
        HyperkitHypervisor().request_shutdown(record, tmp_path)
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(timeout=0.5)
    finally:
        child.kill()
        child.wait()


def test_permission_denied_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def deny(*_args: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    child = subprocess.Popen(["sleep", "30"])
    try:
        with monkeypatch.context() as patch:
            patch.setattr("os.kill", deny)
            patch.setattr("signal.pidfd_send_signal", deny, raising=False)
            with pytest.raises(HypervisorError, match="cannot signal hyperkit"):
                HyperkitHypervisor().request_shutdown(_record(child.pid), tmp_path)
    finally:
        child.kill()
        child.wait()
