"""Tests for lk_core.model and lk_core.serialize."""

from __future__ import annotations

import json

import pytest
from lk_core.model import Container, PortMapping, Protocol, Status, VolumeMapping
from lk_core.serialize import container_from_dict, container_to_dict


def full_container() -> Container:
    return Container(
        id="abc12345",
        image="/images/x.iso",
        name="web",
        format="iso",
        hypervisor="qemu",
        status=Status.RUNNING,
        status_reason="",
        pid=1234,
        pid_started="boot:5678",
        supervisor_pid=1200,
        supervisor_started="boot:5600",
        started_at="2024-01-01T00:00:00Z",
        finished_at="",
        exit_code=None,
        ports=[
            PortMapping(8080, 80),
            PortMapping(5353, 53, "0.0.0.0", Protocol.UDP),
        ],
        volumes=[
            VolumeMapping("/srv/data", "/data", True, "lkvol0"),
            VolumeMapping("/srv/logs", "/logs", False, "lkvol1"),
        ],
        memory=2048,
        cpus=4,
        ssh_port=2222,
        ssh_key="/home/u/.ssh/id",
        command=["qemu-system-x86_64", "-m", "2048"],
        hypervisor_options={"accel": "kvm"},
    )


def test_round_trip_through_json() -> None:
    original = full_container()
    text = json.dumps(container_to_dict(original))
    back = container_from_dict(json.loads(text))
    assert back == original
    assert back.status is Status.RUNNING
    assert back.ports[1].protocol is Protocol.UDP
    assert isinstance(back.ports[0], PortMapping)
    assert isinstance(back.volumes[0], VolumeMapping)
    assert back.volumes[0].read_only is True
    assert back.exit_code is None


@pytest.mark.parametrize("status", list(Status))
def test_every_status_round_trips(status: Status) -> None:
    data = container_to_dict(Container(id="a", image="/x", status=status))
    assert data["status"] == status.value
    assert container_from_dict(data).status is status


def test_enums_are_plain_strings_in_json() -> None:
    data = container_to_dict(full_container())
    assert type(data["status"]) is str
    assert data["status"] == "running"
    assert [type(p["protocol"]) for p in data["ports"]] == [str, str]
    assert [p["protocol"] for p in data["ports"]] == ["tcp", "udp"]
    text = json.dumps(data)
    assert '"status": "running"' in text
    assert '"protocol": "udp"' in text
    assert "Status." not in text and "Protocol." not in text
    assert "extra" not in data


def test_unknown_status_becomes_broken() -> None:
    record = container_from_dict({"id": "a", "image": "/x", "status": "hibernating"})
    assert record.status is Status.BROKEN
    record = container_from_dict({"id": "a", "image": "/x", "status": None})
    assert record.status is Status.BROKEN


def test_none_numbers_are_tolerated() -> None:
    record = container_from_dict(
        {
            "id": "a",
            "image": "/x",
            "pid": None,
            "supervisor_pid": None,
            "memory": None,
            "cpus": None,
            "ssh_port": None,
            "exit_code": None,
        }
    )
    assert record.pid == 0
    assert record.supervisor_pid == 0
    assert record.memory == 1024
    assert record.cpus == 1
    assert record.ssh_port == 0
    assert record.exit_code is None


def test_minimal_record_gets_defaults() -> None:
    record = container_from_dict({"id": "a", "image": "/x"})
    assert record == Container(id="a", image="/x")
    assert record.status is Status.STARTING
    assert record.ports == [] and record.volumes == [] and record.extra == {}


def test_reference_port_map_form() -> None:
    record = container_from_dict({"id": "a", "image": "/x", "ports": {"8080": 80, "2222": "22"}})
    assert record.ports == [PortMapping(8080, 80), PortMapping(2222, 22)]
    assert all(p.host_ip == "127.0.0.1" and p.protocol is Protocol.TCP for p in record.ports)
    # written back in the list form
    assert container_to_dict(record)["ports"][0] == {
        "host_port": 8080,
        "guest_port": 80,
        "host_ip": "127.0.0.1",
        "protocol": "tcp",
    }


def test_unknown_fields_are_kept_and_written_back() -> None:
    data = {"id": "a", "image": "/x", "labels": {"k": "v"}, "future": [1, None]}
    record = container_from_dict(data)
    assert record.extra == {"labels": {"k": "v"}, "future": [1, None]}
    out = container_to_dict(record)
    assert out["labels"] == {"k": "v"}
    assert out["future"] == [1, None]
    assert "extra" not in out


def test_known_fields_win_over_extra() -> None:
    record = Container(id="a", image="/x", name="real", extra={"name": "stale", "z": 1})
    out = container_to_dict(record)
    assert out["name"] == "real"
    assert out["z"] == 1


def test_string_forms() -> None:
    assert str(Status.RUNNING) == "running"
    assert str(PortMapping(8080, 80)) == "127.0.0.1:8080->80/tcp"
    assert str(PortMapping(53, 53, "0.0.0.0", Protocol.UDP)) == "0.0.0.0:53->53/udp"
    assert str(VolumeMapping("/a", "/b", True)) == "/a:/b:ro"
    assert str(VolumeMapping("/a", "/b")) == "/a:/b"


def test_display_name_and_is_active() -> None:
    assert Container(id="abc", image="/x").display_name == "abc"
    assert Container(id="abc", image="/x", name="web").display_name == "web"
    active = {s for s in Status if Container(id="a", image="/x", status=s).is_active}
    assert active == {Status.STARTING, Status.RUNNING, Status.BROKEN}
