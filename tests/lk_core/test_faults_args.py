"""Issue 15, faults 7 and 8: messages for -p, -v, --ssh-key, --memory and --cpus."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lk_core.errors import NotFoundError, PathArgumentNotFoundError, UsageError
from lk_core.model import PortMapping
from lk_core.ports import check_ports_free, parse_port
from lk_core.ssh_keys import check_ssh_key_path
from lk_core.volumes import parse_volume

from lk_core import host

# -- ports -----------------------------------------------------------------------------


def test_foreign_host_address_is_not_a_port_in_use() -> None:
    mapping = parse_port("1.2.3.4:18080:80")
    with pytest.raises(UsageError) as info:
        check_ports_free([mapping])
    message = str(info.value)
    assert "1.2.3.4 is not a local address of this host" in message
    assert "in use" not in message


@pytest.mark.parametrize(
    ("spec", "fixed"),
    [
        ("8080:80:tcp", "8080:80/tcp"),
        ("8080:80:UDP", "8080:80/udp"),
        ("127.0.0.1:8080:80:tcp", "127.0.0.1:8080:80/tcp"),
    ],
)
def test_protocol_after_a_colon_is_explained(spec: str, fixed: str) -> None:
    with pytest.raises(UsageError, match=f"the protocol goes after a slash, e.g. {fixed}$"):
        parse_port(spec)


def test_local_addresses_still_work() -> None:
    check_ports_free([PortMapping(host_port=0, guest_port=80, host_ip="127.0.0.1")])


# -- volumes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "guest", ["/", "/proc", "/proc/sys", "/sys", "/sys/fs", "/dev", "/dev/shm", "/proc/", "//"]
)
def test_reserved_guest_paths_are_refused(tmp_path: Path, guest: str) -> None:
    with pytest.raises(UsageError, match="cannot mount over"):
        parse_volume(f"{tmp_path}:{guest}")


@pytest.mark.parametrize(
    ("guest", "normal"),
    [
        ("/data/", "/data"),
        ("/data//x", "/data/x"),
        ("/data/./x", "/data/x"),
        ("/data/../x", "/x"),
        ("/./data", "/data"),
        ("//data", "/data"),
    ],
)
def test_guest_path_must_be_normalised(tmp_path: Path, guest: str, normal: str) -> None:
    with pytest.raises(UsageError, match="not normalised") as info:
        parse_volume(f"{tmp_path}:{guest}")
    assert repr(normal) in str(info.value)


@pytest.mark.parametrize("guest", ["/data", "/srv/www", "/devices", "/process", "/system"])
def test_ordinary_guest_paths_are_accepted(tmp_path: Path, guest: str) -> None:
    assert parse_volume(f"{tmp_path}:{guest}:ro").guest_path == guest


def test_missing_host_folder_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(PathArgumentNotFoundError) as info:
        parse_volume(f"{tmp_path / 'missing'}:/data")
    assert info.value.exit_code == 2
    assert isinstance(info.value, NotFoundError)


# -- --ssh-key -------------------------------------------------------------------------


def test_public_key_points_to_the_private_one(tmp_path: Path) -> None:
    (tmp_path / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    (tmp_path / "id_ed25519.pub").write_text("ssh-ed25519 AAAA me\n")
    with pytest.raises(UsageError) as info:
        check_ssh_key_path(tmp_path / "id_ed25519.pub")
    message = str(info.value)
    assert "is a public key" in message
    assert f"--ssh-key {tmp_path / 'id_ed25519'}" in message


def test_public_key_without_private_one(tmp_path: Path) -> None:
    (tmp_path / "some.pub").write_text("ssh-ed25519 AAAA me\n")
    with pytest.raises(UsageError, match="is a public key: give the private key"):
        check_ssh_key_path(tmp_path / "some.pub")


def test_public_key_content_without_pub_name(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("ecdsa-sha2-nistp256 AAAA me\n")
    with pytest.raises(UsageError, match="is a public key"):
        check_ssh_key_path(tmp_path / "key")


def test_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is a directory"):
        check_ssh_key_path(tmp_path)
    (tmp_path / "id_ed25519").write_text("x")
    with pytest.raises(UsageError, match=f"e.g. --ssh-key {tmp_path / 'id_ed25519'}"):
        check_ssh_key_path(tmp_path)


def test_missing_key(tmp_path: Path) -> None:
    with pytest.raises(PathArgumentNotFoundError, match="SSH key not found"):
        check_ssh_key_path(tmp_path / "nope")


def test_private_key_passes(tmp_path: Path) -> None:
    (tmp_path / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    check_ssh_key_path(tmp_path / "id_ed25519")


# -- --memory / --cpus -------------------------------------------------------------------


def test_host_limits_say_what_the_host_has(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    values = {"SC_PHYS_PAGES": 23 * 1024 * 256 + 100, "SC_PAGE_SIZE": 4096}
    monkeypatch.setattr(os, "sysconf", lambda name: values[name])
    with pytest.raises(UsageError) as info:
        host.check_host_limits(1048576, 1)
    assert str(info.value) == "--memory 1048576 MB is more than this host's 23 GiB of memory"
    assert info.value.exit_code == 2
    with pytest.raises(UsageError) as info:
        host.check_host_limits(1024, 1000)
    assert str(info.value) == "--cpus 1000 is more than this host's 2 CPUs"
    host.check_host_limits(1024, 2)


def test_host_limits_on_the_real_host() -> None:
    host.check_host_limits(16, 1)
    with pytest.raises(UsageError):
        host.check_host_limits(1 << 40, 1)
    with pytest.raises(UsageError):
        host.check_host_limits(16, 100000)


def test_unknown_host_limits_are_not_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: None)

    def unsupported(name: str) -> int:
        raise ValueError(name)

    monkeypatch.setattr(os, "sysconf", unsupported)
    host.check_host_limits(1 << 40, 100000)
