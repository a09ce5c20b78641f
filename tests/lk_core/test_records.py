"""The fast record reader (lk_core.records) gives what the cattrs converter gives."""

from __future__ import annotations

import copy
import json
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lk_core.disks import Disk
from lk_core.model import Container, PortMapping, Protocol, Status, VolumeMapping

from lk_core import records, serialize


def full_container() -> Container:
    """A container with every field set to something other than its default."""
    return Container(
        id="0123abcd",
        image="/images/lk.qcow2",
        name="web",
        format="qcow2",
        hypervisor="qemu",
        status=Status.RUNNING,
        status_reason="because",
        pid=4242,
        pid_started="boot:123",
        supervisor_pid=4241,
        supervisor_started="boot:122",
        started_at="2026-11-28T10:00:00Z",
        finished_at="2026-11-28T11:00:00Z",
        exit_code=3,
        ports=[
            PortMapping(8080, 80),
            PortMapping(5353, 53, host_ip="0.0.0.0", protocol=Protocol.UDP),
        ],
        volumes=[VolumeMapping("/srv", "/data", read_only=True, tag="lk0")],
        memory=512,
        cpus=2,
        ssh_port=2222,
        ssh_key="ssh-ed25519 AAAA",
        command=["sh", "-c", "true"],
        auto_remove=True,
        hypervisor_options={"accel": "tcg"},
        plugin_options={"qemu": {"accel": "tcg", "qemu_args": ["-nodefaults"]}},
        host="far",
        handle={"domain": "lk-0123abcd", "uuid": "u"},
        disks=[
            Disk(role="boot", path="/r/boot.qcow2", format="qcow2", serial="lk-0123abcd-boot"),
            Disk(path="/d/data.qcow2", format="qcow2", serial="lk-data", name="data", size=1 << 26),
        ],
        extra={"from_checkpoint": "warm", "future_field": {"x": [1, 2]}},
    )


def test_full_record_is_read_without_the_converter() -> None:
    """Every field type of the model has a fast reader: lk's own records never fall back."""
    container = full_container()
    assert all(
        getattr(container, f.name) != f.default
        for f in attrs.fields(Container)
        if f.default is not attrs.NOTHING and not isinstance(f.default, attrs.Factory)  # type: ignore[arg-type]
    )
    data = json.loads(json.dumps(serialize.container_to_dict(container)))
    assert records.fast_container_from_dict(copy.deepcopy(data)) == container
    assert serialize.container_from_dict(copy.deepcopy(data)) == container


def test_minimal_record() -> None:
    data = {"id": "a", "image": "/x"}
    assert records.fast_container_from_dict(data) == serialize.container_from_dict(data)


def test_fast_reader_copies_nested_objects() -> None:
    data = {"id": "a", "image": "/x", "plugin_options": {"qemu": {"accel": "tcg"}}}
    container = records.fast_container_from_dict(data)
    container.plugin_options["qemu"]["accel"] = "kvm"
    assert data["plugin_options"]["qemu"]["accel"] == "tcg"


BASE = {"id": "a", "image": "/x"}

#: Records not in the shape lk writes: each must go to the converter (or match it).
UNUSUAL: list[dict[str, Any]] = [
    {**BASE, "ports": {"8080": 80, "2222": "22"}},  # the reference tool's map
    {**BASE, "ports": None},
    {**BASE, "ports": {}},
    {**BASE, "ports": [{"host_port": "8080", "guest_port": 80}]},
    {**BASE, "ports": [{"host_port": 8080, "guest_port": 80, "comment": "x"}]},
    {**BASE, "ports": [{"host_port": 8080}]},
    {**BASE, "ports": [{"host_port": 8080, "guest_port": 80, "protocol": "sctp"}]},
    {**BASE, "status": "hibernating"},
    {**BASE, "status": None},
    {**BASE, "status": 3},
    {**BASE, "memory": "512"},
    {**BASE, "memory": None, "cpus": None, "pid": None, "ssh_port": None},
    {**BASE, "memory": 512.0},
    {**BASE, "cpus": True},
    {**BASE, "exit_code": None},
    {**BASE, "exit_code": "3"},
    {**BASE, "name": 7},
    {**BASE, "auto_remove": 1},
    {**BASE, "command": "sh"},
    {**BASE, "command": ["sh", 1]},
    {**BASE, "extra": {"kept": False}, "other": 1},
    {**BASE, "handle": {1: "x"}},
    {**BASE, "plugin_options": {"qemu": None}},
    {**BASE, "disks": [{"role": "boot", "size": "1"}]},
    {**BASE, "volumes": [{"host_path": "/a"}]},
    {"image": "/x"},
    {"id": "a"},
    {"id": 5, "image": "/x"},
]


