"""Checkpoints without a VM: refusals by a hypervisor that lacks the capability, the store,
and QEMU's guest-argv comparison (issue 13). Real saves and resumes: tests/e2e/test_checkpoints.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lk_core.checkpoints import SIDECAR, check_checkpoint_name, load_checkpoint, verify_checkpoint
from lk_core.errors import LkError, UsageError


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
