"""Issue 15, fault 7: the exit-code table of docs/exit-codes.md, through the real CLI.

One example of every class of the table that needs no VM. ``lk_core.cli.main``
runs in-process with ``LK_HOME`` in a fresh folder (the ``sandbox`` fixture,
which also loads the fake hypervisor).
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from lk_core import cli

USAGE = 2
ERROR = 1


def lk(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = cli.main(list(args))
    return code, capsys.readouterr().err


def nothing_created(home: Path) -> bool:
    state = home / "containers.json"
    return not state.exists() or json.loads(state.read_text())["containers"] == {}


@pytest.fixture
def share(tmp_path: Path) -> Path:
    folder = tmp_path / "share"
    folder.mkdir()
    return folder


CASES = [
    # (argv, exit status, words of the one-line message)
    (["run", "--no-such-option", "{iso}"], USAGE, "No such option"),
    (["frobnicate"], USAGE, "No such command"),
    (["run", "-d", "-p", "80", "{iso}"], USAGE, "invalid port mapping"),
    (["run", "-d", "-p", "8080:80:tcp", "{iso}"], USAGE, "8080:80/tcp"),
    (["run", "-d", "-p", "1.2.3.4:18080:80", "{iso}"], USAGE, "not a local address"),
    (["run", "-d", "-v", "{share}:data", "{iso}"], USAGE, "must be absolute"),
    (["run", "-d", "-v", "{share}/missing:/data", "{iso}"], USAGE, "does not exist"),
    (["run", "-d", "-v", "{iso}:/data", "{iso}"], USAGE, "not a directory"),
    (["run", "-d", "-v", "{share}:/proc", "{iso}"], USAGE, "/proc"),
    (["run", "-d", "-m", "lots", "{iso}"], USAGE, "invalid memory size"),
    (["run", "-d", "--name", "bad/name", "{iso}"], USAGE, "invalid name"),
    (["ps", "--format", "xml"], USAGE, "Invalid value for '--format'"),
    (["logs", ""], USAGE, "empty container reference"),
    (["logs", "nosuchcontainer"], ERROR, "no such container"),
    (["stop", "nosuchcontainer"], ERROR, "no such container"),
]


@pytest.mark.parametrize(
    ("argv", "status", "words"), CASES, ids=[" ".join(c[0][:3]) for c in CASES]
)
def test_exit_code_table(
    sandbox: Path,
    iso_image: Path,
    share: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    status: int,
    words: str,
) -> None:
    args = [a.replace("{iso}", str(iso_image)).replace("{share}", str(share)) for a in argv]
    if args[0] == "run":
        args[1:1] = ["--hypervisor", "fake"]
    code, err = lk(capsys, *args)
    assert code == status, err
    assert words in err, err
    assert "Traceback" not in err
    if status == ERROR:
        assert err.startswith("lk: error: ") and len(err.strip().splitlines()) == 1
    assert nothing_created(sandbox)


def test_success_and_help_exit_0(sandbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert lk(capsys, "--help")[0] == 0
    assert lk(capsys, "ps", "-a")[0] == 0


def test_usage_error_class_is_exit_2() -> None:
    from lk_core.errors import (
        LkError,
        NotFoundError,
        PathArgumentNotFoundError,
        UsageError,
    )

    assert UsageError("x").exit_code == 2
    assert LkError("x").exit_code == 1 and NotFoundError("x").exit_code == 1
    missing = PathArgumentNotFoundError("x")
    assert missing.exit_code == 2 and isinstance(missing, NotFoundError)


def test_interrupted_is_130(
    sandbox: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lk_core.manager import Manager

    def interrupted(*args: object, **kwargs: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr(Manager, "list", interrupted)
    assert lk(capsys, "ps")[0] == 128 + signal.SIGINT
