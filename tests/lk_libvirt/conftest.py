"""Fixtures for lk-libvirt's integration tests: a system connection, the "remote" session URI.

They skip (with the reason) when libvirt-python is missing, when no system libvirtd answers
(start it with ``sudo bash scripts/libvirt-up.sh``) or when the remote host is not up
(``sudo bash scripts/remote-host.sh up``; or set ``LK_LIBVIRT_REMOTE_URI``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_SOCKET = "/run/libvirt/libvirt-sock"
REMOTE_URIS = Path(os.environ.get("LK_REMOTE_RUN", "/run/lk-test-remote")) / "uris"


try:
    import lk_libvirt  # noqa: F401
except ImportError:  # lk-libvirt is not installed in this environment: nothing to test
    collect_ignore_glob = ["test_*.py"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "libvirt: needs a running libvirt daemon (scripts/libvirt-up.sh), boots VMs"
    )


def _bindings() -> None:
    try:
        import libvirt  # noqa: F401
    except ImportError:
        pytest.skip("libvirt-python is not installed (pip install libvirt-python)")


@pytest.fixture(scope="session")
def test_iso() -> Path:
    """The test image's ISO (built from Debian packages, cached)."""
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed")
    result = subprocess.run(
        ["bash", str(ROOT / "tests" / "images" / "build.sh")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode != 0:
        pytest.fail(f"building the test image failed:\n{result.stderr[-3000:]}")
    return Path(result.stdout.strip().splitlines()[-1]) / "lk-test.iso"


@pytest.fixture
def system_conn() -> Iterator[Any]:
    """A connection to qemu:///system, or a skip saying why there is none."""
    _bindings()
    if not os.path.exists(SYSTEM_SOCKET):
        pytest.skip(f"no libvirtd socket {SYSTEM_SOCKET}: run sudo bash scripts/libvirt-up.sh")
    from lk_core.errors import HypervisorError
    from lk_libvirt.connection import close_connection, open_connection

    try:
        conn = open_connection("qemu:///system", timeout=30)
    except HypervisorError as error:
        pytest.skip(f"libvirtd does not answer: {error}")
    yield conn
    close_connection(conn)


@pytest.fixture
def remote_uri() -> str:
    """The qemu+ssh session URI of the local "remote host" (scripts/remote-host.sh)."""
    _bindings()
    uri = os.environ.get("LK_LIBVIRT_REMOTE_URI", "")
    if not uri and REMOTE_URIS.exists():
        uri = REMOTE_URIS.read_text().splitlines()[0]
    if not uri:
        pytest.skip("no remote libvirt host: run sudo bash scripts/remote-host.sh up")
    from lk_core.errors import HypervisorError
    from lk_libvirt.connection import close_connection, open_connection

    try:
        close_connection(open_connection(uri, timeout=30))
    except HypervisorError as error:
        pytest.skip(f"the remote libvirt host does not answer: {error}")
    return uri


def remote_pool_path(uri: str) -> str:
    """A pool folder for the remote user (the "remote" host is this machine)."""
    from lk_libvirt.uri import parse_uri

    configured = os.environ.get("LK_LIBVIRT_REMOTE_POOL", "")
    if configured:
        return configured
    user = parse_uri(uri).user
    try:
        return os.path.join(pwd.getpwnam(user).pw_dir, "lk-test-pool")
    except KeyError:
        pytest.skip(f"set LK_LIBVIRT_REMOTE_POOL: user {user!r} is not local")
    raise AssertionError("unreachable")
