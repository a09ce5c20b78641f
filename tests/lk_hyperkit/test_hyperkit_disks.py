"""Hyperkit's side of container disks: private sparse copies, raw data disks, PCI slots."""

from __future__ import annotations

from pathlib import Path

import pytest
from lk_core.disks import BOOT, DATA, Disk
from lk_core.errors import HypervisorError
from lk_core.hypervisor import Capability
from lk_hyperkit.disks import FIRST_DATA_SLOT, LAST_DATA_SLOT, has_backing_file, sparse_copy
from lk_hyperkit.hypervisor import HyperkitHypervisor, qcow2_disk

MiB = 1024 * 1024


def slots(args: tuple[str, ...]) -> dict[str, str]:
    found = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "-s"]
    return dict(value.split(",", 1) for value in found)


def test_hyperkit_declares_disks() -> None:
    assert Capability.DISKS in HyperkitHypervisor.capabilities


def test_boot_copy_in_slot_2_and_data_disks_from_slot_6(
    make_hv, make_options, firmware: Path, tmp_path: Path
) -> None:
    disks = (
        Disk(role=BOOT, path=str(tmp_path / "boot.raw"), format="raw", serial="lk-x-boot"),
        Disk(role=DATA, path=str(tmp_path / "data0.raw"), format="raw", serial="lk-x-d0"),
        Disk(role=DATA, path=str(tmp_path / "docker.qcow2"), format="qcow2", name="docker"),
    )
    plan = make_hv().plan(
        make_options(
            image=tmp_path / "user.img",
            format="raw",
            disks=disks,
            options={"firmware": str(firmware)},
        )
    )
    found = slots(plan.args)
    assert found["2"] == f"virtio-blk,{tmp_path / 'boot.raw'}"  # never the user's image
    assert found[str(FIRST_DATA_SLOT)] == f"virtio-blk,{tmp_path / 'data0.raw'}"
    assert found[str(FIRST_DATA_SLOT + 1)] == f"virtio-blk,{qcow2_disk(tmp_path / 'docker.qcow2')}"
    assert "user.img" not in " ".join(plan.args)


def test_data_disks_with_a_kernel_initrd_image(make_hv, make_options, tmp_path: Path) -> None:
    disk = Disk(role=DATA, path=str(tmp_path / "data0.raw"), format="raw")
    found = slots(make_hv().plan(make_options(disks=(disk,))).args)
    assert "2" not in found and found["6"] == f"virtio-blk,{tmp_path / 'data0.raw'}"


def test_too_many_data_disks(make_hv, make_options, tmp_path: Path) -> None:
    count = LAST_DATA_SLOT - FIRST_DATA_SLOT + 2
    disks = tuple(Disk(path=str(tmp_path / f"d{i}.raw"), format="raw") for i in range(count))
    with pytest.raises(HypervisorError, match="at most 25 data disks"):
        make_hv().plan(make_options(disks=disks))


def test_a_raw_image_becomes_a_sparse_private_copy(make_hv, tmp_path: Path) -> None:
    image = tmp_path / "image.img"
    with open(image, "wb") as handle:
        handle.write(b"\x55" * 4096)
        handle.seek(8 * MiB - 1)
        handle.write(b"\x01")
    run = tmp_path / "run"
    run.mkdir()
    before = image.read_bytes()
    path, fmt = make_hv().create_overlay(image, "raw", run)
    assert (path, fmt) == (run / "boot.raw", "raw")
    assert path.read_bytes() == before and image.read_bytes() == before
    assert path.stat().st_blocks * 512 < 2 * MiB  # the zeros are holes


def test_a_qcow2_with_a_backing_file_is_refused(make_hv, tmp_path: Path) -> None:
    image = tmp_path / "overlay.qcow2"
    image.write_bytes(b"QFI\xfb" + b"\0\0\0\x03" + (512).to_bytes(8, "big") + b"\0" * 100)
    assert has_backing_file(image)
    with pytest.raises(HypervisorError, match="backing file"):
        make_hv().create_overlay(image, "qcow2", tmp_path)
    assert not (tmp_path / "boot.qcow2").exists()


def test_a_standalone_qcow2_is_copied(make_hv, tmp_path: Path) -> None:
    image = tmp_path / "image.qcow2"
    image.write_bytes(b"QFI\xfb" + b"\0\0\0\x03" + b"\0" * 8 + b"data" * 100)
    run = tmp_path / "run"
    run.mkdir()
    path, fmt = make_hv().create_overlay(image, "qcow2", run)
    assert (fmt, path.read_bytes()) == ("qcow2", image.read_bytes())


def test_data_disks_are_sparse_raw_files(make_hv, tmp_path: Path) -> None:
    path, fmt = make_hv().create_disk(tmp_path / "data0", 64 * MiB)
    assert (path, fmt) == (tmp_path / "data0.raw", "raw")
    assert path.stat().st_size == 64 * MiB and path.stat().st_blocks * 512 < MiB


def test_commit_of_a_raw_disk_without_qemu_img(make_hv, tmp_path: Path) -> None:
    disk = tmp_path / "boot.raw"
    disk.write_bytes(b"x" * 512)
    target = tmp_path / "out.qcow2"
    hv = make_hv(PATH=str(tmp_path / "empty"))
    with pytest.raises(HypervisorError, match="needs qemu-img"):
        hv.commit_disk(disk, "raw", target)
    assert not target.exists() and not list(tmp_path.glob(".*.partial"))


def test_sparse_copy_refuses_an_existing_target(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"a")
    (tmp_path / "b").write_bytes(b"b")
    with pytest.raises(HypervisorError, match="cannot copy"):
        sparse_copy(tmp_path / "a", tmp_path / "b")
