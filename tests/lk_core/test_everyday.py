"""Everyday commands through the real CLI with the fake hypervisor (fast).

attach/console (the fake-console hypervisor serves a console socket like
QEMU's), start, restart, run --rm, prune, ps --no-trunc/--filter, stop in
parallel with forced stops marked, stats.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time

import pytest
from cli_support import state, wait_for

RUN = ("run", "-d", "--hypervisor", "fake")
RUN_CONSOLE = ("run", "-d", "--hypervisor", "fake-console")


def start(run_lk, image, *extra, run=RUN, env=None) -> str:
    return run_lk(*run, *extra, str(image), check=True, env=env).stdout.strip()


def lk_process(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "lk_core", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


def read_until(stream, text: bytes, timeout: float = 10.0) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    fd = stream.fileno()
    while text not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{text!r} not seen; got {seen!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                raise AssertionError(f"EOF before {text!r}; got {seen!r}")
            seen += chunk
    return seen


# -- attach ----------------------------------------------------------------------------
def test_attach_relays_typing_logs_it_and_detaches_with_ctrl_bracket(run_lk, sandbox, iso_image):
    cid = start(run_lk, iso_image, "--name", "con", run=RUN_CONSOLE)
    proc = lk_process("attach", "con")
    try:
        proc.stdin.write(b"hello console\n")
        proc.stdin.flush()
        read_until(proc.stdout, b"fake-shell: hello console")
        proc.stdin.write(b"\x1d")
        proc.stdin.flush()
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert b"Connected to con (detach with Ctrl-])" in err
    assert b"detached from con" in err
    # the console kept going to the log while attached, and the VM still runs
    assert "fake-shell: hello console" in run_lk("logs", "con", check=True).stdout
    assert state(sandbox)[cid]["status"] == "running"


def test_console_is_attach_and_detach_keys_are_configurable(run_lk, sandbox, iso_image):
    start(run_lk, iso_image, "--name", "con", run=RUN_CONSOLE)
    proc = lk_process("console", "--detach-keys", "ctrl-x,q", "con")
    try:
        proc.stdin.write(b"\x1d\x18z one\n")  # Ctrl-] is plain input now; Ctrl-X z is no detach
        proc.stdin.flush()
        read_until(proc.stdout, b"z one")
        proc.stdin.write(b"\x18q")
        proc.stdin.flush()
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and b"detach with Ctrl-X q" in err and b"detached" in err


def test_a_second_attach_is_refused_naming_the_attached_pid(run_lk, sandbox, iso_image):
    start(run_lk, iso_image, "--name", "con", run=RUN_CONSOLE)
    first = lk_process("attach", "con")
    try:
        read_until(first.stderr, b"Connected to con")
        second = run_lk("attach", "con")
        assert second.returncode == 1
        assert second.stderr.strip() == (
            f"lk: error: container con already has a console attached (pid {first.pid})"
        )
        first.stdin.write(b"\x1d")
        first.stdin.flush()
        first.communicate(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0
    # once the first detached, attaching works again
    again = lk_process("attach", "con")
    try:
        again.stdin.write(b"back\n")
        again.stdin.flush()
        read_until(again.stdout, b"fake-shell: back")
        again.stdin.write(b"\x1d")
        again.stdin.flush()
        again.communicate(timeout=10)
    finally:
        if again.poll() is None:
            again.kill()
    assert again.returncode == 0


def test_attach_ends_when_the_vm_stops(run_lk, sandbox, iso_image):
    start(run_lk, iso_image, "--name", "con", run=RUN_CONSOLE)
    proc = lk_process("attach", "con")
    try:
        read_until(proc.stderr, b"Connected to con")
        run_lk("stop", "con", check=True)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and b"closed (the VM stopped)" in err


def test_attach_refusals_are_one_line(run_lk, sandbox, iso_image):
    start(run_lk, iso_image, "--name", "plain")
    no_console = run_lk("attach", "plain")
    assert no_console.returncode == 1
    assert no_console.stderr.strip() == (
        "lk: error: hypervisor fake cannot offer an interactive console (lk attach)"
    )
    start(run_lk, iso_image, "--name", "con", run=RUN_CONSOLE)
    run_lk("stop", "con", check=True)
    stopped = run_lk("attach", "con")
    assert stopped.returncode == 1
    assert stopped.stderr.strip() == (
        "lk: error: container con is stopped: start it first ('lk start con')"
    )
    bad_keys = run_lk("attach", "--detach-keys", "ctrl-1", "con")
    assert bad_keys.returncode == 2 and "invalid --detach-keys 'ctrl-1'" in bad_keys.stderr


# -- start, restart, --rm, prune ---------------------------------------------------------
def test_start_boots_a_stopped_container_again_with_its_options(run_lk, sandbox, iso_image):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cid = start(run_lk, iso_image, "--name", "web", "-m", "256", "-c", "2", "-p", f"{port}:80")
    first = state(sandbox)[cid]
    wait_for(lambda: "lk-test: ready" in run_lk("logs", "web").stdout)
    run_lk("stop", "web", check=True)
    assert run_lk("start", "web", check=True).stdout.strip() == "web"
    again = state(sandbox)[cid]
    assert again["status"] == "running" and again["pid"] != first["pid"]
    assert again["exit_code"] is None and again["finished_at"] == ""
    for key in ("memory", "cpus", "ports", "image", "ssh_port", "command"):
        assert again[key] == first[key], key
    wait_for(lambda: run_lk("logs", "web").stdout.count("lk-test: ready") == 2)
    log = run_lk("logs", "web").stdout  # the log is kept across starts
    assert log.index("lk-test: shutting down") < log.rindex("fake-vm: booting")
    # the stop marker of the last run does not make this run's exit look requested
    run_lk("stop", "web", check=True)
    assert state(sandbox)[cid]["status"] == "stopped"


def test_start_takes_a_new_ssh_port_when_the_old_one_is_taken(run_lk, sandbox, iso_image):
    cid = start(run_lk, iso_image)
    old = state(sandbox)[cid]["ssh_port"]
    run_lk("stop", cid, check=True)
    assert run_lk("ps", "-a", check=True).stdout.count("127.0.0.1:") == 0  # no stale SSH
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind(("127.0.0.1", old))
        busy.listen()
        result = run_lk("start", cid, check=True)
    new = state(sandbox)[cid]["ssh_port"]
    assert new != old and new > 0
    assert f"SSH port {old} is taken now; SSH is on 127.0.0.1:{new}" in result.stderr


def test_start_refusals(run_lk, sandbox, iso_image):
    cid = start(run_lk, iso_image, "--name", "up")
    running = run_lk("start", "up")
    assert running.returncode == 1
    assert running.stderr.strip() == "lk: error: container up is already running"
    both = run_lk("start", "ghost", "up")
    assert both.returncode == 1 and "no such container: ghost" in both.stderr
    assert state(sandbox)[cid]["status"] == "running"


def test_restart_stops_and_boots_again(run_lk, sandbox, iso_image):
    cid = start(run_lk, iso_image, "--name", "web")
    pid = state(sandbox)[cid]["pid"]
    assert run_lk("restart", "web", check=True).stdout.strip() == "web"
    record = state(sandbox)[cid]
    assert record["status"] == "running" and record["pid"] != pid
    wait_for(lambda: "lk-test: shutting down" in run_lk("logs", "web").stdout)


def test_run_rm_detached_removes_everything_when_the_vm_exits(run_lk, sandbox, iso_image):
    cid = start(run_lk, iso_image, "--rm", "--name", "tmp")
    assert (sandbox / "logs" / f"{cid}.log").exists()
    run_lk("stop", "tmp", check=True)
    wait_for(lambda: cid not in state(sandbox))
    wait_for(lambda: not (sandbox / "run" / cid).exists())
    assert not (sandbox / "logs" / f"{cid}.log").exists()
    # a VM that exits by itself (crash) is removed too
    crashed = start(run_lk, iso_image, "--rm", env={"FAKE_VM_ARGS": "--exit-after 0.3"})
    wait_for(lambda: crashed not in state(sandbox))
    restart = run_lk("restart", start(run_lk, iso_image, "--rm", "--name", "tmp2"))
    assert restart.returncode == 1 and "was run with --rm" in restart.stderr


def test_run_rm_in_the_foreground_removes_the_container(sandbox, iso_image):
    proc = lk_process("run", "--rm", "--hypervisor", "fake", "--name", "fg", str(iso_image))
    try:
        read_until(proc.stdout, b"lk-test: ready")
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert state(sandbox) == {}
    assert list((sandbox / "logs").glob("*.log")) == []


def test_prune_removes_stopped_containers_and_says_what_it_freed(run_lk, sandbox, iso_image):
    keep = start(run_lk, iso_image, "--name", "keep")
    gone = [start(run_lk, iso_image, "--name", name) for name in ("old1", "old2")]
    run_lk("stop", "old1", "old2", check=True)
    refused = run_lk("prune", input="n\n")
    assert refused.returncode == 1 and "Remove 2 stopped containers (old1, old2)" in refused.stderr
    assert set(state(sandbox)) == {keep, *gone}
    result = run_lk("prune", "-f", check=True)
    lines = result.stdout.splitlines()
    assert lines[:2] == ["old1", "old2"] or sorted(lines[:2]) == ["old1", "old2"]
    assert lines[-1].startswith("Removed 2 containers, freed ") and lines[-1][-2:] == "kB"
    assert set(state(sandbox)) == {keep}
    for cid in gone:
        assert not (sandbox / "run" / cid).exists()
        assert not (sandbox / "logs" / f"{cid}.log").exists()
    assert run_lk("prune", "-f", check=True).stdout.strip() == "No stopped containers."


# -- ps ----------------------------------------------------------------------------------
def test_ps_no_trunc_and_filters(run_lk, sandbox, iso_image, tmp_path):
    long_image = tmp_path / ("a-very-long-image-name-" * 3 + ".iso")
    long_image.write_bytes(iso_image.read_bytes())
    web = start(run_lk, long_image, "--name", "web")
    db = start(run_lk, iso_image, "--name", "db")
    cache = start(run_lk, iso_image, "--name", "cache")
    run_lk("stop", "cache", check=True)

    assert str(long_image) not in run_lk("ps", check=True).stdout
    assert str(long_image) in run_lk("ps", "--no-trunc", check=True).stdout

    def ids(*filters: str) -> set[str]:
        args = [arg for f in filters for arg in ("--filter", f)]
        return set(run_lk("ps", "-q", *args, check=True).stdout.split())

    assert ids("name=web") == {web}
    assert ids("name=web", "name=db") == {web, db}  # one key: ORed
    assert ids("name=web", "status=running") == {web}  # two keys: ANDed
    assert ids("name=cache", "status=running") == set()
    assert ids("status=stopped") == {cache}  # a status filter looks at every container
    assert ids("image=very-long") == {web}
    assert ids("hypervisor=FAKE") == {web, db}
    bad = run_lk("ps", "--filter", "colour=red")
    assert bad.returncode == 2 and "unknown --filter key 'colour'" in bad.stderr
    assert run_lk("ps", "--filter", "status=gone").returncode == 2
    assert run_lk("ps", "--filter", "name").returncode == 2


# -- stop ---------------------------------------------------------------------------------
def test_stop_runs_in_parallel_and_marks_forced_stops(run_lk, sandbox, iso_image):
    stubborn = {"FAKE_VM_ARGS": "--ignore-powerdown"}
    one = start(run_lk, iso_image, "--name", "one", env=stubborn)
    two = start(run_lk, iso_image, "--name", "two", env=stubborn)
    began = time.monotonic()
    result = run_lk("stop", "-t", "3", "one", "ghost", "two")
    elapsed = time.monotonic() - began
    assert result.returncode == 1
    assert result.stdout.split() == ["one", "two"]
    assert result.stderr.strip() == "lk: error: no such container: ghost"
    assert elapsed < 5.8, f"two stops of 3 s each took {elapsed:.1f} s: not in parallel"
    for cid in (one, two):
        record = state(sandbox)[cid]
        assert record["status"] == "stopped"
        assert record["status_reason"] == "forced after 3 s: the guest did not power off"
    ps = run_lk("ps", "-a", check=True).stdout
    assert ps.count("stopped (forced)") == 2
    inspected = json.loads(run_lk("inspect", "one", check=True).stdout)
    assert inspected["status_reason"].startswith("forced after 3 s")
    # -f says so too; a graceful stop does not
    run_lk("start", "one", check=True)
    run_lk("stop", "-f", "one", check=True)
    assert state(sandbox)[one]["status_reason"].startswith("forced: powered off at once (-f)")
    run_lk("start", "two", check=True, env={"FAKE_VM_ARGS": ""})
    graceful = start(run_lk, iso_image)
    run_lk("stop", graceful, check=True)
    assert state(sandbox)[graceful]["status_reason"] == ""
    assert "stopped (0)" in run_lk("ps", "-a", check=True).stdout


# -- stats ----------------------------------------------------------------------------------
def test_stats_no_stream_and_json(run_lk, sandbox, iso_image):
    cid = start(run_lk, iso_image, "--name", "web", "-m", "256")
    table = run_lk("stats", "--no-stream", check=True).stdout
    header = table.splitlines()[0]
    assert header.split()[:3] == ["ID", "NAME", "CPU"] and "MEM USAGE / LIMIT" in header
    assert "BLOCK I/O" not in header  # the fake reports no disk counters
    assert cid in table and "/ 268.4 MB" in table
    data = json.loads(run_lk("stats", "--format", "json", "web", check=True).stdout)
    assert [d["id"] for d in data] == [cid]
    assert data[0]["memory_bytes"] > 1_000_000 and data[0]["memory_limit_bytes"] == 256 << 20
    assert isinstance(data[0]["cpu_percent"], float)
    assert run_lk("stats", "--no-stream", "ghost").returncode == 1


@pytest.mark.parametrize("command", ["attach", "start", "restart", "stats"])
def test_unknown_refs_are_one_line_errors(run_lk, command):
    result = run_lk(command, "ghost")
    assert result.returncode == 1
    assert result.stderr.strip() == "lk: error: no such container: ghost"


# -- run --wait progress -------------------------------------------------------------------
def test_wait_progress_on_a_terminal_and_none_with_quiet_or_a_pipe(run_lk, sandbox, iso_image):
    import pty

    # the fake VM has no SSH: --wait times out, showing what the guest printed meanwhile
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lk_core", *RUN, "--wait", "--wait-timeout", "2", str(iso_image)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)
    seen = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 20)
            if not ready:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
            if b"did not answer" in seen:
                break
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert proc.returncode != 0
    assert b"\r\x1b[Kwaiting for " in seen and b"lk-test: ready" in seen
    quiet = run_lk(*RUN, "-q", "--wait", "--wait-timeout", "1", str(iso_image))
    piped = run_lk(*RUN, "--wait", "--wait-timeout", "1", str(iso_image))
    for result in (quiet, piped):
        assert result.returncode != 0 and "did not answer" in result.stderr
        assert "\r" not in result.stderr and "waiting for" not in result.stderr
