"""Bindings and connection errors: no daemon needed (fake servers on 127.0.0.1)."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from lk_core.errors import HypervisorError
from lk_libvirt.connection import open_connection, probe_tcp

from lk_libvirt import binding

libvirt = pytest.importorskip("libvirt", reason="libvirt-python is not installed")


def test_missing_bindings_give_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(binding, "_module", None)
    monkeypatch.setitem(sys.modules, "libvirt", None)  # makes "import libvirt" fail
    with pytest.raises(HypervisorError) as caught:
        binding.libvirt_module()
    message = str(caught.value)
    assert message.startswith("libvirt bindings are not installed")
    assert "pip install libvirt-python" in message
    assert "\n" not in message


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that accepts connections and never says anything."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_refused_port_fails_at_once() -> None:
    port = _free_port()
    start = time.monotonic()
    with pytest.raises(
        HypervisorError,
        match=rf"cannot connect to qemu\+ssh://u@127.0.0.1:{port}/system: "
        rf"cannot reach 127.0.0.1:{port}: Connection refused",
    ):
        open_connection(f"qemu+ssh://u@127.0.0.1:{port}/system", timeout=5)
    assert time.monotonic() - start < 2


def test_unknown_host() -> None:
    with pytest.raises(HypervisorError, match="unknown host"):
        open_connection("qemu+tcp://no-such-host.invalid/system", timeout=5)


def test_a_daemon_that_never_answers_hits_the_deadline(silent_server: int) -> None:
    start = time.monotonic()
    with pytest.raises(HypervisorError, match=r"no answer within 1\.5 s") as caught:
        open_connection(f"qemu+tcp://127.0.0.1:{silent_server}/system", timeout=1.5)
    assert 1.4 < time.monotonic() - start < 3
    assert "\n" not in str(caught.value)


def test_probe_tcp_reason() -> None:
    port = _free_port()
    with pytest.raises(HypervisorError, match="Connection refused"):
        probe_tcp("127.0.0.1", port, 1)


def test_no_system_daemon_socket() -> None:
    with pytest.raises(HypervisorError, match="no libvirt daemon answers on qemu:///system"):
        open_connection("qemu:///system", timeout=5, system_sockets=("/nonexistent/libvirt-sock",))
