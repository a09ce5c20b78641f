"""Tests for lk_core.logs: read_tail and follow_file on real files."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lk_core.errors import NotFoundError
from lk_core.logs import follow_file, read_tail

from lk_core import logs


def tail(path: Path, lines: int | None = None) -> bytes:
    return b"".join(read_tail(path, lines))


def reference_tail(data: bytes, lines: int | None) -> bytes:
    """The last ``lines`` lines of ``data``, computed the obvious way."""
    if lines is None:
        return data
    if lines <= 0:
        return b""
    parts = data.split(b"\n")
    split = [p + b"\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    return b"".join(split[-lines:])


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "console.log"


# -- read_tail -----------------------------------------------------------------------


def test_whole_file(log: Path) -> None:
    log.write_bytes(b"one\ntwo\nthree\n")
    assert tail(log) == b"one\ntwo\nthree\n"


@pytest.mark.parametrize(
    ("lines", "expected"),
    [(1, b"three\n"), (2, b"two\nthree\n"), (3, b"one\ntwo\nthree\n"), (50, b"one\ntwo\nthree\n")],
)
def test_last_lines_with_trailing_newline(log: Path, lines: int, expected: bytes) -> None:
    log.write_bytes(b"one\ntwo\nthree\n")
    assert tail(log, lines) == expected


@pytest.mark.parametrize(
    ("lines", "expected"),
    [(1, b"three"), (2, b"two\nthree"), (3, b"one\ntwo\nthree"), (4, b"one\ntwo\nthree")],
)
def test_last_lines_without_trailing_newline(log: Path, lines: int, expected: bytes) -> None:
    log.write_bytes(b"one\ntwo\nthree")
    assert tail(log, lines) == expected


def test_zero_lines_gives_nothing(log: Path) -> None:
    log.write_bytes(b"one\ntwo\n")
    assert tail(log, 0) == b""


def test_empty_lines_count(log: Path) -> None:
    log.write_bytes(b"a\n\n\nb\n")
    assert tail(log, 2) == b"\nb\n"
    assert tail(log, 3) == b"\n\nb\n"
    log.write_bytes(b"\n")
    assert tail(log, 1) == b"\n"


def test_empty_file(log: Path) -> None:
    log.write_bytes(b"")
    assert tail(log) == b""
    assert tail(log, 5) == b""


def test_missing_file_is_an_error_naming_it(log: Path) -> None:
    # issue 15: a deleted log is not an empty one
    for lines in (None, 10):
        with pytest.raises(NotFoundError, match="is gone") as info:
            list(read_tail(log, lines))
        assert str(log) in str(info.value)


def test_file_bigger_than_64k(log: Path) -> None:
    data = b"".join(b"console line %06d with some padding text\n" % i for i in range(20000))
    assert len(data) > 10 * 65536
    log.write_bytes(data)
    assert tail(log) == data
    for n in (1, 10, 1500, 1700, 5000, 19999, 20000, 25000):
        assert tail(log, n) == reference_tail(data, n), n
    # whole-file reads come in bounded chunks
    assert max(len(chunk) for chunk in read_tail(log)) <= 65536


def test_long_line_bigger_than_a_block(log: Path) -> None:
    data = b"start\n" + b"x" * 200_000 + b"\nend"
    log.write_bytes(data)
    assert tail(log, 1) == b"end"
    assert tail(log, 2) == b"x" * 200_000 + b"\nend"
    assert tail(log, 3) == data


@settings(max_examples=150, deadline=None)
@given(
    data=st.lists(st.sampled_from([b"a", b"bc", b"\n", b"\n\n", b"xyz\n"]), max_size=40).map(
        b"".join
    ),
    lines=st.one_of(st.none(), st.integers(min_value=0, max_value=25)),
    block=st.integers(min_value=1, max_value=8),
)
def test_tail_matches_reference_across_block_boundaries(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, lines: int | None, block: int
) -> None:
    path = tmp_path_factory.mktemp("tail") / "log"
    path.write_bytes(data)
    saved = logs._BLOCK
    logs._BLOCK = block  # small blocks put newlines on every boundary
    try:
        assert tail(path, lines) == reference_tail(data, lines)
    finally:
        logs._BLOCK = saved


# -- follow_file ---------------------------------------------------------------------


def bounded(flag: Callable[[], bool], seconds: float = 20.0) -> Callable[[], bool]:
    """``flag`` that also turns false after ``seconds`` so a bug cannot hang the suite."""
    deadline = time.monotonic() + seconds
    return lambda: flag() and time.monotonic() < deadline


def test_follow_yields_appended_data_and_drains(log: Path) -> None:
    log.write_bytes(b"old 1\nold 2\nold 3\n")
    seen = threading.Event()
    done = threading.Event()
    received = bytearray()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            # start appending only once the follower has read the initial tail
            assert seen.wait(10), "follower never read the existing content"
            seen.clear()
            for i in range(5):
                with log.open("ab") as handle:
                    handle.write(b"new %d\n" % i)
                # wait until the follower has read it: this is following, not a re-read
                assert seen.wait(10), f"follower never saw line {i}"
                seen.clear()
            with log.open("ab") as handle:
                handle.write(b"last words\n")
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    lines_seen = 0
    for chunk in follow_file(log, 1, bounded(lambda: not done.is_set()), poll=0.01):
        received += chunk
        now = received.count(b"\n")
        if now > lines_seen:
            lines_seen = now
            seen.set()
    thread.join(10)
    assert not errors
    assert bytes(received) == b"old 3\n" + b"".join(b"new %d\n" % i for i in range(5)) + (
        b"last words\n"
    )


def test_follow_drains_data_written_just_before_stop(log: Path) -> None:
    log.write_bytes(b"boot\n")
    calls = 0

    def keep_going() -> bool:
        nonlocal calls
        calls += 1
        # the VM writes its final output and exits between two checks
        with log.open("ab") as handle:
            handle.write(b"shutdown %d\n" % calls)
        return False

    received = b"".join(follow_file(log, None, keep_going, poll=0.01))
    assert calls == 1
    assert received == b"boot\nshutdown 1\n"


def test_follow_with_lines(log: Path) -> None:
    log.write_bytes(b"1\n2\n3\n4\n")
    assert b"".join(follow_file(log, 2, lambda: False, poll=0.01)) == b"3\n4\n"
    assert b"".join(follow_file(log, 0, lambda: False, poll=0.01)) == b""


def test_follow_missing_file_and_stopped(log: Path) -> None:
    with pytest.raises(NotFoundError, match="is gone"):
        list(follow_file(log, None, lambda: False, poll=0.01))
    assert not log.exists()


def test_follow_waits_for_the_file_to_appear(log: Path) -> None:
    created = threading.Event()

    def keep_going() -> bool:
        if not created.is_set():
            log.write_bytes(b"hello\n")
            created.set()
            return True
        return False

    assert b"".join(follow_file(log, None, bounded(keep_going), poll=0.01)) == b"hello\n"
