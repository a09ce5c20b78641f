"""The entry-point cache: used while sys.path is unchanged, rebuilt when it changes."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from lk_core.entry_points import EntryPointInfo, entry_points_of

from lk_core import entry_points

GROUP = "lk"


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "entry-points.json"


def test_the_first_call_scans_and_writes_the_cache(cache: Path) -> None:
    found = entry_points_of(GROUP, cache)
    assert found == entry_points.scan(GROUP)
    assert {"json-state", "image-formats", "core-commands"} <= {ep.name for ep in found}
    saved = json.loads(cache.read_text())
    assert [EntryPointInfo(*e) for e in saved["entry_points"]] == found


def test_a_matching_cache_is_used_without_scanning(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = entry_points_of(GROUP, cache)

    def no_scan(group: str) -> list[EntryPointInfo]:
        raise AssertionError("scanned although the cache matches")

    monkeypatch.setattr(entry_points, "scan", no_scan)
    assert entry_points_of(GROUP, cache) == first


def test_a_changed_path_folder_rebuilds_the_cache(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.setattr(sys, "path", [*sys.path, str(site)])
    entry_points_of(GROUP, cache)
    calls: list[str] = []
    real_scan = entry_points.scan

    def counting_scan(group: str) -> list[EntryPointInfo]:
        calls.append(group)
        return real_scan(group)

    monkeypatch.setattr(entry_points, "scan", counting_scan)
    (site / "new_plugin-1.0.dist-info").mkdir()  # what installing a distribution does
    stat = site.stat()
    os.utime(site, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    entry_points_of(GROUP, cache)
    assert calls == [GROUP]
    entry_points_of(GROUP, cache)
    assert calls == [GROUP]  # and the new key is cached again


def test_a_corrupt_cache_is_rebuilt(cache: Path) -> None:
    cache.parent.mkdir(parents=True)
    cache.write_text("{not json")
    assert entry_points_of(GROUP, cache) == entry_points.scan(GROUP)
    json.loads(cache.read_text())


def test_an_unwritable_cache_folder_is_not_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert entry_points_of(GROUP, blocker / "cache.json") == entry_points.scan(GROUP)


def test_load_imports_the_named_object() -> None:
    ep = EntryPointInfo("x", "lk_core.entry_points:EntryPointInfo.load", "", "")
    assert ep.load() is EntryPointInfo.load


def test_writing_in_the_current_folder_does_not_rebuild_the_cache(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # python -m / -c put "" (the current folder) on sys.path; it changes all the time.
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(sys, "path", ["", *sys.path])
    entry_points_of(GROUP, cache)

    def no_scan(group: str) -> list[EntryPointInfo]:
        raise AssertionError("rescanned because the current folder changed")

    monkeypatch.setattr(entry_points, "scan", no_scan)
    (work / "new-file").write_text("x")
    stat = work.stat()
    os.utime(work, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    entry_points_of(GROUP, cache)
