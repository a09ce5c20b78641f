"""Fixtures for the Hyperkit plugin tests: a fake hyperkit binary, images, options."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lk_core.model import HypervisorOptions
from lk_hyperkit.hypervisor import HyperkitHypervisor

FAKE_HYPERKIT = Path(__file__).with_name("fake_hyperkit.py")

MakeOptions = Callable[..., HypervisorOptions]
MakeHypervisor = Callable[..., HyperkitHypervisor]


@pytest.fixture
def short_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A short temporary folder (unix socket paths must stay short)."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="lkhk", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def hyperkit_binary(tmp_path: Path) -> Path:
    """An executable called ``hyperkit`` that runs the fake hyperkit with this interpreter."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    binary = bindir / "hyperkit"
    binary.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_HYPERKIT}" "$@"\n')
    binary.chmod(0o755)
    return binary


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty home folder (no Docker for Mac vpnkit socket in it)."""
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def make_hv(hyperkit_binary: Path, home: Path) -> MakeHypervisor:
    """Build a hypervisor that believes it runs on an Intel Mac, with ``hyperkit`` on PATH."""

    def make(
        euid: int = 501, platform: str = "darwin", machine: str = "x86_64", **env: str
    ) -> HyperkitHypervisor:
        environ = {"PATH": str(hyperkit_binary.parent), "HOME": str(home), **env}
        return HyperkitHypervisor(platform=platform, machine=machine, environ=environ, euid=euid)

    return make


@pytest.fixture
def kernel_image(tmp_path: Path) -> Path:
    """LinuxKit kernel+initrd output; returns the ``NAME-kernel`` path."""
    images = tmp_path / "images"
    images.mkdir(exist_ok=True)
    (images / "lk-kernel").write_bytes(b"kernel")
    (images / "lk-initrd.img").write_bytes(b"initrd")
    (images / "lk-cmdline").write_text("console=tty0 page_poison=1\n")
    return images / "lk-kernel"


@pytest.fixture
def firmware(tmp_path: Path) -> Path:
    """A file standing in for hyperkit's UEFI firmware."""
    path = tmp_path / "UEFI.fd"
    path.write_bytes(b"\0" * 16)
    return path


@pytest.fixture
def make_options(tmp_path: Path, kernel_image: Path) -> MakeOptions:
    """Build HypervisorOptions for a kernel+initrd image, with overrides."""
    runtime = tmp_path / "run" / "0123abcd"
    runtime.mkdir(parents=True)
    logs = tmp_path / "logs"
    logs.mkdir()

    def make(**overrides: Any) -> HypervisorOptions:
        values: dict[str, Any] = {
            "id": "0123abcd",
            "image": kernel_image,
            "format": "kernel+initrd",
            "console_log": logs / "0123abcd.log",
            "runtime_dir": runtime,
        }
        values.update(overrides)
        return HypervisorOptions(**values)

    return make


@pytest.fixture
def vpnkit_socket(short_tmp: Path) -> Iterator[Path]:
    """A listening unix socket standing in for vpnkit's ethernet socket."""
    path = short_tmp / "vpnkit.eth.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    try:
        yield path
    finally:
        server.close()
