"""lk-libvirt against real libvirt daemons: boots the test ISO under TCG (one VM at a time)."""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import remote_pool_path
from e2e_support import READY, SHUTDOWN, listening_addresses
from lk_libvirt.connection import close_connection, open_connection
from lk_libvirt.console import Console, read_log_file
from lk_libvirt.domain_xml import DomainSpec, Forward, build_domain_xml, parse_lk_metadata

from lk_libvirt import domains, storage

pytestmark = [pytest.mark.libvirt, pytest.mark.e2e, pytest.mark.slow]

BOOT_TIMEOUT = 120.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ssh_banner(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.settimeout(10)
        return sock.recv(64)


def _cleanup(conn: Any, name: str, pool: Any, volume: str) -> None:
    """Remove what a failed test left (domain, volume, pool); errors are ignored."""
    domain = domains.find_domain(conn, name)
    if domain is not None:
        domains.destroy_domain(domain)
        domains.undefine_domain(domain)
    if pool is not None:
        try:
            storage.delete_volume(pool, volume)
            storage.remove_pool(pool)
        except Exception:
            pass


def test_system_lifecycle(system_conn: Any, test_iso: Path, tmp_path: Path) -> None:
    conn = system_conn
    suffix = uuid.uuid4().hex[:8]
    name, pool_name = f"lk-test-{suffix}", f"lk-test-{suffix}"
    pool_dir = f"/var/lib/libvirt/images/lk-test-{suffix}"
    ssh_port = _free_port()
    serial_log = tmp_path / "serial.log"
    pool = None
    volume_name = storage.volume_name(test_iso)
    try:
        pool = storage.ensure_pool(conn, pool_name, pool_dir)
        upload = storage.upload_volume(conn, pool, test_iso)
        assert upload.uploaded
        assert not storage.upload_volume(conn, pool, test_iso).uploaded

        record = {"id": suffix, "name": "web <&>", "ports": []}
        spec = DomainSpec(
            name=name,
            memory_mb=512,
            image=upload.path,
            image_format="iso",
            serial_log=str(serial_log),
            forwards=(Forward(ssh_port, 22),),
            metadata=record,
        )
        started = time.monotonic()
        domain = domains.define_domain(conn, build_domain_xml(spec))
        assert parse_lk_metadata(domain.XMLDesc(0)) == record
        assert (domain.name(), record) in [(d.name(), m) for d, m in domains.list_lk_domains(conn)]
        domains.start_domain(domain, paused=True)
        assert domains.domain_state(domain) == "paused"
        with Console(conn, domain) as console:
            domains.resume_domain(domain)
            console.wait_for_line(READY, BOOT_TIMEOUT)
            ready = time.monotonic() - started
            print(f"\nsystem: define -> ready {ready:.2f} s")

            assert listening_addresses(ssh_port) == {"127.0.0.1"}
            assert _ssh_banner(ssh_port).startswith(b"SSH-2.0-")

            stopping = time.monotonic()
            assert domains.shutdown_domain(domain, 60), "ACPI shutdown did not power the guest off"
            print(f"system: shutdown -> shutoff {time.monotonic() - stopping:.2f} s")
            assert READY in console.text() and SHUTDOWN in console.text()
        log = read_log_file(serial_log)
        assert READY in log and SHUTDOWN in log
        assert domains.domain_state(domain) == "shutoff"
        assert listening_addresses(ssh_port) == set()

        domains.undefine_domain(domain)
        assert domains.find_domain(conn, name) is None
        assert storage.delete_volume(pool, upload.name)
        assert storage.find_volume(pool, upload.name) is None
        storage.remove_pool(pool)
        pool = None
        assert pool_name not in [p.name() for p in conn.listAllStoragePools(0)]
        assert not Path(pool_dir).exists()
    finally:
        _cleanup(conn, name, pool, volume_name)


def test_remote_session_over_ssh(remote_uri: str, test_iso: Path) -> None:
    started = time.monotonic()
    conn = open_connection(remote_uri, timeout=30)
    print(f"\nremote: connect {time.monotonic() - started:.2f} s")
    suffix = uuid.uuid4().hex[:8]
    name, pool_name = f"lk-test-{suffix}", f"lk-test-{suffix}"
    pool = None
    volume_name = storage.volume_name(test_iso)
    ssh_port = _free_port()
    try:
        pool = storage.ensure_pool(conn, pool_name, remote_pool_path(remote_uri) + f"-{suffix}")
        began = time.monotonic()
        upload = storage.upload_volume(conn, pool, test_iso)
        print(f"remote: upload {upload.size} bytes {time.monotonic() - began:.2f} s")
        assert upload.uploaded
        again = storage.upload_volume(conn, pool, test_iso)
        assert not again.uploaded and again.path == upload.path

        spec = DomainSpec(
            name=name, memory_mb=512, image=upload.path, forwards=(Forward(ssh_port, 22),)
        )
        began = time.monotonic()
        domain = domains.define_domain(conn, build_domain_xml(spec))
        domains.start_domain(domain, paused=True)
        with Console(conn, domain) as console:
            domains.resume_domain(domain)
            console.wait_for_line(READY, BOOT_TIMEOUT)
        print(f"remote: define -> ready {time.monotonic() - began:.2f} s")
        # The "remote" host is this machine: its forward listens here, on loopback only.
        assert listening_addresses(ssh_port) == {"127.0.0.1"}
        assert _ssh_banner(ssh_port).startswith(b"SSH-2.0-")

        domains.destroy_domain(domain)
        assert domains.domain_state(domain) == "shutoff"
        domains.undefine_domain(domain)
        assert domains.find_domain(conn, name) is None
        assert storage.delete_volume(pool, upload.name)
        storage.remove_pool(pool)
        pool = None
        assert pool_name not in [p.name() for p in conn.listAllStoragePools(0)]
    finally:
        _cleanup(conn, name, pool, volume_name)
        close_connection(conn)
