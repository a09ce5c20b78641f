"""Issue 15, faults 1, 2 and 4: LK_HOME modes and corrupt state files."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from lk_core.errors import StateError
from lk_core.json_store import JsonStateStore
from lk_core.model import Container
from lk_core.paths import default_state_path, ensure_logs_dir, ensure_private_dir, runtime_dir
from lk_core.state import StoreOperations

from lk_core import cli


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- fault 1: an existing LK_HOME keeps its mode -----------------------------------------


def test_existing_sticky_lk_home_keeps_its_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp
    monkeypatch.setenv("LK_HOME", str(shared))
    StoreOperations(JsonStateStore(default_state_path())).add(
        Container(id="aaaa0001", image="/x.iso")
    )
    ensure_logs_dir()
    ensure_private_dir(runtime_dir("aaaa0001"))
    assert mode(shared) == 0o1777
    # lk's own sub-folders, created now, are private
    assert mode(shared / "logs") == 0o700
    assert mode(shared / "run") == 0o700
    assert mode(shared / "run" / "aaaa0001") == 0o700


def test_private_dir_never_changes_existing_parents(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    (tmp_path / "mine").mkdir(mode=0o750)
    (tmp_path / "mine").chmod(0o750)
    ensure_private_dir(tmp_path / "mine" / "a" / "b")
    assert mode(tmp_path) == 0o755
    assert mode(tmp_path / "mine") == 0o750
    assert mode(tmp_path / "mine" / "a") == 0o700
    assert mode(tmp_path / "mine" / "a" / "b") == 0o700


def test_private_dir_over_a_file_fails(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError):
        ensure_private_dir(tmp_path / "file")
    with pytest.raises(OSError):
        ensure_private_dir(tmp_path / "file" / "sub")


# -- faults 2 and 4: corrupt state files -------------------------------------------------


@pytest.fixture
def state_file(lk_home: Path) -> Path:
    lk_home.mkdir()
    return lk_home / "containers.json"


def record(cid: str) -> dict[str, object]:
    return {"id": cid, "image": "/x.iso", "status": "stopped"}


BAD = {
    "not-utf8": b"\xff\xfe{",
    "latin1-inside": json.dumps({"containers": {}}).encode()[:-1] + b', "n": "caf\xe9"}',
    "empty": b"",
    "blank": b" \n\t\n",
    "key-differs-from-id": json.dumps(
        {"schema": 1, "containers": {"aaaa0001": record("bbbb0002")}}
    ).encode(),
    "key-differs-from-id-and-collides": json.dumps(
        {"schema": 1, "containers": {"aaaa0001": record("aaaa0001"), "x": record("aaaa0001")}}
    ).encode(),
}


@pytest.mark.parametrize("content", list(BAD.values()), ids=list(BAD))
def test_bad_state_file_is_one_line_corrupt_error(
    state_file: Path, content: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    state_file.write_bytes(content)
    store = JsonStateStore(state_file)
    with pytest.raises(StateError) as info:
        store.load()
    message = str(info.value)
    assert str(state_file) in message and "corrupt" in message and "move it aside" in message
    assert "\n" not in message
    with pytest.raises(StateError):
        StoreOperations(store).add(Container(id="cccc0003", image="/x.iso"))
    assert state_file.read_bytes() == content  # never overwritten

    # the real CLI: one line, no traceback, exit 1
    assert cli.main(["ps"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lk: error: state file ") and "corrupt" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_mismatched_key_is_named(state_file: Path) -> None:
    state_file.write_text(json.dumps({"containers": {"aaaa0001": record("bbbb0002")}}))
    with pytest.raises(StateError, match=r"'aaaa0001'.*'bbbb0002'"):
        JsonStateStore(state_file).load()


def test_missing_file_is_an_empty_state(lk_home: Path) -> None:
    assert JsonStateStore(lk_home / "containers.json").load() == {}


def test_record_without_id_takes_its_key(state_file: Path) -> None:
    state_file.write_text(json.dumps({"containers": {"aaaa0001": {"image": "/x.iso"}}}))
    assert list(JsonStateStore(state_file).load()) == ["aaaa0001"]
