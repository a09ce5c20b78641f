"""End to end through the ``lk`` CLI: the libvirt hypervisor on qemu:///system and a "remote" host.

Each test runs ``lk`` as a subprocess with its own ``LK_HOME`` (a client). The
"remote" host is the session daemon of user ``lkremote`` reached over the test
sshd (scripts/remote-host.sh). One VM at a time. They skip (saying why) when the
daemons are not running.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.libvirt, pytest.mark.e2e, pytest.mark.slow]


def lk(
    home: Path, *args: str, timeout: float = 240, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "LK_HOME": str(home), **env}
    environ.pop("LK_HOST", None)
    return subprocess.run(
        [sys.executable, "-m", "lk_core", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environ,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def lk_domains(conn: Any) -> list[str]:
    return [d.name() for d in conn.listAllDomains(0) if d.name().startswith("lk-")]


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "client1"
    yield path
    # leave nothing behind on the hosts, whatever the test did
    left = lk(path, "ps", "-a", "-q", LK_LIBVIRT_TIMEOUT="5").stdout.split()
    if left:
        lk(path, "rm", "-f", *left)


def test_local_lifecycle(system_conn: Any, test_iso: Path, home: Path) -> None:
    before = set(lk_domains(system_conn))
    started = time.monotonic()
    cid = ok(
        lk(
            home,
            "run",
            "-d",
            "--hypervisor",
            "libvirt",
            "--name",
            "web",
            "-m",
            "512",
            "-p",
            "18181:22",
            "--wait",
            str(test_iso),
        )
    ).strip()
    print(f"libvirt local: run -d --wait took {time.monotonic() - started:.1f}s")
    (domain,) = set(lk_domains(system_conn)) - before
    assert domain == f"lk-{cid}"
    xml = system_conn.lookupByName(domain).XMLDesc(0)
    assert "hostfwd=tcp:127.0.0.1:18181-:22" in xml  # published on 127.0.0.1 only
    with socket.create_connection(("127.0.0.1", 18181), timeout=5) as sock:
        assert sock.recv(4).startswith(b"SSH-")
    ps = ok(lk(home, "ps"))
    assert "HOST" in ps and "local" in ps and "web" in ps
    assert ok(lk(home, "exec", "web", "--", "echo", "a b;c")).strip() == "a b;c"
    assert "host_key" in system_conn.lookupByName(domain).XMLDesc(0)  # pinned in the record
    assert "Linux" in ok(lk(home, "logs", "web")) or ok(lk(home, "logs", "web"))
    # lk logs -f follows the live console (virDomainOpenConsole) and ends with the VM.
    follower = subprocess.Popen(
        [sys.executable, "-m", "lk_core", "logs", "-f", "web"],
        env={**os.environ, "LK_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )
    time.sleep(2)  # let it attach before the guest shuts down
    # The console admits one client at a time (docs/many-hosts.md): a second follower
    # fails in one line, and the log without -f still reads.
    second = one_line_error(lk(home, "logs", "-f", "web", timeout=60))
    assert "the console of web is in use by another client" in second, second
    assert ok(lk(home, "logs", "web")).strip()
    assert follower.poll() is None, "the first follower ended when a second one was refused"
    started = time.monotonic()
    ok(lk(home, "stop", "-t", "30", "web"))
    stop_time = time.monotonic() - started
    try:
        followed, follow_err = follower.communicate(timeout=60)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0, follow_err
    assert "Power down" in followed or "poweroff" in followed, followed[-500:]
    print(f"libvirt local: stop took {stop_time:.1f}s")
    assert stop_time < 30  # graceful (ACPI), not the forced path after the timeout
    assert "stopped" in ok(lk(home, "ps", "-a"))
    assert "web" in ok(lk(home, "inspect", "web"))
    ok(lk(home, "rm", "web"))
    assert set(lk_domains(system_conn)) == before
    assert ok(lk(home, "ps", "-a", "-q")).strip() == ""


def test_undefined_domain_disappears(system_conn: Any, test_iso: Path, home: Path) -> None:
    cid = ok(
        lk(
            home,
            "run",
            "-d",
            "--hypervisor",
            "libvirt",
            "-m",
            "256",
            "--no-metadata",
            str(test_iso),
        )
    ).strip()
    domain = system_conn.lookupByName(f"lk-{cid}")
    domain.destroy()
    domain.undefine()
    assert cid not in ok(lk(home, "ps", "-a"))


def test_bad_input_leaves_nothing(
    system_conn: Any, test_iso: Path, home: Path, tmp_path: Path
) -> None:
    before = set(lk_domains(system_conn))
    error = one_line_error(lk(home, "run", "-d", "--host", "nowhere", str(test_iso)))
    assert "unknown libvirt host 'nowhere'" in error
    error = one_line_error(
        lk(home, "run", "-d", "--host", "local", "--hypervisor", "qemu", str(test_iso))
    )
    assert "--host" in error
    kernel = tmp_path / "img-kernel"
    kernel.write_bytes(b"\x00" * 4096)
    (tmp_path / "img-initrd.img").write_bytes(b"\x00" * 4096)
    result = lk(home, "run", "-d", "--hypervisor", "libvirt", str(kernel))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    ok(lk(home, "host", "add", "--no-check", "down", "qemu+ssh://nobody@127.0.0.1:9/system"))
    error = one_line_error(
        lk(home, "run", "-d", "--host", "down", str(test_iso), LK_LIBVIRT_TIMEOUT="2")
    )
    assert "down" in error or "127.0.0.1:9" in error
    ok(lk(home, "host", "rm", "down"))
    assert set(lk_domains(system_conn)) == before


def test_name_already_used_on_host(system_conn: Any, test_iso: Path, home: Path) -> None:
    ok(
        lk(
            home,
            "run",
            "-d",
            "--hypervisor",
            "libvirt",
            "--name",
            "dup",
            "-m",
            "256",
            "--no-metadata",
            str(test_iso),
        )
    )
    other = home.parent / "client2"  # another client, same host
    before = set(lk_domains(system_conn))
    error = one_line_error(
        lk(other, "run", "-d", "--hypervisor", "libvirt", "--name", "dup", str(test_iso))
    )
    assert "already in use" in error
    assert set(lk_domains(system_conn)) == before
    ok(lk(home, "rm", "-f", "dup"))


def _blackhole() -> tuple[socket.socket, int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return server, server.getsockname()[1]


def test_down_hosts_cost_one_timeout(home: Path, system_conn: Any) -> None:
    server, port = _blackhole()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    try:
        add = lk(home, "host", "add", "--no-check", "silent", f"qemu+tcp://127.0.0.1:{port}/system")
        ok(add)
        assert "controls" in add.stderr  # the unauthenticated-TCP warning
        ok(
            lk(
                home,
                "host",
                "add",
                "--no-check",
                "closed",
                f"qemu+tcp://127.0.0.1:{closed_port}/system",
            )
        )
        started = time.monotonic()
        result = lk(home, "ps", LK_LIBVIRT_TIMEOUT="2")
        took = time.monotonic() - started
        ok(result)
        assert "silent" in result.stderr and "closed" in result.stderr
        assert "unreachable" in result.stderr
        assert took < 2 + 4, took  # both hosts probed at once: one timeout plus lk's start-up
    finally:
        server.close()


def test_remote_host_exec_and_port_forward(
    remote_uri: str, system_conn: Any, test_iso: Path, home: Path
) -> None:
    ok(lk(home, "host", "add", "remote", remote_uri))
    assert "pinned" in ok(lk(home, "host", "ls"))
    started = time.monotonic()
    cid = ok(
        lk(
            home,
            "run",
            "-d",
            "--host",
            "remote",
            "--name",
            "far",
            "-m",
            "512",
            "--wait",
            str(test_iso),
        )
    ).strip()
    print(f"libvirt remote: run -d --wait took {time.monotonic() - started:.1f}s")
    assert ok(lk(home, "exec", "far", "--", "hostname")).strip() == "lk-test"
    ps = ok(lk(home, "ps"))
    assert "remote" in ps and "far" in ps
    # a second client sees the same container once it knows the host
    other = home.parent / "client2"
    ok(lk(other, "host", "add", "remote", remote_uri))
    assert cid in ok(lk(other, "ps"))
    # the same daemon under two names: listed once
    ok(lk(other, "host", "add", "again", remote_uri))
    assert ok(lk(other, "ps", "-q")).split().count(cid) == 1
    # port-forward through the host's SSH tunnel and the guest's SSH
    env = {**os.environ, "LK_HOME": str(home)}
    forward = subprocess.Popen(
        [sys.executable, "-m", "lk_core", "port-forward", "far", "0:22"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = forward.stdout.readline() if forward.stdout else ""
        port = int(line.split()[0].rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.settimeout(10)
            assert sock.recv(4).startswith(b"SSH-")
    finally:
        forward.terminate()
        forward.wait(10)
    assert ok(lk(home, "logs", "far"))  # read over the host's SSH
    ok(lk(home, "stop", "far"))
    ok(lk(home, "rm", "far"))
    assert cid not in ok(lk(other, "ps", "-a", "-q"))
