"""Tests for lk_core.json_store (JsonStateStore) and lk_core.state (StoreOperations)."""

from __future__ import annotations

import json
import os
import random
import signal
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from lk_core.errors import LkError, NotFoundError, StateError
from lk_core.json_store import SCHEMA_VERSION, JsonStateStore
from lk_core.model import Container, PortMapping, Protocol, Status, VolumeMapping
from lk_core.paths import default_state_path
from lk_core.state import StateStore, StoreOperations

REFERENCE_STATE = {
    "containers": {
        "abc12345": {
            "id": "abc12345",
            "name": "web",
            "image": "/x.iso",
            "status": "running",
            "pid": 123,
            "started_at": "2024-01-01T00:00:00Z",
            "ports": {"8080": 80},
            "memory": 1024,
            "cpus": 1,
        }
    }
}


def make(cid: str, name: str = "", started_at: str = "", **kw: Any) -> Container:
    return Container(id=cid, image="/images/x.iso", name=name, started_at=started_at, **kw)


@pytest.fixture
def store(lk_home: Path) -> JsonStateStore:
    return JsonStateStore(default_state_path())


@pytest.fixture
def ops(store: JsonStateStore) -> StoreOperations:
    return StoreOperations(store)


def raw(store: JsonStateStore) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(store.path.read_text(encoding="utf-8"))
    return result


# -- basic operations --------------------------------------------------------


def test_store_lives_under_lk_home(lk_home: Path, store: JsonStateStore) -> None:
    assert store.path == lk_home / "containers.json"
    assert store.location == str(lk_home / "containers.json")
    assert isinstance(store, StateStore)


def test_empty_store_when_no_file(store: JsonStateStore, ops: StoreOperations) -> None:
    assert not store.path.exists()
    assert store.load() == {}
    assert ops.all() == []
    assert ops.get("nothing") is None
    assert list(ops.iter_ids()) == []


def test_add_get_all_update_remove(ops: StoreOperations) -> None:
    a = make("aaaa0001", "alpha", "2024-01-02T00:00:00Z", ports=[PortMapping(8080, 80)])
    b = make("bbbb0002", "beta", "2024-01-01T00:00:00Z")
    c = make("cccc0003", "", "2024-01-01T00:00:00Z")
    for item in (a, b, c):
        ops.add(item)

    assert ops.get("aaaa0001") == a
    assert ops.get("zzzz9999") is None
    # oldest first, ties by ID
    assert [x.id for x in ops.all()] == ["bbbb0002", "cccc0003", "aaaa0001"]
    assert set(ops.iter_ids()) == {"aaaa0001", "bbbb0002", "cccc0003"}

    def change(record: Container) -> None:
        record.status = Status.RUNNING
        record.pid = 4242

    updated = ops.update("aaaa0001", change)
    assert updated.status is Status.RUNNING and updated.pid == 4242
    again = ops.get("aaaa0001")
    assert again is not None
    assert again.status is Status.RUNNING and again.pid == 4242
    assert again.ports == [PortMapping(8080, 80)]

    assert ops.remove("bbbb0002") is True
    assert ops.remove("bbbb0002") is False
    assert ops.get("bbbb0002") is None
    assert [x.id for x in ops.all()] == ["cccc0003", "aaaa0001"]


def test_update_unknown_raises_not_found(ops: StoreOperations) -> None:
    ops.add(make("aaaa0001"))
    with pytest.raises(NotFoundError, match="zzzz"):
        ops.update("zzzz", lambda c: None)


def test_returned_records_are_copies(store: JsonStateStore, ops: StoreOperations) -> None:
    original = make("aaaa0001", "alpha", ports=[PortMapping(8080, 80)], command=["a"])
    ops.add(original)
    # mutating the object passed to add changes nothing stored
    original.name = "changed"
    original.command.append("b")

    got = ops.get("aaaa0001")
    assert got is not None
    got.name = "mutated"
    got.ports.append(PortMapping(1, 2))
    got.command.append("x")

    listed = ops.all()[0]
    listed.status = Status.ERROR
    listed.extra["new"] = 1

    loaded = store.load()
    loaded["aaaa0001"].memory = 1
    loaded["bbbb"] = make("bbbb")

    updated = ops.update("aaaa0001", lambda c: setattr(c, "cpus", 2))
    updated.hypervisor_options["x"] = "y"
    updated.cpus = 8

    final = ops.get("aaaa0001")
    assert final == make("aaaa0001", "alpha", ports=[PortMapping(8080, 80)], command=["a"], cpus=2)
    assert set(store.load()) == {"aaaa0001"}


