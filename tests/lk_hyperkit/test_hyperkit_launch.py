"""The console launcher, run for real with the fake hyperkit (pseudo-terminals, exec, signals).

The process is started the way lk's supervisor starts a hypervisor: stdin
from /dev/null, stdout appended to the console log, its own session.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import termios
import time
import tty
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lk_core.model import Container, HypervisorOptions
from lk_core.process import start_token
from lk_hyperkit.hypervisor import LAUNCHER, HyperkitHypervisor

from lk_hyperkit import launch

MakeOptions = Callable[..., HypervisorOptions]
MakeHypervisor = Callable[..., HyperkitHypervisor]

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith(("linux", "darwin")), reason="needs pseudo-terminals"
)


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def holders(path: Path) -> list[int]:
    """PIDs of processes that have ``path`` open (Linux /proc)."""
    found = []
    target = str(path)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fds = list((proc / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) == target:
                    found.append(int(proc.name))
                    break
            except OSError:
                continue
    return found


@pytest.fixture
def start() -> Iterator[Callable[[list[str], Path, dict[str, str]], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def run(argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.PIPE,
                start_new_session=True,
                env={**os.environ, **env},
            )
        started.append(proc)
        return proc

    yield run
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def test_vm_lifecycle_with_the_fake_hyperkit(
    make_hv: MakeHypervisor,
    make_options: MakeOptions,
    start: Callable[[list[str], Path, dict[str, str]], subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    hv = make_hv()
    options = make_options()
    record = tmp_path / "argv.json"
    proc = start(
        hv.build_command(options), options.console_log, {"FAKE_HYPERKIT_ARGV": str(record)}
    )
    log = options.console_log
    assert wait_for(lambda: "lk-test: ready" in text(log)), text(log)
    assert text(log).index("fake-hyperkit: booting") < text(log).index("lk-test: ready")

    # The launcher exec'd hyperkit: the PID lk knows is hyperkit's (it wrote it to -F).
    pidfile = options.runtime_dir / "hyperkit.pid"
    assert pidfile.read_text() == str(proc.pid)
    parsed = json.loads(record.read_text())
    assert parsed["argv"] == list(hv.plan(options).args)
    assert parsed["firmware"]["kind"] == "kexec"
    assert (options.runtime_dir / "tty").read_text().startswith("/dev/")
    assert "lk-test: ready" in text(options.runtime_dir / "console-ring")

    recorded = Container(id=options.id, image="i", pid=proc.pid, pid_started=start_token(proc.pid))
    hv.request_shutdown(recorded, options.runtime_dir)
    assert proc.wait(timeout=10) == 0
    assert wait_for(lambda: "lk-test: shutting down" in text(log)), text(log)
    assert not pidfile.exists()
    if sys.platform.startswith("linux"):
        # The console copier has gone too: nothing keeps the log open.
        assert wait_for(lambda: holders(log) == [], timeout=5), holders(log)


def test_stale_pidfile_and_tty_file_do_not_block_a_restart(
    make_hv: MakeHypervisor,
    make_options: MakeOptions,
    start: Callable[[list[str], Path, dict[str, str]], subprocess.Popen[bytes]],
) -> None:
    options = make_options()
    (options.runtime_dir / "hyperkit.pid").write_text("99999")
    (options.runtime_dir / "tty").write_text("/dev/does-not-exist")
    proc = start(make_hv().build_command(options), options.console_log, {})
    assert wait_for(lambda: "lk-test: ready" in text(options.console_log)), text(
        options.console_log
    )
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


def test_forced_kill_stops_the_vm_and_the_copier(
    make_hv: MakeHypervisor,
    make_options: MakeOptions,
    start: Callable[[list[str], Path, dict[str, str]], subprocess.Popen[bytes]],
) -> None:
    options = make_options()
    proc = start(make_hv().build_command(options), options.console_log, {})
    assert wait_for(lambda: "lk-test: ready" in text(options.console_log))
    proc.kill()
    assert proc.wait(timeout=10) == -signal.SIGKILL
    if sys.platform.startswith("linux"):
        assert wait_for(lambda: holders(options.console_log) == [], timeout=5)


def test_hyperkit_failing_at_start(
    make_hv: MakeHypervisor,
    make_options: MakeOptions,
    start: Callable[[list[str], Path, dict[str, str]], subprocess.Popen[bytes]],
) -> None:
    options = make_options()
    proc = start(
        make_hv().build_command(options), options.console_log, {"FAKE_HYPERKIT_FAIL_START": "1"}
    )
    assert proc.wait(timeout=10) == 1
    assert proc.stderr is not None
    assert b"Unable to create VM" in proc.stderr.read()
    if sys.platform.startswith("linux"):
        assert wait_for(lambda: holders(options.console_log) == [], timeout=5)


def test_exec_failure_is_reported(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            str(LAUNCHER),
            "--console-log",
            str(log),
            "--tty",
            str(tmp_path / "run" / "tty"),
            "--pidfile",
            str(tmp_path / "run" / "pid"),
            "--tty-wait",
            "2",
            "--",
            str(tmp_path / "no-such-hyperkit"),
            "-A",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == launch.EXEC_FAILED
    assert "cannot run hyperkit" in result.stderr
    assert "cannot run hyperkit" in log.read_text()


def test_launcher_needs_a_command() -> None:
    with pytest.raises(SystemExit):
        launch.parse_args(["--console-log", "x", "--tty", "t", "--pidfile", "p"])
    with pytest.raises(SystemExit):
        launch.parse_args(["--console-log", "x", "--tty", "t", "--pidfile", "p", "--"])
    options, command = launch.parse_args(
        ["--console-log", "x", "--tty", "t", "--pidfile", "p", "--", "hyperkit", "-A", "--", "y"]
    )
    assert (options.console_log, options.tty, options.pidfile) == ("x", "t", "p")
    assert command == ["hyperkit", "-A", "--", "y"]


def test_terminal_path(tmp_path: Path) -> None:
    name_file = tmp_path / "tty"
    assert launch._terminal_path(str(name_file)) is None
    name_file.write_text("")
    assert launch._terminal_path(str(name_file)) is None
    name_file.write_text("/dev/ttys004\n")
    assert launch._terminal_path(str(name_file)) == "/dev/ttys004"
    master, slave = os.openpty()
    try:
        link = tmp_path / "tty-link"
        link.symlink_to(os.ttyname(slave))
        assert launch._terminal_path(str(link)) == str(link)  # older hyperkit: a symlink
    finally:
        os.close(master)
        os.close(slave)


def test_open_console_gives_up_when_hyperkit_is_gone(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    started = time.monotonic()
    assert launch.open_console(str(tmp_path / "tty"), gone.pid, timeout=30) is None
    assert time.monotonic() - started < 5


def test_open_console_times_out(tmp_path: Path) -> None:
    assert launch.open_console(str(tmp_path / "tty"), os.getpid(), timeout=0.1) is None


def test_copy_console_copies_until_the_terminal_closes(tmp_path: Path) -> None:
    import threading

    master, slave = os.openpty()
    tty.setraw(slave, termios.TCSANOW)  # as hyperkit does (cfmakeraw) before any output
    name_file = tmp_path / "tty"
    name_file.write_text(os.ttyname(slave))
    os.write(master, b"early boot\r\n")  # written before anyone reads: must not be lost
    console = launch.open_console(str(name_file), os.getpid(), timeout=5)
    assert console is not None
    os.close(slave)
    log = tmp_path / "log"
    log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    copier = threading.Thread(target=launch.copy_console, args=(console, log_fd, os.getpid()))
    copier.start()
    try:
        os.write(master, b"hello\r\nworld\n")
        assert wait_for(lambda: log.read_bytes().endswith(b"world\n"), timeout=5)
    finally:
        os.close(master)  # hyperkit exits: the copier sees the terminal close and stops
        copier.join(timeout=5)
        os.close(console)
        os.close(log_fd)
    assert not copier.is_alive()
    assert log.read_bytes() == b"early boot\r\nhello\r\nworld\n"  # raw: bytes as written
