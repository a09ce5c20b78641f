"""Tests for lk_qemu.qmp: against an in-test unix socket server, and against real QEMU."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lk_core.errors import HypervisorError
from lk_core.model import Container, PortMapping, Protocol, VolumeMapping
from lk_qemu.argv import build_argv, qmp_socket_path
from lk_qemu.hypervisor import QemuHypervisor
from lk_qemu.qmp import QmpClient, QmpError
from qemu_helpers import make_options

GREETING = {"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}}, "capabilities": []}}
EVENT = {"event": "RTC_CHANGE", "data": {"offset": 0}, "timestamp": {"seconds": 1}}

# A handler gets each request and returns the raw bytes to send back.
Handler = Callable[[dict[str, Any]], bytes]


def line(message: object) -> bytes:
    return json.dumps(message).encode() + b"\r\n"


def answer(request: dict[str, Any], value: object) -> bytes:
    reply: dict[str, Any] = {"return": value}
    if "id" in request:
        reply["id"] = request["id"]
    return line(reply)


def default_handler(request: dict[str, Any]) -> bytes:
    if request["execute"] == "qmp_capabilities":
        return answer(request, {})
    if request["execute"] == "query-status":
        return line(EVENT) + answer(request, {"status": "running", "running": True})
    if request["execute"] == "echo":
        return answer(request, request.get("arguments"))
    if request["execute"] == "query-list":
        return answer(request, [1, 2])
    return line(
        {
            "error": {
                "class": "CommandNotFound",
                "desc": f"The command {request['execute']} has not been found",
            },
            "id": request.get("id"),
        }
    )


class FakeQmp:
    """A one-connection-at-a-time QMP server in a thread, recording what it received."""

    def __init__(self, path: Path, handler: Handler, greeting: bytes | None) -> None:
        self.path = path
        self.handler = handler
        self.greeting = greeting
        self.requests: list[dict[str, Any]] = []
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(1)
        self.server.settimeout(0.1)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(0.1)
                if self.greeting is not None:
                    conn.sendall(self.greeting)
                buffer = b""
                while not self.stopping.is_set():
                    try:
                        chunk = conn.recv(4096)
                    except TimeoutError:
                        continue
                    except OSError:
                        break
                    if not chunk:
                        break
                    buffer += chunk
                    while b"\n" in buffer:
                        raw, buffer = buffer.split(b"\n", 1)
                        request = json.loads(raw)
                        self.requests.append(request)
                        reply = self.handler(request)
                        if reply == b"CLOSE":
                            return
                        conn.sendall(reply)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.server.close()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A folder with a short path (unix socket paths are limited)."""
    folder = Path(tempfile.mkdtemp(prefix="lkqemu-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def serve(short_dir: Path) -> Iterator[Callable[..., FakeQmp]]:
    servers: list[FakeQmp] = []

    def start(
        handler: Handler = default_handler, greeting: bytes | None = line(GREETING)
    ) -> FakeQmp:
        server = FakeQmp(short_dir / f"qmp{len(servers)}.sock", handler, greeting)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def test_greeting_and_capabilities(serve: Callable[..., FakeQmp]) -> None:
    server = serve()
    with QmpClient(server.path, timeout=2) as qmp:
        assert qmp.greeting == GREETING
        assert qmp.execute("query-status") == {"status": "running", "running": True}
    assert [r["execute"] for r in server.requests] == ["qmp_capabilities", "query-status"]
    assert all(isinstance(r["id"], str) for r in server.requests)
    assert len({r["id"] for r in server.requests}) == 2


def test_arguments_and_list_results(serve: Callable[..., FakeQmp]) -> None:
    server = serve()
    with QmpClient(server.path, timeout=2) as qmp:
        assert qmp.execute("echo", {"a": [1, "b"]}) == {"a": [1, "b"]}
        assert qmp.execute("query-list") == [1, 2]
    assert "arguments" not in server.requests[0]
    assert server.requests[1]["arguments"] == {"a": [1, "b"]}


def test_error_reply(serve: Callable[..., FakeQmp]) -> None:
    server = serve()
    with QmpClient(server.path, timeout=2) as qmp:
        with pytest.raises(QmpError) as info:
            qmp.execute("nope")
        assert info.value.error_class == "CommandNotFound"
        assert str(info.value) == (
            "QMP command 'nope' failed: The command nope has not been found (CommandNotFound)"
        )
        assert isinstance(info.value, HypervisorError)
        # the connection is still usable after an error reply
        assert qmp.execute("query-status")["status"] == "running"


def test_events_and_foreign_replies_are_skipped(serve: Callable[..., FakeQmp]) -> None:
    def handler(request: dict[str, Any]) -> bytes:
        return (
            line(EVENT)
            + b"\r\n"
            + line({"return": "stale", "id": "other"})
            + line(EVENT)
            + answer(request, {"ok": True})
        )

    server = serve(handler)
    with QmpClient(server.path, timeout=2) as qmp:
        assert qmp.execute("anything") == {"ok": True}


def test_messages_split_across_reads(serve: Callable[..., FakeQmp], short_dir: Path) -> None:
    # The greeting arrives byte by byte.
    path = short_dir / "slow.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)

    def slow() -> None:
        conn, _ = listener.accept()
        with conn:
            for byte in line(GREETING):
                conn.sendall(bytes([byte]))
            request = json.loads(conn.makefile("rb").readline())
            reply = answer(request, {})
            conn.sendall(reply[:5])
            time.sleep(0.05)
            conn.sendall(reply[5:])
            time.sleep(0.2)

    thread = threading.Thread(target=slow, daemon=True)
    thread.start()
    try:
        with QmpClient(path, timeout=2) as qmp:
            assert "QMP" in qmp.greeting
    finally:
        thread.join(5)
        listener.close()


def test_timeout_waiting_for_greeting(serve: Callable[..., FakeQmp]) -> None:
    server = serve(greeting=None)
    started = time.monotonic()
    with pytest.raises(QmpError, match="timed out waiting for the greeting"):
        QmpClient(server.path, timeout=0.3).connect()
    assert time.monotonic() - started < 2


def test_timeout_waiting_for_a_reply(serve: Callable[..., FakeQmp]) -> None:
    def handler(request: dict[str, Any]) -> bytes:
        if request["execute"] == "qmp_capabilities":
            return answer(request, {})
        return line(EVENT)  # events only, never the reply

    server = serve(handler)
    with QmpClient(server.path, timeout=0.3) as qmp:
        started = time.monotonic()
        with pytest.raises(QmpError, match="timed out waiting for the reply to 'query-status'"):
            qmp.execute("query-status")
        assert time.monotonic() - started < 2


def test_no_socket(short_dir: Path) -> None:
    with pytest.raises(QmpError, match=r"no QMP socket at .*\(is the VM running\?\)"):
        QmpClient(short_dir / "missing.sock", timeout=1).connect()


def test_connection_refused(short_dir: Path) -> None:
    # A socket file nobody listens on (what a dead QEMU leaves behind).
    path = short_dir / "stale.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()
    with pytest.raises(QmpError, match="refused the connection"):
        QmpClient(path, timeout=1).connect()


def test_path_too_long(short_dir: Path) -> None:
    with pytest.raises(QmpError, match="cannot connect"):
        QmpClient(short_dir / ("x" * 200), timeout=1).connect()


def test_server_closes_the_connection(serve: Callable[..., FakeQmp]) -> None:
    def handler(request: dict[str, Any]) -> bytes:
        return answer(request, {}) if request["execute"] == "qmp_capabilities" else b"CLOSE"

    server = serve(handler)
    closed = "closed while waiting for the reply to 'quit'"
    with QmpClient(server.path, timeout=2) as qmp, pytest.raises(QmpError, match=closed):
        qmp.execute("quit")


@pytest.mark.parametrize(
    "greeting",
    [b"not json\n", b"[1, 2]\n", line({"hello": 1})],
    ids=["malformed", "not-an-object", "not-qmp"],
)
def test_bad_greetings(serve: Callable[..., FakeQmp], greeting: bytes) -> None:
    server = serve(greeting=greeting)
    with pytest.raises(QmpError, match="QMP"):
        QmpClient(server.path, timeout=1).connect()


def test_not_connected_and_double_connect(serve: Callable[..., FakeQmp]) -> None:
    server = serve()
    qmp = QmpClient(server.path, timeout=1)
    with pytest.raises(QmpError, match="not connected"):
        qmp.execute("query-status")
    qmp.connect()
    with pytest.raises(QmpError, match="already connected"):
        qmp.connect()
    qmp.close()
    qmp.close()


def test_request_shutdown_sends_system_powerdown(short_dir: Path) -> None:
    def powerdown(request: dict[str, Any]) -> bytes:
        return answer(request, {})

    server = FakeQmp(qmp_socket_path(short_dir), powerdown, line(GREETING))
    try:
        QemuHypervisor().request_shutdown(Container(id="abcd1234", image="/x"), short_dir)
        assert [r["execute"] for r in server.requests] == ["qmp_capabilities", "system_powerdown"]
    finally:
        server.stop()


def test_request_shutdown_reports_error_replies(short_dir: Path) -> None:
    def handler(request: dict[str, Any]) -> bytes:
        if request["execute"] == "qmp_capabilities":
            return answer(request, {})
        return line({"error": {"class": "GenericError", "desc": "no"}, "id": request["id"]})

    server = FakeQmp(qmp_socket_path(short_dir), handler, line(GREETING))
    try:
        with pytest.raises(HypervisorError, match="cannot ask container abcd1234 to shut down"):
            QemuHypervisor().request_shutdown(Container(id="abcd1234", image="/x"), short_dir)
    finally:
        server.stop()


# -- real QEMU -------------------------------------------------------------------------------

QEMU = shutil.which("qemu-system-x86_64")
needs_qemu = pytest.mark.skipif(QEMU is None, reason="qemu-system-x86_64 is not installed")


def wait_for(path: Path, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"QEMU exited with {proc.returncode}: {err.decode(errors='replace')}")
        if time.monotonic() > deadline:
            pytest.fail(f"{path} did not appear")
        time.sleep(0.05)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def qemu_process() -> Iterator[Callable[[list[str]], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(argv: list[str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


@needs_qemu
def test_real_qemu_without_boot_media(
    short_dir: Path, qemu_process: Callable[[list[str]], subprocess.Popen[bytes]]
) -> None:
    assert QEMU is not None
    socket_path = qmp_socket_path(short_dir)
    full = build_argv(
        make_options(runtime_dir=short_dir, console_log=short_dir / "console.log"),
        binary=QEMU,
        accel="tcg",
    )
    # Only the QMP bits of our argv, on an otherwise empty machine.
    start = full.index(f"socket,id=qmp,path={socket_path},server=on,wait=off") - 1
    qmp_bits = full[start : start + 4]
    assert qmp_bits[0] == "-chardev"
    assert qmp_bits[2:] == ["-mon", "chardev=qmp,mode=control"]
    proc = qemu_process(
        [QEMU, "-machine", "q35", "-accel", "tcg", "-display", "none", "-nodefaults", *qmp_bits]
    )
    wait_for(socket_path, proc)
    with QmpClient(socket_path, timeout=10) as qmp:
        assert qmp.greeting["QMP"]["version"]["qemu"]["major"] >= 6
        status = qmp.execute("query-status")
        assert status["status"] in ("running", "prelaunch")
        assert qmp.execute("system_powerdown") == {}
        with pytest.raises(QmpError) as info:
            qmp.execute("no-such-command")
        assert info.value.error_class == "CommandNotFound"
        assert qmp.execute("quit") == {}
    assert proc.wait(20) == 0


@needs_qemu
@pytest.mark.parametrize("fmt", ["iso", "raw", "qcow2", "vmdk"])
def test_real_qemu_accepts_the_full_argv(
    fmt: str,
    short_dir: Path,
    qemu_process: Callable[[list[str]], subprocess.Popen[bytes]],
) -> None:
    # Every feature at once, with commas and spaces in every user path. The
    # media holds no OS (the firmware finds nothing to boot); what matters is
    # that QEMU parses and honours the command line.
    assert QEMU is not None
    odd = short_dir / "a, b,,c"
    odd.mkdir()
    image = odd / f"disk, 1.{fmt}"
    if fmt == "iso":
        image.write_bytes(b"\0" * 65536)
    else:
        subprocess.run(["qemu-img", "create", "-q", "-f", fmt, str(image), "1M"], check=True)
    metadata = odd / "meta, data.iso"
    metadata.write_bytes(b"\0" * 65536)
    volume = odd / "vol, 1"
    volume.mkdir()
    runtime = short_dir / "r,1"
    runtime.mkdir()
    console = odd / "console, log"
    ssh_port, tcp_port, udp_port = free_port(), free_port(), free_port(socket.SOCK_DGRAM)
    options = make_options(
        id="c0ffee00",
        image=image,
        format=fmt,
        console_log=console,
        runtime_dir=runtime,
        memory=64,
        ssh_port=ssh_port,
        ports=(
            PortMapping(tcp_port, 80),
            PortMapping(udp_port, 53, "127.0.0.1", Protocol.UDP),
        ),
        volumes=(
            VolumeMapping(str(volume), "/v", True, "tag,1"),
            VolumeMapping(str(volume), "/w", False, ""),
        ),
        metadata_iso=metadata,
    )
    argv = QemuHypervisor(environ={"LK_QEMU": QEMU}).build_command(options)
    argv[argv.index("-accel") + 1] = "tcg"
    argv[argv.index("-cpu") + 1] = "max"
    proc = qemu_process(argv)
    socket_path = qmp_socket_path(runtime)
    wait_for(socket_path, proc)
    with QmpClient(socket_path, timeout=10) as qmp:
        assert qmp.execute("query-status")["running"] is True
        assert qmp.execute("query-name") == {"name": "lk-c0ffee00"}
        blocks = {b["device"] or b["qdev"]: b for b in qmp.execute("query-block")}
        files = {b["inserted"]["file"] for b in blocks.values() if "inserted" in b}
        assert files == {str(image), str(metadata)}
        usernet = qmp.execute("human-monitor-command", {"command-line": "info usernet"})
        forwards = sorted(
            tuple(row.split()[0:1] + row.split()[2:6])
            for row in usernet.splitlines()
            if "HOST_FORWARD" in row
        )
        assert forwards == sorted(
            [
                ("TCP[HOST_FORWARD]", "127.0.0.1", str(ssh_port), "10.0.2.15", "22"),
                ("TCP[HOST_FORWARD]", "127.0.0.1", str(tcp_port), "10.0.2.15", "80"),
                ("UDP[HOST_FORWARD]", "127.0.0.1", str(udp_port), "10.0.2.15", "53"),
            ]
        )
        pid = int((runtime / "qemu.pid").read_text().strip())
        assert pid == proc.pid
    # the forwards listen on loopback only
    with socket.create_connection(("127.0.0.1", ssh_port), timeout=5):
        pass
    assert console.exists()
    QemuHypervisor().request_shutdown(Container(id="c0ffee00", image=str(image)), runtime)
    with QmpClient(socket_path, timeout=10) as qmp:
        qmp.execute("quit")
    assert proc.wait(20) == 0
    assert not (runtime / "qemu.pid").exists()


@needs_qemu
def test_real_qemu_kernel_path_with_commas_is_used_verbatim(
    short_dir: Path, qemu_process: Callable[[list[str]], subprocess.Popen[bytes]]
) -> None:
    # QEMU opens -kernel's value as given: the error names the whole path.
    assert QEMU is not None
    folder = short_dir / "k, 1"
    folder.mkdir()
    (folder / "lk-kernel").write_bytes(b"not a kernel" * 100)
    (folder / "lk-initrd.img").write_bytes(b"x")
    argv = QemuHypervisor(environ={"LK_QEMU": QEMU, "LK_QEMU_ACCEL": "tcg"}).build_command(
        make_options(
            format="kernel+initrd",
            image=folder / "lk",
            runtime_dir=short_dir,
            console_log=short_dir / "c.log",
            memory=64,
        )
    )
    proc = qemu_process(argv)
    _, err = proc.communicate(timeout=30)
    # Reached the kernel loader: both files were opened under their real names
    # (a doubled comma would have made it "could not open kernel file").
    assert proc.returncode == 1
    assert b"could not open" not in err.lower()
    assert err.startswith(b"qemu: linux kernel too old") or b"kernel header" in err


@needs_qemu
def test_real_qemu_rejects_what_we_never_emit(short_dir: Path) -> None:
    # The reference's defect: -nographic with -serial stdio cannot start.
    assert QEMU is not None
    result = subprocess.run(
        [QEMU, "-nographic", "-serial", "stdio", "-S"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert os.environ.get("LK_NEVER") is None
