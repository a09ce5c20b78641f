"""lk's JSON cache files: unreadable means empty, writes are atomic, failures are quiet."""

from __future__ import annotations

from pathlib import Path

import pytest
from lk_core.cache_files import read_cache, write_cache


@pytest.mark.parametrize("content", [None, "", "{", "[1, 2]", '"text"', "\xff"])
def test_a_missing_or_damaged_cache_reads_as_empty(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "cache.json"
    if content is not None:
        path.write_bytes(content.encode("latin-1"))
    assert read_cache(path) == {}


def test_written_then_read_in_a_new_private_folder(tmp_path: Path) -> None:
    path = tmp_path / "new" / "cache.json"
    write_cache(path, {"key": [1, "two"], "value": None})
    assert read_cache(path) == {"key": [1, "two"], "value": None}
    assert (path.parent.stat().st_mode & 0o777) == 0o700
    write_cache(path, {"key": 3})
    assert read_cache(path) == {"key": 3}
    assert sorted(p.name for p in path.parent.iterdir()) == ["cache.json"]  # no temp file left


def test_a_cache_that_cannot_be_written_is_skipped(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    write_cache(blocker / "cache.json", {"a": 1})  # its folder cannot exist: no error
    target = tmp_path / "cache.json"
    target.mkdir()  # os.replace over a folder fails
    write_cache(target, {"a": 1})
    assert target.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.json", "file"]
