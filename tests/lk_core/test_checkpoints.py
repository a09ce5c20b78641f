"""Checkpoints without a VM: refusals by a hypervisor that lacks the capability, the store,
and QEMU's guest-argv comparison (issue 13). Real saves and resumes: tests/e2e/test_checkpoints.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from lk_core.checkpoints import (
    SIDECAR,
    CheckpointError,
    check_checkpoint_name,
    create_checkpoint,
    load_checkpoint,
    verify_checkpoint,
)
from lk_core.disks import Disk
from lk_core.errors import LkError, UsageError
from lk_core.hookspecs import hookimpl
from lk_core.hypervisor import Capability, Hypervisor
from lk_core.manager import Manager
from lk_core.model import Container, Status, VolumeMapping
from lk_core.plugins import new_plugins
from lk_core.vm import CheckpointInfo, VmState


def test_a_hypervisor_without_checkpoints_refuses_in_one_line(run_lk, iso_image) -> None:
    cid = run_lk("run", "-d", "--hypervisor", "fake", str(iso_image), check=True).stdout.strip()
    for args in (
        ("checkpoint", "create", cid, "c1"),
        ("run", "-d", "--warm", "--hypervisor", "fake", str(iso_image)),
    ):
        result = run_lk(*args)
        assert result.returncode != 0
        assert (
            result.stderr.strip() == "lk: error: hypervisor fake cannot save or resume checkpoints"
        )
    run_lk("rm", "-f", cid, check=True)


def test_unknown_checkpoints_and_empty_listings(run_lk) -> None:
    result = run_lk("run", "-d", "--from-checkpoint", "nope")
    assert result.returncode != 0 and "no checkpoint named 'nope'" in result.stderr
    assert json.loads(run_lk("checkpoint", "ls", "--json", check=True).stdout) == []
    assert run_lk("checkpoint", "prune", check=True).stdout == ""
    assert run_lk("checkpoint", "rm", "nope").returncode != 0


@pytest.mark.parametrize("name", ["../x", ".hidden", "a/b", "", "x" * 64])
def test_checkpoint_names_stay_in_their_folder(name: str) -> None:
    with pytest.raises(UsageError):
        check_checkpoint_name(name)


def test_a_foreign_or_damaged_checkpoint_is_refused(sandbox: Path) -> None:
    folder = sandbox / "checkpoints" / "c"
    folder.mkdir(parents=True)
    (folder / SIDECAR).write_text("{not json")
    with pytest.raises(LkError, match="unreadable or not lk's"):
        load_checkpoint("c")
    (folder / SIDECAR).write_text(json.dumps({"schema": 99}))
    with pytest.raises(LkError, match="foreign"):
        load_checkpoint("c")
    (folder / "state").write_bytes(b"x" * 10)
    data = {"name": "c", "folder": str(folder), "files": {"state": {"size": 20, "sha256": ""}}}
    with pytest.raises(LkError, match="truncated"):
        verify_checkpoint(data)
    data["files"] = {"state": {"size": 10, "sha256": "0" * 64}}
    with pytest.raises(LkError, match="checksum"):
        verify_checkpoint(data)


def test_guest_argv_masks_host_side_values_only() -> None:
    from lk_qemu.checkpoint import guest_argv

    def argv(home: str, port: int, incoming: bool) -> list[str]:
        words = [
            f"/usr/bin/qemu-{home}", "-name", f"lk-{home}", "-machine", "q35", "-m", "1024",
            "-pidfile", f"/{home}/qemu.pid",
            "-chardev", f"socket,id=console,path=/{home}/c.sock,server=on,logfile=/{home}/l,x=1",
            "-netdev", f"user,id=net0,hostfwd=tcp:127.0.0.1:{port}-:22",
            "-device", "virtio-net-pci,netdev=net0,mac=02:00:00:00:00:01",
            "-drive", f"file=/{home}/boot,,x.qcow2,if=none,id=boot,format=qcow2",
        ]  # fmt: skip
        return words + (["-incoming", "exec:cat /x/state"] if incoming else [])

    assert guest_argv(argv("a", 1, False)) == guest_argv(argv("b", 2, True))
    changed = argv("a", 1, False)
    changed[changed.index("1024")] = "2048"
    assert guest_argv(changed) != guest_argv(argv("a", 1, False))
    assert "mac=02:00:00:00:00:01" in " ".join(guest_argv(changed))


class Saver(Hypervisor):
    """A hypervisor that can checkpoint and whose VMs always run; it must never be asked to."""

    name = "saver"
    capabilities = frozenset({Capability.CHECKPOINTS})

    def __init__(self) -> None:
        self.saves: list[str] = []

    def state(self, container: Container) -> VmState:
        return VmState(Status.RUNNING)

    def save_checkpoint(self, container: Container, folder: Path, stop: bool) -> CheckpointInfo:
        self.saves.append(container.id)
        raise AssertionError("a refused checkpoint reached the hypervisor")


@pytest.fixture
def saver_manager(sandbox: Path) -> tuple[Manager, Saver]:
    hv = Saver()

    class Plugin:
        @hookimpl
        def register_hypervisors(self) -> list[Hypervisor]:
            return [hv]

    return Manager(new_plugins(extra=[("saver", Plugin())], entry_points=True)), hv


def _running(manager: Manager, **fields: object) -> Container:
    container = Container(
        id="c0ffee00",
        image="/images/x.qcow2",
        format="qcow2",
        hypervisor="saver",
        status=Status.RUNNING,
        **fields,  # type: ignore[arg-type]
    )
    with manager.store.transaction() as records:
        records[container.id] = container
    return container


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"volumes": [VolumeMapping("/srv", "/srv", tag="lk0")]},
            "shares host folders (-v): a mounted 9p share cannot be saved",
        ),
        (
            {
                "disks": [
                    Disk(role="boot", path="/r/b.qcow2", format="qcow2", serial="lk-b"),
                    Disk(path="/d/data.qcow2", format="qcow2", serial="lk-data", name="data"),
                ]
            },
            "has named disk data: a checkpoint's clones cannot share it",
        ),
        ({}, "runs its image in place (--in-place)"),
    ],
)
def test_a_container_that_cannot_be_resumed_is_refused_before_saving(
    saver_manager: tuple[Manager, Saver], sandbox: Path, fields: dict[str, object], message: str
) -> None:
    manager, hv = saver_manager
    _running(manager, **fields)
    with pytest.raises(CheckpointError, match=re.escape(message)) as caught:
        create_checkpoint(manager, "c0ffee00", "c1")
    assert "\n" not in str(caught.value)
    assert hv.saves == []
    assert not (sandbox / "checkpoints").exists() or not any((sandbox / "checkpoints").iterdir())


def test_a_checkpoint_larger_than_the_free_space_is_refused_with_the_free_space(
    saver_manager: tuple[Manager, Saver], sandbox: Path
) -> None:
    manager, hv = saver_manager
    boot = Disk(role="boot", path=str(sandbox / "boot.qcow2"), format="qcow2", serial="lk-b")
    _running(manager, disks=[boot], memory=1 << 40)  # a petabyte of RAM to save
    with pytest.raises(UsageError, match=r"checkpoint c1 \(up to .*free") as caught:
        create_checkpoint(manager, "c0ffee00", "c1")
    assert "\n" not in str(caught.value)
    assert hv.saves == []
    assert not (sandbox / "checkpoints").exists() or not any((sandbox / "checkpoints").iterdir())