def test_duplicate_id_refused(ops: StoreOperations, store: JsonStateStore) -> None:
    ops.add(make("aaaa0001", "alpha"))
    before = store.path.read_bytes()
    with pytest.raises(LkError, match="aaaa0001"):
        ops.add(make("aaaa0001", "other"))
    assert store.path.read_bytes() == before


def test_duplicate_name_refused(ops: StoreOperations, store: JsonStateStore) -> None:
    ops.add(make("aaaa0001", "alpha"))
    with pytest.raises(LkError, match="'alpha' is already in use"):
        ops.add(make("bbbb0002", "alpha"))
    assert set(store.load()) == {"aaaa0001"}
    # empty names never collide
    ops.add(make("cccc0003", ""))
    ops.add(make("dddd0004", ""))
    assert set(store.load()) == {"aaaa0001", "cccc0003", "dddd0004"}


def test_transaction_saves_nothing_on_exception(
    ops: StoreOperations, store: JsonStateStore
) -> None:
    ops.add(make("aaaa0001", "alpha"))
    before = store.path.read_bytes()
    with pytest.raises(RuntimeError), store.transaction() as records:
        records.clear()
        records["bbbb"] = make("bbbb")
        raise RuntimeError("boom")

    def change(record: Container) -> None:
        record.name = "renamed"
        raise ValueError("half-way")

    with pytest.raises(ValueError):
        ops.update("aaaa0001", change)
    assert store.path.read_bytes() == before


def test_unchanged_transaction_does_not_rewrite(
    ops: StoreOperations, store: JsonStateStore
) -> None:
    ops.add(make("aaaa0001", "alpha"))
    inode = store.path.stat().st_ino
    with store.transaction() as records:
        assert set(records) == {"aaaa0001"}
    ops.update("aaaa0001", lambda c: None)
    assert store.path.stat().st_ino == inode
    ops.update("aaaa0001", lambda c: setattr(c, "pid", 7))
    assert store.path.stat().st_ino != inode


# -- file layout ---------------------------------------------------------------


def test_file_and_folder_modes(lk_home: Path, ops: StoreOperations, store: JsonStateStore) -> None:
    assert not lk_home.exists()
    ops.add(make("aaaa0001"))
    assert stat.S_IMODE(lk_home.stat().st_mode) == 0o700
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    lock = store.path.with_name(store.path.name + ".lock")
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600


def test_existing_folder_keeps_its_mode_and_the_file_is_tightened(
    lk_home: Path, ops: StoreOperations, store: JsonStateStore
) -> None:
    # $LK_HOME may be a folder lk did not create (even /tmp): its mode is left alone.
    lk_home.mkdir(mode=0o755)
    lk_home.chmod(0o755)
    store.path.write_text(json.dumps(REFERENCE_STATE))
    store.path.chmod(0o644)
    ops.add(make("aaaa0001"))
    assert stat.S_IMODE(lk_home.stat().st_mode) == 0o755
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_json_layout(ops: StoreOperations, store: JsonStateStore) -> None:
    ops.add(
        make(
            "aaaa0001",
            "alpha",
            status=Status.RUNNING,
            ports=[PortMapping(8080, 80, "0.0.0.0", Protocol.UDP)],
            volumes=[VolumeMapping("/srv", "/data", True, "lkvol0")],
        )
    )
    ops.add(make("bbbb0002"))
    document = raw(store)
    assert document["schema"] == SCHEMA_VERSION == 1
    assert set(document) == {"schema", "containers"}
    assert set(document["containers"]) == {"aaaa0001", "bbbb0002"}
    record = document["containers"]["aaaa0001"]
    assert record["id"] == "aaaa0001"
    assert record["name"] == "alpha"
    assert record["image"] == "/images/x.iso"
    assert record["status"] == "running"
    assert record["ports"] == [
        {"host_port": 8080, "guest_port": 80, "host_ip": "0.0.0.0", "protocol": "udp"}
    ]
    assert record["volumes"] == [
        {"host_path": "/srv", "guest_path": "/data", "read_only": True, "tag": "lkvol0"}
    ]
    assert "extra" not in record


# -- compatibility -----------------------------------------------------------------


def test_reads_reference_state_file(store: JsonStateStore, ops: StoreOperations) -> None:
    store.path.parent.mkdir(parents=True)
    store.path.write_text(json.dumps(REFERENCE_STATE))
    record = ops.get("abc12345")
    assert record is not None
    assert record.name == "web"
    assert record.image == "/x.iso"
    assert record.status is Status.RUNNING
    assert record.pid == 123
    assert record.started_at == "2024-01-01T00:00:00Z"
    assert record.memory == 1024
    assert record.cpus == 1
    assert record.ports == [PortMapping(8080, 80, "127.0.0.1")]
    assert record.ports[0].protocol is Protocol.TCP
    assert record.extra == {}

    # it can be changed and written back in lk's own layout
    ops.update("abc12345", lambda c: setattr(c, "status", Status.STOPPED))
    document = raw(store)
    assert document["schema"] == 1
    assert document["containers"]["abc12345"]["status"] == "stopped"
    assert document["containers"]["abc12345"]["pid"] == 123
    reread = ops.get("abc12345")
    assert reread is not None
    assert reread.ports == [PortMapping(8080, 80, "127.0.0.1")]


