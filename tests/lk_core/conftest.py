"""Fixtures shared by the lk_core unit tests (none of them autouse)."""

from __future__ import annotations

import multiprocessing
import os
import sys
from pathlib import Path

import pytest

PLUGIN_ENV = ("LK_PLUGINS", "LK_DISABLE_PLUGINS", "LK_PLUGIN_MODULES")


@pytest.fixture
def lk_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point ``$LK_HOME`` at a fresh (not yet created) folder under tmp_path."""
    home = tmp_path / "lk-home"
    monkeypatch.setenv("LK_HOME", str(home))
    return home


@pytest.fixture
def clean_plugin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every variable that changes which plugins load."""
    for name in PLUGIN_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def builtin_plugins_only(monkeypatch: pytest.MonkeyPatch, clean_plugin_env: None) -> None:
    """Load only lk-core's own entry points (not lk-qemu or others installed alongside)."""
    monkeypatch.setenv("LK_PLUGINS", "json-state,image-formats,core-commands")


@pytest.fixture
def mp_context() -> multiprocessing.context.BaseContext:
    """A multiprocessing context: fork where it is cheap and safe, else spawn."""
    if sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """An environment for running ``python -m lk_core`` as a subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LK_")}
    env["LK_HOME"] = str(tmp_path / "cli-home")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env
