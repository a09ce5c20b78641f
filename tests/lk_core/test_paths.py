"""Tests for lk_core.paths."""

from __future__ import annotations

import re
import secrets
import stat
import sys
from pathlib import Path

import platformdirs
import pytest

from lk_core import paths


def all_paths() -> dict[str, Path]:
    return {
        "state_dir": paths.default_state_dir(),
        "state_path": paths.default_state_path(),
        "logs_dir": paths.default_logs_dir(),
        "config_dir": paths.default_config_dir(),
        "log_path": paths.log_path("abc12345"),
        "runtime_dir": paths.runtime_dir("abc12345"),
    }


def test_everything_under_lk_home(lk_home: Path) -> None:
    found = all_paths()
    assert found == {
        "state_dir": lk_home,
        "state_path": lk_home / "containers.json",
        "logs_dir": lk_home / "logs",
        "config_dir": lk_home / "config",
        "log_path": lk_home / "logs" / "abc12345.log",
        "runtime_dir": lk_home / "run" / "abc12345",
    }
    assert paths.lk_home() == lk_home


def test_relative_lk_home_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LK_HOME", "rel/home")
    assert paths.lk_home() == tmp_path / "rel" / "home"
    assert paths.default_state_path() == tmp_path / "rel" / "home" / "containers.json"


def test_tilde_in_lk_home_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("LK_HOME", "~/lkdata")
    assert paths.lk_home() == tmp_path / "lkdata"


@pytest.fixture
def platform_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No LK_HOME; HOME and the XDG variables all point into tmp_path."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.delenv("LK_HOME", raising=False)
    monkeypatch.setenv("HOME", str(home))
    for var, sub in (
        ("XDG_STATE_HOME", "xdg-state"),
        ("XDG_CONFIG_HOME", "xdg-config"),
        ("XDG_DATA_HOME", "xdg-data"),
        ("XDG_CACHE_HOME", "xdg-cache"),
    ):
        monkeypatch.setenv(var, str(tmp_path / sub))
    return tmp_path


@pytest.mark.parametrize("value", [None, "", "   "])
def test_platform_locations_without_lk_home(
    platform_home: Path, monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is not None:
        monkeypatch.setenv("LK_HOME", value)
    assert paths.lk_home() is None
    found = all_paths()
    for name, path in found.items():
        assert path.is_relative_to(platform_home), name
    assert found["state_dir"] == Path(platformdirs.user_state_dir("lk", appauthor=False))
    assert found["logs_dir"] == Path(platformdirs.user_log_dir("lk", appauthor=False))
    assert found["config_dir"] == Path(platformdirs.user_config_dir("lk", appauthor=False))
    assert found["state_path"] == found["state_dir"] / "containers.json"
    assert found["log_path"] == found["logs_dir"] / "abc12345.log"
    assert found["runtime_dir"] == found["state_dir"] / "run" / "abc12345"
    if sys.platform.startswith("linux"):
        assert found["state_dir"] == platform_home / "xdg-state" / "lk"
        assert found["config_dir"] == platform_home / "xdg-config" / "lk"
        assert found["logs_dir"].is_relative_to(platform_home / "xdg-state" / "lk")


def test_generate_id_format() -> None:
    seen = {paths.generate_id() for _ in range(200)}
    assert all(re.fullmatch(r"[0-9a-f]{8}", cid) for cid in seen)
    assert len(seen) > 190  # random, not a constant


def test_generate_id_skips_taken_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["deadbeef", "cafef00d", "deadbeef", "0badc0de"])
    calls: list[int] = []

    def fake_token_hex(nbytes: int) -> str:
        calls.append(nbytes)
        return next(answers)

    monkeypatch.setattr(secrets, "token_hex", fake_token_hex)
    assert paths.generate_id({"deadbeef", "cafef00d"}) == "0badc0de"
    assert calls == [4, 4, 4, 4]


def test_generate_id_accepts_any_container_of_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["11111111", "22222222"])
    monkeypatch.setattr(secrets, "token_hex", lambda n: next(answers))
    assert paths.generate_id({"11111111": object()}.keys()) == "22222222"


def test_log_path_ends_with_id_log(lk_home: Path) -> None:
    path = paths.log_path("0123abcd")
    assert path.name == "0123abcd.log"
    assert path.parent == paths.default_logs_dir()
    assert not path.parent.exists()  # computing a path creates nothing


def test_ensure_logs_dir_makes_private_dir(lk_home: Path) -> None:
    logs = paths.ensure_logs_dir()
    assert logs == lk_home / "logs"
    assert logs.is_dir()
    assert stat.S_IMODE(logs.stat().st_mode) == 0o700
    # idempotent; a folder that already exists keeps its mode (lk may not own it)
    assert paths.ensure_logs_dir() == logs
    assert stat.S_IMODE(logs.stat().st_mode) == 0o700
    logs.chmod(0o755)
    assert paths.ensure_logs_dir() == logs
    assert stat.S_IMODE(logs.stat().st_mode) == 0o755


def test_ensure_private_dir_creates_parents(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c"
    assert paths.ensure_private_dir(target) == target
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
