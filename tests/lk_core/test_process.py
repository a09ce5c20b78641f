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


# --- token formats and upgrade compatibility ----------------------------------

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the /proc token is Linux-only"
)


def old_release_linux_token(pid: int) -> str:
    """The token exactly as releases before psutil computed it, from /proc."""
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    return f"{boot_id}:{stat[stat.rfind(')') + 2 :].split()[19]}"


def old_release_ps_token(pid: int) -> str:
    """The non-Linux token of releases before psutil: ``ps`` lstart text."""
    out = subprocess.run(
        ["ps", "-o", "lstart=", "-o", "stat=", "-p", str(pid)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return " ".join(out[:-1])


@linux_only
def test_old_release_linux_token_still_identifies_a_live_process(
    sleeper: subprocess.Popen[bytes],
) -> None:
    old = old_release_linux_token(sleeper.pid)
    assert start_token(sleeper.pid) == old  # same format: nothing to migrate
    assert is_same_process(sleeper.pid, old) is True
    assert signal_process(sleeper.pid, old, 0) is True


@linux_only
def test_old_release_linux_token_of_a_reused_pid_does_not_match(
    sleeper: subprocess.Popen[bytes],
) -> None:
    boot_id, starttime = old_release_linux_token(sleeper.pid).rsplit(":", 1)
    # same PID, another start time: what a recycled PID looks like
    earlier = f"{boot_id}:{int(starttime) - 1}"
    assert is_same_process(sleeper.pid, earlier) is False
    # same start time in another boot
    other_boot = f"00000000-0000-0000-0000-000000000000:{starttime}"
    assert is_same_process(sleeper.pid, other_boot) is False
    assert signal_process(sleeper.pid, earlier, signal.SIGTERM) is False
    assert signal_process(sleeper.pid, other_boot, signal.SIGTERM) is False
    assert sleeper.poll() is None


@linux_only
def test_linux_tokens_need_no_psutil(sleeper: subprocess.Popen[bytes]) -> None:
    # psutil's import is too slow for `lk ps`; the Linux path must not load it
    code = (
        "import sys; from lk_core.process import is_same_process, start_token; "
        f"t = start_token({sleeper.pid}); assert is_same_process({sleeper.pid}, t); "
        "assert 'psutil' not in sys.modules, 'psutil imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture
def psutil_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the non-Linux (psutil) code path; psutil works on Linux too."""
    pytest.importorskip("psutil")
    monkeypatch.setattr("lk_core.process._LINUX", False)


@pytest.mark.usefixtures("psutil_platform")
def test_psutil_token_identifies_a_live_process(sleeper: subprocess.Popen[bytes]) -> None:
    import psutil

    token = start_token(sleeper.pid)
    assert token == f"v2:{psutil.Process(sleeper.pid).create_time():.6f}"
    assert start_token(sleeper.pid) == token
    assert is_same_process(sleeper.pid, token) is True
    assert is_same_process(sleeper.pid, start_token(os.getpid())) is False
    # same PID, a start 10 ms later: a recycled PID
    later = f"v2:{float(token[3:]) + 0.01:.6f}"
    assert is_same_process(sleeper.pid, later) is False
    assert signal_process(sleeper.pid, later, signal.SIGTERM) is False
    assert sleeper.poll() is None
    assert signal_process(sleeper.pid, token, signal.SIGTERM) is True
    assert sleeper.wait(10) == -signal.SIGTERM


@pytest.mark.usefixtures("psutil_platform")
@pytest.mark.skipif(shutil.which("ps") is None, reason="needs ps")
def test_psutil_platform_still_accepts_old_release_ps_tokens(
    sleeper: subprocess.Popen[bytes],
) -> None:
    old = old_release_ps_token(sleeper.pid)
    assert old and not old.startswith("v2:")
    assert is_same_process(sleeper.pid, old) is True
    assert signal_process(sleeper.pid, old, 0) is True
    # the old format of another process (a reused PID) does not match
    assert is_same_process(sleeper.pid, old_release_ps_token(1)) is False
    assert signal_process(sleeper.pid, old_release_ps_token(1), signal.SIGTERM) is False
    assert sleeper.poll() is None


@pytest.mark.usefixtures("psutil_platform")
@pytest.mark.skipif(not hasattr(os, "waitid"), reason="needs os.waitid")
def test_psutil_token_of_dead_and_zombie_processes() -> None:
    assert start_token(0) == ""
    proc = subprocess.Popen([SLEEP, "30"])
    try:
        token = start_token(proc.pid)
        assert token.startswith("v2:")
        os.kill(proc.pid, signal.SIGKILL)
        wait_exited_not_reaped(proc.pid)
        assert start_token(proc.pid) == ""
        assert is_same_process(proc.pid, token) is False
        assert signal_process(proc.pid, token, signal.SIGTERM) is False
    finally:
        proc.wait(10)
    assert start_token(proc.pid) == ""
    assert is_same_process(proc.pid, token) is False