def test_unknown_record_fields_survive_read_modify_write(
    store: JsonStateStore, ops: StoreOperations
) -> None:
    future = {"gpu": {"model": "virtio", "count": [1, 2]}, "labels": ["a", "b"], "weight": 3.5}
    document = json.loads(json.dumps(REFERENCE_STATE))
    document["schema"] = 1
    document["containers"]["abc12345"].update(future)
    document["containers"]["def67890"] = {"id": "def67890", "image": "/y.iso", "zone": "eu"}
    store.path.parent.mkdir(parents=True)
    store.path.write_text(json.dumps(document))

    ops.update("abc12345", lambda c: setattr(c, "status_reason", "checked"))
    ops.add(make("aaaa0001", "new"))

    after = raw(store)["containers"]
    for key, value in future.items():
        assert after["abc12345"][key] == value
    assert after["abc12345"]["status_reason"] == "checked"
    assert after["def67890"]["zone"] == "eu"
    assert "extra" not in after["abc12345"]
    assert set(after) == {"abc12345", "def67890", "aaaa0001"}


# -- corruption --------------------------------------------------------------------


def _truncated() -> str:
    text = json.dumps(REFERENCE_STATE, indent=2)
    return text[: len(text) // 2]


CORRUPT = {
    "truncated": _truncated(),
    "list": "[]",
    "containers-number": '{"containers": 5}',
    "record-not-object": '{"containers": {"abc12345": 5}}',
    "bad-field-type": '{"containers": {"abc12345": {"image": "/x", "memory": "lots"}}}',
    "json-string": '"hello"',
    "garbage": "\x00\x01not json at all",
}


@pytest.mark.parametrize("content", list(CORRUPT.values()), ids=list(CORRUPT))
def test_corrupt_file_is_reported_and_never_overwritten(
    store: JsonStateStore, ops: StoreOperations, content: str
) -> None:
    store.path.parent.mkdir(parents=True)
    store.path.write_text(content)
    before = store.path.read_bytes()

    with pytest.raises(StateError) as excinfo:
        store.load()
    message = str(excinfo.value)
    assert str(store.path) in message
    assert "corrupt" in message
    assert "move it aside" in message
    assert "\n" not in message

    with pytest.raises(StateError):
        ops.add(make("aaaa0001", "new"))
    with pytest.raises(StateError):
        ops.remove("abc12345")
    with pytest.raises(StateError):
        ops.all()
    assert store.path.read_bytes() == before
    leftovers = [p.name for p in store.path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_newer_schema_is_refused(store: JsonStateStore, ops: StoreOperations) -> None:
    document = dict(REFERENCE_STATE, schema=SCHEMA_VERSION + 1)
    store.path.parent.mkdir(parents=True)
    store.path.write_text(json.dumps(document))
    before = store.path.read_bytes()
    with pytest.raises(StateError) as excinfo:
        store.load()
    message = str(excinfo.value)
    assert "upgrade" in message
    assert str(store.path) in message
    with pytest.raises(StateError, match="upgrade"):
        ops.add(make("aaaa0001"))
    assert store.path.read_bytes() == before


@pytest.mark.parametrize("content", [b"", b"  \n"], ids=["empty", "blank"])
def test_empty_file_is_corrupt_not_an_empty_state(
    store: JsonStateStore, ops: StoreOperations, content: bytes
) -> None:
    # lk never writes an empty state file: reading one as "no containers" would
    # forget running VMs (issue 15). Only a missing file is an empty state.
    store.path.parent.mkdir(parents=True)
    store.path.write_bytes(content)
    with pytest.raises(StateError, match=r"corrupt.*move it aside"):
        store.load()
    with pytest.raises(StateError):
        ops.add(make("aaaa0001"))
    assert store.path.read_bytes() == content


# -- concurrency -------------------------------------------------------------------


def _add_one(path: str, index: int, barrier: Any) -> None:
    barrier.wait(timeout=60)
    StoreOperations(JsonStateStore(Path(path))).add(
        Container(id=f"{index:08x}", image="/x.iso", name=f"c{index}")
    )


def _add_same_name(path: str, index: int, barrier: Any) -> None:
    barrier.wait(timeout=60)
    try:
        StoreOperations(JsonStateStore(Path(path))).add(
            Container(id=f"{index:08x}", image="/x.iso", name="contested")
        )
    except LkError:
        os._exit(3)


def _increment(path: str, times: int, barrier: Any) -> None:
    barrier.wait(timeout=60)
    ops = StoreOperations(JsonStateStore(Path(path)))
    for _ in range(times):
        ops.update("counter1", lambda c: setattr(c, "pid", c.pid + 1))


def _run_all(mp_context: Any, target: Any, args_list: list[tuple[Any, ...]]) -> list[int]:
    procs = [mp_context.Process(target=target, args=args) for args in args_list]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    codes: list[int] = []
    for p in procs:
        if p.exitcode is None:
            p.kill()
            p.join()
        codes.append(p.exitcode)
    return codes


def test_concurrent_adds_from_20_processes(store: JsonStateStore, mp_context: Any) -> None:
    n = 20
    barrier = mp_context.Barrier(n)
    codes = _run_all(mp_context, _add_one, [(str(store.path), i, barrier) for i in range(n)])
    assert codes == [0] * n
    records = store.load()
    assert len(records) == n
    assert set(records) == {f"{i:08x}" for i in range(n)}
    assert {r.name for r in records.values()} == {f"c{i}" for i in range(n)}
    assert len(raw(store)["containers"]) == n


def test_concurrent_same_name_only_one_wins(store: JsonStateStore, mp_context: Any) -> None:
    n = 12
    barrier = mp_context.Barrier(n)
    codes = _run_all(mp_context, _add_same_name, [(str(store.path), i, barrier) for i in range(n)])
    assert sorted(codes) == [0] + [3] * (n - 1)
    records = store.load()
    assert len(records) == 1
    assert next(iter(records.values())).name == "contested"


def test_concurrent_updates_lose_nothing(
    store: JsonStateStore, ops: StoreOperations, mp_context: Any
) -> None:
    ops.add(make("counter1", pid=0))
    n, times = 6, 10
    barrier = mp_context.Barrier(n)
    codes = _run_all(mp_context, _increment, [(str(store.path), times, barrier)] * n)
    assert codes == [0] * n
    counter = ops.get("counter1")
    assert counter is not None
    assert counter.pid == n * times


# -- crash safety ------------------------------------------------------------------

RECORDS_IN_BIG_STATE = 400


def _big_state() -> dict[str, Container]:
    return {
        f"{i:08x}": Container(
            id=f"{i:08x}",
            image=f"/images/some/long/path/image-{i}.iso",
            name=f"name-{i}",
            status=Status.RUNNING,
            status_reason="gen 0",
            command=["qemu-system-x86_64", *(f"-arg{j}" for j in range(20))],
            ports=[PortMapping(10000 + i, 80)],
            hypervisor_options={"accel": "kvm"},
        )
        for i in range(RECORDS_IN_BIG_STATE)
    }


def _writer_loop(path: str, ready: Any) -> None:
    store = JsonStateStore(Path(path))
    generation = 0
    while True:
        generation += 1
        with store.transaction() as records:
            for record in records.values():
                record.status_reason = f"gen {generation}"
        ready.set()


def test_state_file_survives_sigkill_during_writes(store: JsonStateStore, mp_context: Any) -> None:
    store.path.parent.mkdir(parents=True, mode=0o700)
    store._write(_big_state())
    assert store.path.stat().st_size > 256 * 1024
    rng = random.Random(20240101)
    for _ in range(30):
        ready = mp_context.Event()
        proc = mp_context.Process(target=_writer_loop, args=(str(store.path), ready))
        proc.start()
        assert ready.wait(60), "the writer never completed a first save"
        # a random moment within the next few saves (this sleep only picks the moment)
        time.sleep(rng.uniform(0.0, 0.1))
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(30)
        assert proc.exitcode == -signal.SIGKILL

        document = json.loads(store.path.read_text(encoding="utf-8"))
        assert len(document["containers"]) == RECORDS_IN_BIG_STATE
        # the file is one complete save: every record has the same generation
        generations = {r["status_reason"] for r in document["containers"].values()}
        assert len(generations) == 1
        records = JsonStateStore(store.path).load()
        assert len(records) == RECORDS_IN_BIG_STATE
        assert stat.S_IMODE(store.path.stat().st_mode) == 0o600

    # the lock was released by each killed writer, and leftover temp files
    # (if any) do not get in the way of later changes
    ops = StoreOperations(JsonStateStore(store.path))
    ops.add(make("ffffffff", "after-crashes"))
    assert len(ops.store.load()) == RECORDS_IN_BIG_STATE + 1
    assert ops.remove("ffffffff") is True
    for leftover in store.path.parent.glob(".containers-*.tmp"):
        assert leftover != store.path
    assert len(json.loads(store.path.read_text())["containers"]) == RECORDS_IN_BIG_STATE
