"""Tests for lk_core.process on real processes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from lk_core.process import is_same_process, signal_process, start_token

SLEEP = shutil.which("sleep") or "/bin/sleep"


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([SLEEP, "30"])
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def wait_exited_not_reaped(pid: int) -> None:
    """Block until ``pid`` has exited, leaving it a zombie (not reaped)."""
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)


def test_own_token_is_non_empty_and_stable() -> None:
    token = start_token(os.getpid())
    assert token
    assert start_token(os.getpid()) == token
    assert is_same_process(os.getpid(), token) is True


@pytest.mark.parametrize("pid", [0, -1, -12345])
def test_no_token_for_invalid_pids(pid: int) -> None:
    assert start_token(pid) == ""


def test_no_token_for_dead_process() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(30)
    assert start_token(proc.pid) == ""
    assert is_same_process(proc.pid, "anything") is False


def test_is_same_process_rejects_wrong_and_empty_tokens(
    sleeper: subprocess.Popen[bytes],
) -> None:
    token = start_token(sleeper.pid)
    assert token
    assert is_same_process(sleeper.pid, token) is True
    assert is_same_process(sleeper.pid, token + "0") is False
    assert is_same_process(sleeper.pid, "") is False
    assert is_same_process(0, token) is False
    # another live process's token does not identify this one
    assert is_same_process(sleeper.pid, start_token(os.getpid())) is False


def test_start_token_with_odd_command_name(tmp_path: Path) -> None:
    # the command name in /proc/<pid>/stat may contain spaces and parentheses
    odd = tmp_path / "a) b (c"
    odd.symlink_to(SLEEP)
    proc = subprocess.Popen([str(odd), "30"])
    try:
        token = start_token(proc.pid)
        assert token
        assert is_same_process(proc.pid, token)
        if sys.platform.startswith("linux"):
            stat = Path(f"/proc/{proc.pid}/stat").read_text()
            assert "a) b (c" in stat
            starttime = stat[stat.rfind(")") + 2 :].split()[19]
            assert token.endswith(":" + starttime)
        assert signal_process(proc.pid, token, signal.SIGTERM) is True
        assert proc.wait(10) == -signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@pytest.mark.parametrize("pid", [0, 1, -1])
def test_signal_process_refuses_pid_0_and_1(pid: int) -> None:
    # signal 0 only checks; even a wrong answer here would not harm anything
    assert signal_process(pid, start_token(pid) or "token", 0) is False


def test_signal_process_refuses_empty_token(sleeper: subprocess.Popen[bytes]) -> None:
    assert signal_process(sleeper.pid, "", signal.SIGTERM) is False
    assert sleeper.poll() is None


def test_signal_process_refuses_mismatched_token(sleeper: subprocess.Popen[bytes]) -> None:
    real = start_token(sleeper.pid)
    wrong = real[:-1] + ("0" if real[-1] != "0" else "1")
    assert signal_process(sleeper.pid, wrong, signal.SIGTERM) is False
    assert signal_process(sleeper.pid, start_token(os.getpid()), signal.SIGTERM) is False
    # the child is untouched
    assert sleeper.poll() is None
    assert is_same_process(sleeper.pid, real)


def test_signal_process_delivers_with_right_token(sleeper: subprocess.Popen[bytes]) -> None:
    token = start_token(sleeper.pid)
    assert signal_process(sleeper.pid, token, signal.SIGTERM) is True
    assert sleeper.wait(10) == -signal.SIGTERM


def test_signal_zero_probes_without_harm(sleeper: subprocess.Popen[bytes]) -> None:
    assert signal_process(sleeper.pid, start_token(sleeper.pid), 0) is True
    assert sleeper.poll() is None


@pytest.mark.skipif(not hasattr(os, "waitid"), reason="needs os.waitid")
def test_zombie_and_reaped_child_are_not_signalled() -> None:
    proc = subprocess.Popen([SLEEP, "30"])
    try:
        token = start_token(proc.pid)
        assert token
        os.kill(proc.pid, signal.SIGKILL)
        wait_exited_not_reaped(proc.pid)
        # now a zombie: it has exited, its PID is still taken
        assert start_token(proc.pid) == ""
        assert is_same_process(proc.pid, token) is False
        assert signal_process(proc.pid, token, signal.SIGTERM) is False
    finally:
        proc.wait(10)
    # reaped: the PID is free
    assert proc.returncode == -signal.SIGKILL
    assert start_token(proc.pid) == ""
    assert signal_process(proc.pid, token, signal.SIGTERM) is False