def _outcome(read: Any, data: dict[str, Any]) -> Any:
    """What reading ``data`` gives: the container's repr (so True is not 1), or the error type."""
    try:
        return repr(read(copy.deepcopy(data)))
    except Exception as exc:  # the same failure is the same outcome
        return type(exc)


@pytest.mark.parametrize("data", UNUSUAL, ids=[json.dumps(d)[:60] for d in UNUSUAL])
def test_unusual_records_read_as_the_converter_reads_them(data: dict[str, Any]) -> None:
    expected = _outcome(serialize.container_from_dict, data)
    assert _outcome(records.container_from_dict, data) == expected
    fast = _outcome(records.fast_container_from_dict, data)
    assert fast in (records.Unusual, expected)


def test_round_trip_of_generated_records() -> None:
    """Records that lk writes (varied) are read back equal by both readers."""
    base = full_container()
    variants = [
        attrs.evolve(base, ports=[], volumes=[], disks=[], extra={}),
        attrs.evolve(base, status=Status.STOPPED, exit_code=None),
        attrs.evolve(base, status=Status.ERROR, plugin_options={}, handle={}),
        Container(id="b", image="/y"),
    ]
    for container in variants:
        data = json.loads(json.dumps(serialize.container_to_dict(container)))
        assert records.fast_container_from_dict(copy.deepcopy(data)) == container
        assert serialize.container_from_dict(copy.deepcopy(data)) == container


def test_a_field_type_it_cannot_read_is_refused_when_the_reader_is_built() -> None:
    @attrs.define
    class Odd:
        tags: set[int] = attrs.field(factory=set)

    with pytest.raises(TypeError, match="cannot read a field of type"):
        records._readers(Odd)


# -- any record: both readers agree ------------------------------------------------------
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 70000),
    st.floats(allow_nan=False),
    st.text(max_size=6),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
_port = st.fixed_dictionaries(
    {"host_port": st.integers(1, 65535), "guest_port": st.integers(1, 65535)},
    optional={
        "host_ip": st.sampled_from(["127.0.0.1", "0.0.0.0"]),
        "protocol": st.sampled_from(["tcp", "udp"]),
    },
)
#: Each field as lk writes it.
_valid = {
    "name": st.text(max_size=6),
    "status": st.sampled_from([s.value for s in Status]),
    "pid": st.integers(0, 99999),
    "memory": st.integers(64, 4096),
    "exit_code": st.one_of(st.none(), st.integers(-1, 255)),
    "auto_remove": st.booleans(),
    "ports": st.lists(_port, max_size=2),
    "command": st.lists(st.text(max_size=4), max_size=3),
    "plugin_options": st.dictionaries(
        st.text(max_size=4), st.dictionaries(st.text(max_size=4), _values, max_size=2), max_size=2
    ),
    "disks": st.lists(
        st.fixed_dictionaries(
            {"role": st.sampled_from(["boot", "data"])}, optional={"size": st.integers(0, 9)}
        ),
        max_size=2,
    ),
}


@st.composite
def _records(draw: st.DrawFn) -> dict[str, Any]:
    """A record as lk writes it, often with one field (or an unknown one) of any value."""
    record: dict[str, Any] = {"id": draw(st.text(min_size=1, max_size=8)), "image": "/x"}
    for key, strategy in _valid.items():
        if draw(st.booleans()):
            record[key] = draw(strategy)
    if draw(st.booleans()):
        record[draw(st.sampled_from([*_valid, "id", "future"]))] = draw(_values)
    return record


@settings(max_examples=400, deadline=None)
@given(_records())
def test_both_readers_agree_on_any_record(data: dict[str, Any]) -> None:
    expected = _outcome(serialize.container_from_dict, data)
    assert _outcome(records.container_from_dict, data) == expected
    assert _outcome(records.fast_container_from_dict, data) in (records.Unusual, expected)
