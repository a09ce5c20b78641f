"""Fixtures for the template tests: isolated workspace, LK_HOME and HOME; the CLI; fake linuxkit."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
FAKE_LINUXKIT = HERE / "fake_linuxkit.py"

RunCli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh current directory, LK_HOME and HOME, with only the installed plugins."""
    from lk_core.plugins import set_plugins

    ws = tmp_path / "ws"
    ws.mkdir()
    monkeypatch.chdir(ws)
    monkeypatch.setenv("LK_HOME", str(tmp_path / "lk-home"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("LK_PLUGINS", "LK_DISABLE_PLUGINS", "LK_PLUGIN_MODULES", "LK_LINUXKIT"):
        monkeypatch.delenv(name, raising=False)
    set_plugins(None)
    yield ws
    set_plugins(None)


@pytest.fixture
def user_templates(workspace: Path, tmp_path: Path) -> Path:
    """The user templates folder (``$LK_HOME/config/templates``), created."""
    folder = tmp_path / "lk-home" / "config" / "templates"
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def workspace_templates(workspace: Path) -> Path:
    """``./.lk/templates`` of the workspace, created."""
    folder = workspace / ".lk" / "templates"
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def lk(workspace: Path) -> RunCli:
    """Run ``python -m lk_core ARGS`` in the workspace with the test's environment."""

    def run(
        *args: str, input: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lk_core", *args],
            cwd=workspace,
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})},
        )

    return run


@pytest.fixture(scope="session")
def test_image_dir() -> Path | None:
    """The project's real test image folder (``bash tests/images/build.sh``), or None.

    None when the image cannot be built here (no network, no apt...): the
    fake linuxkit then writes tiny stand-in files instead.
    """
    if os.environ.get("LK_TEST_NO_IMAGE"):
        return None
    try:
        result = subprocess.run(
            ["bash", str(ROOT / "tests" / "images" / "build.sh")],
            capture_output=True,
            text=True,
            timeout=900,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        return None
    folder = Path(lines[-1])
    return folder if (folder / "lk-test.iso").is_file() else None


@pytest.fixture
def fake_linuxkit(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, test_image_dir: Path | None
) -> Path:
    """Install the fake linuxkit as ``$LK_LINUXKIT``; returns the log of its invocations."""
    wrapper = tmp_path / "bin" / "linuxkit"
    wrapper.parent.mkdir(parents=True, exist_ok=True)
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_LINUXKIT}" "$@"\n')
    wrapper.chmod(0o755)
    log = tmp_path / "linuxkit-calls.jsonl"
    monkeypatch.setenv("LK_LINUXKIT", str(wrapper))
    monkeypatch.setenv("FAKE_LINUXKIT_LOG", str(log))
    for name in ("FAKE_LINUXKIT_FAIL", "FAKE_LINUXKIT_NO_OUTPUT", "FAKE_LINUXKIT_SLEEP"):
        monkeypatch.delenv(name, raising=False)
    if test_image_dir is not None:
        monkeypatch.setenv("FAKE_LINUXKIT_IMAGES", str(test_image_dir))
    else:
        monkeypatch.delenv("FAKE_LINUXKIT_IMAGES", raising=False)
    return log


@pytest.fixture
def installed(workspace: Path) -> list[Any]:
    """The installed plugins' template sources (what ``lk templates`` consults)."""
    from lk_core.plugins import get_plugins

    return get_plugins().template_sources()
