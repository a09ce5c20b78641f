from __future__ import annotations

import pytest
from lk_core.errors import UsageError
from lk_libvirt.uri import parse_uri


def test_local_system() -> None:
    uri = parse_uri("qemu:///system")
    assert (uri.driver, uri.transport, uri.host, uri.port, uri.path) == (
        "qemu",
        "",
        "",
        0,
        "/system",
    )
    assert not uri.is_remote
    assert not uri.is_session
    assert uri.probe_address is None


def test_ssh_session_with_key() -> None:
    uri = parse_uri("qemu+ssh://lkremote@127.0.0.1:2299/session?keyfile=/run/k%20ey&no_verify=1")
    assert uri.transport == "ssh"
    assert uri.user == "lkremote"
    assert uri.host == "127.0.0.1"
    assert uri.port == 2299
    assert uri.is_remote
    assert uri.is_session
    assert uri.keyfile == "/run/k ey"
    assert uri.param("no_verify") == "1"
    assert uri.probe_address == ("127.0.0.1", 2299)


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("qemu+ssh://host/system", ("host", 22)),
        ("qemu+libssh://u@host/system?sshauth=privkey", ("host", 22)),
        ("qemu+tcp://10.0.0.1/system", ("10.0.0.1", 16509)),
        ("qemu+tls://host.example/system", ("host.example", 16514)),
        ("qemu://host.example/system", ("host.example", 16514)),
        ("qemu+ssh://[::1]:2222/system", ("::1", 2222)),
    ],
)
def test_probe_address(text: str, address: tuple[str, int]) -> None:
    assert parse_uri(text).probe_address == address


def test_unix_transport_is_local() -> None:
    uri = parse_uri("qemu+unix:///system?socket=/tmp/sock")
    assert not uri.is_remote
    assert uri.param("socket") == "/tmp/sock"


def test_with_param_appends_once() -> None:
    uri = parse_uri("qemu+ssh://h/system")
    once = uri.with_param("no_tty", "1")
    assert str(once) == "qemu+ssh://h/system?no_tty=1"
    assert once.with_param("no_tty", "0") == once
    assert str(parse_uri("qemu+ssh://h/system?a=b").with_param("no_tty", "1")).endswith(
        "?a=b&no_tty=1"
    )


@pytest.mark.parametrize(
    "text", ["", "system", "/var/run/libvirt", "qemu+carrier://h/system", "qemu+ssh://h:99999/x"]
)
def test_invalid(text: str) -> None:
    with pytest.raises(UsageError, match="invalid libvirt URI"):
        parse_uri(text)
