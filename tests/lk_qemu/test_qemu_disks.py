"""QEMU's side of container disks: argv as data, and qemu-img run for real (no VM)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from lk_core.disks import BOOT, DATA, Disk
from lk_core.errors import HypervisorError
from lk_core.hypervisor import Capability
from lk_core.model import HypervisorOptions
from lk_qemu.argv import DISK_CACHE, build_argv
from lk_qemu.disks import (
    commit_argv,
    create_argv,
    disk_args,
    find_disk_tool,
    overlay_argv,
)
from lk_qemu.hypervisor import QemuHypervisor

needs_disk_tool = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-img")


def options(tmp_path: Path, **overrides: object) -> HypervisorOptions:
    values: dict[str, object] = {
        "id": "0123abcd",
        "image": tmp_path / "img.qcow2",
        "format": "qcow2",
        "console_log": tmp_path / "c.log",
        "runtime_dir": tmp_path / "run",
    }
    values.update(overrides)
    return HypervisorOptions(**values)  # type: ignore[arg-type]


def pairs(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]


def test_qemu_declares_disks() -> None:
    assert Capability.DISKS in QemuHypervisor.capabilities


def test_the_overlay_replaces_the_image_and_data_disks_follow_in_order(tmp_path: Path) -> None:
    disks = (
        Disk(role=BOOT, path="/r/boot.qcow2", format="qcow2", serial="lk-0123abcd-boot"),
        Disk(role=DATA, path="/r/data0.qcow2", format="qcow2", serial="lk-0123abcd-d0"),
        Disk(role=DATA, path="/d/docker.raw", format="raw", serial="lk-docker", name="docker"),
    )
    argv = build_argv(options(tmp_path, disks=disks), binary="qemu", accel="tcg")
    drives = pairs(argv, "-drive")
    assert not any(str(tmp_path / "img.qcow2") in d for d in drives)  # never the image
    assert drives[-3:] == [
        f"file=/r/boot.qcow2,if=none,id=boot,format=qcow2,cache={DISK_CACHE}",
        f"file=/r/data0.qcow2,if=none,id=disk0,format=qcow2,cache={DISK_CACHE}",
        f"file=/d/docker.raw,if=none,id=disk1,format=raw,cache={DISK_CACHE}",
    ]
    assert [d for d in pairs(argv, "-device") if d.startswith("virtio-blk")] == [
        "virtio-blk-pci,drive=boot,serial=lk-0123abcd-boot,bootindex=0",
        "virtio-blk-pci,drive=disk0,serial=lk-0123abcd-d0",
        "virtio-blk-pci,drive=disk1,serial=lk-docker",
    ]


def test_in_place_without_disks_boots_the_image_itself(tmp_path: Path) -> None:
    argv = build_argv(options(tmp_path), binary="qemu", accel="tcg")
    assert pairs(argv, "-drive")[-1].startswith(f"file={tmp_path / 'img.qcow2'},format=qcow2")


def test_an_iso_keeps_its_cd_and_gets_data_disks(tmp_path: Path) -> None:
    disk = Disk(role=DATA, path="/r/data0.qcow2", format="qcow2", serial="s")
    argv = build_argv(
        options(tmp_path, image=tmp_path / "x.iso", format="iso", disks=(disk,)),
        binary="qemu",
        accel="tcg",
    )
    assert "ide-cd,drive=boot,bus=ide.0,bootindex=0" in pairs(argv, "-device")
    assert "virtio-blk-pci,drive=disk0,serial=s" in pairs(argv, "-device")


def test_disk_args_escape_commas_and_mark_read_only() -> None:
    disk = Disk(role=DATA, path="/a,b/d.qcow2", format="qcow2", serial="x", read_only=True)
    assert disk_args((disk,), "writeback") == [
        "-drive",
        "file=/a,,b/d.qcow2,if=none,id=disk0,format=qcow2,cache=writeback,readonly=on",
        "-device",
        "virtio-blk-pci,drive=disk0,serial=x",
    ]
    with pytest.raises(HypervisorError, match="absolute"):
        disk_args((Disk(path="rel.qcow2"),), "writeback")


def test_disk_tool_argv() -> None:
    assert overlay_argv("qi", Path("/i.raw"), "raw", Path("/r/boot.qcow2")) == [
        "qi", "create", "-q", "-f", "qcow2", "-b", "/i.raw", "-F", "raw", "/r/boot.qcow2",
    ]  # fmt: skip
    assert create_argv("qi", Path("/r/d.qcow2"), 1048576) == [
        "qi", "create", "-q", "-f", "qcow2", "/r/d.qcow2", "1048576",
    ]  # fmt: skip
    assert commit_argv("qi", Path("/r/boot.qcow2"), "qcow2", Path("/o.qcow2")) == [
        "qi", "convert", "-q", "-f", "qcow2", "-O", "qcow2", "/r/boot.qcow2", "/o.qcow2",
    ]  # fmt: skip


def test_a_missing_disk_tool_is_one_line() -> None:
    with pytest.raises(HypervisorError, match=r"qemu-img not found on PATH.*install qemu-utils"):
        find_disk_tool({}, which=lambda _name: None)
    with pytest.raises(HypervisorError, match=r"\$LK_QEMU_IMG=nope"):
        find_disk_tool({"LK_QEMU_IMG": "nope"}, which=lambda _name: None)


@needs_disk_tool
def test_overlay_data_disk_and_commit_for_real(tmp_path: Path) -> None:
    image = tmp_path / "image.raw"
    image.write_bytes(b"\x01" * 4096 + b"\0" * (1024 * 1024 - 4096))
    before = hashlib.sha256(image.read_bytes()).hexdigest()
    hv = QemuHypervisor()
    run = tmp_path / "run"
    run.mkdir()
    overlay, fmt = hv.create_overlay(image, "raw", run)
    assert (overlay, fmt) == (run / "boot.qcow2", "qcow2")
    # Write through the overlay: the image does not change.
    if shutil.which("qemu-io"):
        argv = ["qemu-io", "-c", "write -P 0x42 0 4096", str(overlay)]
        subprocess.run(argv, check=True, capture_output=True)
    assert hashlib.sha256(image.read_bytes()).hexdigest() == before
    data, data_fmt = hv.create_disk(run / "data0", 64 * 1024 * 1024)
    assert (data, data_fmt) == (run / "data0.qcow2", "qcow2")
    assert data.stat().st_size < 1024 * 1024  # sparse
    target = tmp_path / "committed.qcow2"
    hv.commit_disk(overlay, "qcow2", target)
    info = subprocess.run(
        ["qemu-img", "info", "--output=json", str(target)], check=True, capture_output=True,
        text=True,
    ).stdout  # fmt: skip
    assert '"backing-filename"' not in info and '"virtual-size": 1048576' in info


@needs_disk_tool
def test_a_disk_tool_failure_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(HypervisorError) as info:
        QemuHypervisor().create_overlay(tmp_path / "missing.qcow2", "qcow2", tmp_path)
    assert "cannot create the overlay of" in str(info.value) and "\n" not in str(info.value)
