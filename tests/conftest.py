"""Shared fixtures: an isolated LK_HOME, the fake hypervisor, and running the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

HELPERS = Path(__file__).parent / "helpers"
sys.path.insert(0, str(HELPERS))

RunLk = Callable[..., subprocess.CompletedProcess[str]]


def _kill_leftovers(home: Path) -> None:
    """Stop every process a test's containers left behind (verified identities only)."""
    from lk_core.process import signal_process

    try:
        document = json.loads((home / "containers.json").read_text())
    except (OSError, ValueError):
        return
    for record in (document.get("containers") or {}).values():
        for pid_key, token_key in (
            ("pid", "pid_started"),
            ("supervisor_pid", "supervisor_started"),
        ):
            pid, token = record.get(pid_key) or 0, record.get(token_key) or ""
            signal_process(int(pid), str(token), signal.SIGKILL)


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh, short LK_HOME (unix socket paths must stay short) with the fake hypervisor."""
    from lk_core.plugins import set_plugins

    home = Path(tempfile.mkdtemp(prefix="lk", dir="/tmp"))
    monkeypatch.setenv("LK_HOME", str(home))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(HELPERS), os.environ.get("PYTHONPATH", "")])
    )
    monkeypatch.setenv("LK_PLUGIN_MODULES", "fake_hypervisor")
    monkeypatch.delenv("FAKE_VM_ARGS", raising=False)
    monkeypatch.delenv("LK_PLUGINS", raising=False)
    monkeypatch.delenv("LK_DISABLE_PLUGINS", raising=False)
    set_plugins(None)
    yield home
    set_plugins(None)
    _kill_leftovers(home)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def run_lk(sandbox: Path) -> RunLk:
    """Run the real ``lk`` command line in a subprocess with the test's environment."""

    def run(
        *args: str,
        input: str | None = None,
        timeout: float = 120,
        check: bool = False,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "lk_core", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )
        if check and result.returncode != 0:
            command = " ".join(args)
            raise AssertionError(
                f"lk {command} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    return run


@pytest.fixture
def iso_image(tmp_path: Path) -> Path:
    """A file that lk's detector takes for an ISO (the fake hypervisor boots anything)."""
    path = tmp_path / "image.iso"
    data = bytearray(0x8800)
    data[0x8001:0x8006] = b"CD001"
    path.write_bytes(bytes(data))
    return path
