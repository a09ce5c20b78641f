"""lk_core.progress: an updating line on terminals only, and the bytes-written watcher."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from cli_support import FakeTerminal
from lk_core.progress import ProgressLine, folder_bytes, watching_bytes


def test_the_line_is_redrawn_and_erased_on_a_terminal() -> None:
    stream = FakeTerminal(True)
    line = ProgressLine(stream)  # type: ignore[arg-type]
    line.show("one")
    line.show("two")
    line.clear()
    assert stream.text == "\r\x1b[Kone\r\x1b[Ktwo\r\x1b[K"


@pytest.mark.parametrize(("tty", "enabled"), [(False, True), (True, False)])
def test_nothing_is_written_off_a_terminal_or_when_disabled(tty: bool, enabled: bool) -> None:
    stream = FakeTerminal(tty)
    line = ProgressLine(stream, enabled=enabled)  # type: ignore[arg-type]
    line.show("x")
    line.clear()
    assert stream.text == ""


def test_folder_bytes_counts_files_below(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 10)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b").write_bytes(b"y" * 5)
    assert folder_bytes(tmp_path) == 15
    assert folder_bytes(tmp_path / "missing") == 0


def test_watching_bytes_shows_what_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = FakeTerminal(True)
    monkeypatch.setattr(sys, "stderr", stream)
    with watching_bytes(tmp_path, "saving checkpoint c1"):
        (tmp_path / "state").write_bytes(b"\0" * 3_000_000)
        deadline = time.monotonic() + 5
        while "3 MB written" not in stream.text and time.monotonic() < deadline:
            time.sleep(0.05)
    assert "saving checkpoint c1: 3 MB written" in stream.text
    assert stream.text.endswith("\r\x1b[K")
