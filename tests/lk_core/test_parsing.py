"""Tests for lk_core.ports, lk_core.volumes and lk_core.units."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from lk_core.errors import LkError, NotFoundError, UsageError
from lk_core.model import PortMapping, Protocol, VolumeMapping
from lk_core.ports import check_ports_free, free_port, parse_port, port_is_free
from lk_core.units import parse_memory
from lk_core.volumes import assign_tags, parse_volume

# -- ports ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("8080:80", PortMapping(8080, 80, "127.0.0.1", Protocol.TCP)),
        ("0.0.0.0:8080:80/udp", PortMapping(8080, 80, "0.0.0.0", Protocol.UDP)),
        ("127.0.0.2:1:2", PortMapping(1, 2, "127.0.0.2", Protocol.TCP)),
        ("8080:80/tcp", PortMapping(8080, 80)),
        ("8080:80/UDP", PortMapping(8080, 80, "127.0.0.1", Protocol.UDP)),
        ("65535:65535", PortMapping(65535, 65535)),
        (" 2222:22 ", PortMapping(2222, 22)),
    ],
)
def test_parse_port(spec: str, expected: PortMapping) -> None:
    result = parse_port(spec)
    assert result == expected
    assert isinstance(result.protocol, Protocol)


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("80", "expected"),
        ("a:b", "is not a port"),
        ("0:80", "is not a port"),
        ("80:0", "is not a port"),
        ("70000:80", "is not a port"),
        ("80:65536", "is not a port"),
        ("-1:80", "is not a port"),
        ("::1:80:80", "expected"),
        ("1:2/sctp", "protocol"),
        ("1:2:3:4", "expected"),
        ("localhost:80:80", "IPv4"),
        ("300.1.1.1:80:80", "IPv4"),
        (":80", "is not a port"),
        ("", "expected"),
    ],
)
def test_parse_port_errors(spec: str, why: str) -> None:
    with pytest.raises(UsageError) as excinfo:
        parse_port(spec)
    message = str(excinfo.value)
    assert why in message
    assert repr(spec.strip()) in message or repr(spec) in message
    assert "\n" not in message
    assert excinfo.value.exit_code == 2


def test_parse_port_non_ascii_digits_are_a_usage_error() -> None:
    with pytest.raises(UsageError):
        parse_port("²:80")


@pytest.fixture
def tcp_listener() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


@pytest.fixture
def udp_bound() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def test_busy_tcp_port_is_reported(tcp_listener: int) -> None:
    assert port_is_free("127.0.0.1", tcp_listener) is False
    with pytest.raises(UsageError) as excinfo:
        check_ports_free([PortMapping(tcp_listener, 80)])
    message = str(excinfo.value)
    assert f"127.0.0.1:{tcp_listener}/tcp" in message
    assert "already in use" in message
    assert "\n" not in message


def test_busy_udp_port_is_reported(udp_bound: int) -> None:
    assert port_is_free("127.0.0.1", udp_bound, Protocol.UDP) is False
    with pytest.raises(UsageError, match=f":{udp_bound}/udp is already in use"):
        check_ports_free([PortMapping(udp_bound, 53, protocol=Protocol.UDP)])


def test_free_ports_pass() -> None:
    first = free_port()
    second = free_port(avoid={first})
    assert first != second
    check_ports_free([PortMapping(first, 80), PortMapping(second, 443)])
    # the same host port may be published once for TCP and once for UDP
    check_ports_free([PortMapping(first, 80), PortMapping(first, 80, protocol=Protocol.UDP)])


def test_duplicate_mapping_is_refused() -> None:
    port = free_port()
    with pytest.raises(UsageError, match=f"host port {port}/tcp is published twice"):
        check_ports_free([PortMapping(port, 80), PortMapping(port, 81)])


def test_free_port_is_bindable_and_avoids() -> None:
    avoid: set[int] = set()
    for _ in range(10):
        port = free_port(avoid=avoid)
        assert port not in avoid
        assert 1 <= port <= 65535
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))
        avoid.add(port)


def test_free_port_gives_up_when_everything_is_avoided() -> None:
    with pytest.raises(UsageError, match="could not find a free TCP port"):
        free_port(avoid=range(65536))


# -- volumes -------------------------------------------------------------------------


def test_parse_volume_existing_dir(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    vol = parse_volume(f"{tmp_path / 'data'}:/data")
    assert vol == VolumeMapping(str(tmp_path / "data"), "/data", False, "")


def test_parse_volume_relative_host_path_becomes_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    vol = parse_volume("./data:/srv/data:ro")
    assert vol.host_path == str(tmp_path / "data")
    assert os.path.isabs(vol.host_path)
    assert vol.guest_path == "/srv/data"
    assert vol.read_only is True


def test_parse_volume_tilde(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "share").mkdir()
    assert parse_volume("~/share:/share").host_path == str(tmp_path / "share")


def test_parse_volume_ro_and_rw(tmp_path: Path) -> None:
    assert parse_volume(f"{tmp_path}:/x:ro").read_only is True
    assert parse_volume(f"{tmp_path}:/x:rw").read_only is False


def test_parse_volume_missing_host_path(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="does not exist") as excinfo:
        parse_volume(f"{tmp_path / 'missing'}:/data")
    assert "missing" in str(excinfo.value)


def test_parse_volume_host_file_is_not_a_dir(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(UsageError, match="not a directory"):
        parse_volume(f"{tmp_path / 'file.txt'}:/data")


@pytest.mark.parametrize(
    ("suffix", "why"),
    [
        (":data", "must be absolute"),
        (":relative/path", "must be absolute"),
        (":/a:ro:extra", "expected HOST_DIR:GUEST_PATH"),
        (":/a:b:c", "expected HOST_DIR:GUEST_PATH"),
        (":/a:xx", "expected HOST_DIR:GUEST_PATH"),
        ("", "expected HOST_DIR:GUEST_PATH"),
        (":", "expected HOST_DIR:GUEST_PATH"),
    ],
)
def test_parse_volume_syntax_errors(tmp_path: Path, suffix: str, why: str) -> None:
    with pytest.raises(UsageError, match=why) as excinfo:
        parse_volume(f"{tmp_path}{suffix}")
    assert "\n" not in str(excinfo.value)


def test_parse_volume_empty_host() -> None:
    with pytest.raises(UsageError):
        parse_volume(":/data")


def test_assign_tags_unique_and_ordered() -> None:
    vols = [VolumeMapping(f"/h{i}", f"/g{i}", i % 2 == 0) for i in range(5)]
    tagged = assign_tags(vols)
    assert isinstance(tagged, tuple)
    assert [v.tag for v in tagged] == [f"lkvol{i}" for i in range(5)]
    assert [(v.host_path, v.guest_path, v.read_only) for v in tagged] == [
        (v.host_path, v.guest_path, v.read_only) for v in vols
    ]
    assert assign_tags([]) == ()


@pytest.mark.parametrize(("first", "second"), [("/data", "/data"), ("/data", "/data/")])
def test_assign_tags_refuses_duplicate_guest_paths(first: str, second: str) -> None:
    with pytest.raises(UsageError, match="same guest path /data"):
        assign_tags([VolumeMapping("/a", first), VolumeMapping("/b", second)])


# -- memory --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "mb"),
    [
        ("1024", 1024),
        ("512M", 512),
        ("512m", 512),
        ("2G", 2048),
        ("1.5g", 1536),
        ("2GiB", 2048),
        ("2gb", 2048),
        ("512MB", 512),
        ("16", 16),
        ("16384K", 16),
        ("1T", 1024 * 1024),
        (" 64 ", 64),
        (2048, 2048),
    ],
)
def test_parse_memory(text: str | int, mb: int) -> None:
    assert parse_memory(text) == mb


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("abc", "use MB or a suffix"),
        ("", "use MB or a suffix"),
        ("-5", "use MB or a suffix"),
        ("2X", "use MB or a suffix"),
        ("0", "at least 16 MB"),
        ("10", "at least 16 MB"),
        ("15", "at least 16 MB"),
        ("1K", "at least 16 MB"),
        (8, "at least 16 MB"),
    ],
)
def test_parse_memory_errors(text: str | int, why: str) -> None:
    with pytest.raises(UsageError, match=why) as excinfo:
        parse_memory(text)
    assert "\n" not in str(excinfo.value)
    assert isinstance(excinfo.value, LkError)
