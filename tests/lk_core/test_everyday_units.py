"""Units of the everyday commands: detach keys, ps filters, the progress line, byte sizes."""

from __future__ import annotations

import io

import pytest
from lk_core.cli.progress import ProgressLine, last_console_line
from lk_core.console import DetachMatcher, describe_keys, parse_detach_keys
from lk_core.errors import UsageError
from lk_core.filters import apply_filters, parse_filters
from lk_core.model import Container, Status
from lk_core.stats import format_bytes


@pytest.mark.parametrize(
    ("spec", "keys", "said"),
    [
        ("ctrl-]", b"\x1d", "Ctrl-]"),
        ("ctrl-x", b"\x18", "Ctrl-X"),
        ("ctrl-],q", b"\x1dq", "Ctrl-] q"),
        ("CTRL-P,ctrl-q", b"\x10\x11", "Ctrl-P Ctrl-Q"),
        ("ctrl-@", b"\x00", "Ctrl-@"),
        ("ctrl-\\", b"\x1c", "Ctrl-\\"),
    ],
)
def test_detach_keys(spec: str, keys: bytes, said: str) -> None:
    assert parse_detach_keys(spec) == keys
    assert describe_keys(keys) == said


@pytest.mark.parametrize("spec", ["", "ctrl-", "ctrl-1", "ctrl-]]", "ab", "q,,x", "é"])
def test_bad_detach_keys_are_usage_errors(spec: str) -> None:
    with pytest.raises(UsageError):
        parse_detach_keys(spec)


def test_detach_matcher_holds_a_possible_start_and_forwards_a_broken_one() -> None:
    matcher = DetachMatcher(b"\x1dq")
    assert matcher.feed(b"ls\r") == (b"ls\r", False)
    assert matcher.feed(b"\x1d") == (b"", False)  # may be the start: held back
    assert matcher.feed(b"x") == (b"\x1dx", False)  # it was not: forwarded in order
    assert matcher.feed(b"a\x1d\x1dq") == (b"a\x1d", True)
    assert DetachMatcher(b"\x1d").feed(b"abc\x1ddef") == (b"abc", True)


def c(cid: str, name: str, status: Status, image: str = "/img/lk.iso", hv: str = "qemu"):
    return Container(id=cid, image=image, name=name, status=status, hypervisor=hv)


def test_filters_or_within_a_key_and_across_keys() -> None:
    rows = [
        c("1", "web", Status.RUNNING),
        c("2", "db", Status.STOPPED, "/img/db.qcow2"),
        c("3", "webber", Status.STOPPED, hv="fake"),
    ]

    def ids(*items: str) -> list[str]:
        return [x.id for x in apply_filters(rows, parse_filters(items))]

    assert ids() == ["1", "2", "3"]
    assert ids("name=web") == ["1", "3"]
    assert ids("name=web", "status=stopped") == ["3"]
    assert ids("status=running", "status=stopped") == ["1", "2", "3"]
    assert ids("image=qcow2") == ["2"]
    assert ids("hypervisor=QEMU") == ["1", "2"]
    for bad in ("name", "name=", "size=1", "status=exited"):
        with pytest.raises(UsageError):
            parse_filters([bad])


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_only_on_a_terminal(tmp_path) -> None:
    plain = io.StringIO()
    line = ProgressLine(plain)
    line.show("waiting")
    line.clear()
    assert plain.getvalue() == ""
    term = Terminal()
    line = ProgressLine(term)
    line.show("waiting 1s")
    line.show("waiting 2s")
    line.clear()
    assert term.getvalue() == "\r\x1b[Kwaiting 1s\r\x1b[Kwaiting 2s\r\x1b[K"
    quiet = Terminal()
    ProgressLine(quiet, enabled=False).show("x")
    assert quiet.getvalue() == ""
    log = tmp_path / "c.log"
    log.write_bytes(b"booting\r\n\x1b[1;32mlk-test: ready\x1b[0m\r\n\r\n")
    assert last_console_line(log) == "lk-test: ready"
    assert last_console_line(tmp_path / "missing.log") == ""


@pytest.mark.parametrize(
    ("size", "text"), [(0, "0 B"), (999, "999 B"), (12_400, "12.4 kB"), (12_400_000, "12.4 MB")]
)
def test_format_bytes(size: int, text: str) -> None:
    assert format_bytes(size) == text
