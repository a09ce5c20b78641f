"""Real VMs under QEMU: container disks (issue 12).

Copy-on-write overlays (two containers of one qcow2 image at once, the image
unchanged), an anonymous ``--disk``, a named disk that outlives its
container, and ``lk commit``. Three boots in all, at most two at once.

The test image runs from its initramfs, so raw writes to ``/dev/vdX`` are
safe; on the boot disk they go to 512 KiB, in the unused gap between the MBR
and the partition at 1 MiB, so a committed image still boots.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

#: Where markers are written: 512 KiB, in 512-byte sectors.
SEEK = 1024


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def boot(run_lk, image: Path | str, *extra: str) -> str:
    result = run_lk("run", "-d", "--wait", *extra, str(image), check=True, timeout=300)
    return result.stdout.strip().splitlines()[0]


def device(run_lk, ref: str, serial: str) -> str:
    """The guest's block device whose virtio serial is ``serial``."""
    script = (
        f'for d in /sys/block/vd*; do [ "$(cat $d/serial)" = "{serial}" ] && echo ${{d##*/}}; '
        "done; true"
    )
    name = run_lk("exec", ref, "--", "sh", "-c", script, check=True).stdout.strip()
    assert name, f"no disk with serial {serial} in {ref}"
    return name


def write_marker(run_lk, ref: str, dev: str, marker: str) -> None:
    script = (
        f"printf '%s' '{marker}' | dd of=/dev/{dev} bs=512 seek={SEEK} conv=notrunc,fsync "
        "2>/dev/null && sync"
    )
    run_lk("exec", ref, "--", "sh", "-c", script, check=True)


def read_marker(run_lk, ref: str, dev: str, size: int = 16) -> str:
    script = f"dd if=/dev/{dev} bs=512 skip={SEEK} count=1 2>/dev/null | head -c {size}"
    out = run_lk("exec", ref, "--", "sh", "-c", script, check=True).stdout
    return out.rstrip("\0")


def disks_of(run_lk, ref: str) -> list[dict]:
    return json.loads(run_lk("inspect", ref, check=True).stdout)["disks"]


def test_overlays_data_disks_named_disks_and_commit(run_lk, qemu_env, test_image_dir, tmp_path):
    image = tmp_path / "lk-test.qcow2"
    shutil.copy(test_image_dir / "lk-test.qcow2", image)
    before = sha256(image)

    # Two containers of one image at once, each on its own overlay.
    a = boot(run_lk, image, "--name", "a", "--disk", "64M", "--disk", "shared:32M")
    b = boot(run_lk, image, "--name", "b")
    a_boot, b_boot = device(run_lk, "a", f"lk-{a}-boot"), device(run_lk, "b", f"lk-{b}-boot")
    write_marker(run_lk, "a", a_boot, "written-by-a-01")
    write_marker(run_lk, "b", b_boot, "written-by-b-02")
    assert read_marker(run_lk, "a", a_boot) == "written-by-a-01"
    assert read_marker(run_lk, "b", b_boot) == "written-by-b-02"

    # --disk 64M: a 64 MiB block device (131072 sectors), found by its serial.
    data = device(run_lk, "a", f"lk-{a}-d0")
    size = run_lk("exec", "a", "--", "cat", f"/sys/block/{data}/size", check=True).stdout
    assert size.strip() == "131072"
    # The named disk: serial lk-shared, written by a.
    shared = device(run_lk, "a", "lk-shared")
    write_marker(run_lk, "a", shared, "named-disk-data")
    listed = json.loads(run_lk("disk", "ls", "--format", "json", check=True).stdout)
    assert [(d["name"], d["attached_to"]) for d in listed] == [("shared", ["a"])]
    refused = run_lk("disk", "rm", "shared")
    assert refused.returncode == 2 and "attached to container a" in refused.stderr
    # A named disk is attached to one running container at a time.
    busy = run_lk("run", "-d", "--disk", "shared", str(image))
    assert busy.returncode == 2 and "attached to container a" in busy.stderr

    # Running: commit is refused. Stopped: the image is unchanged.
    running = run_lk("commit", "a", str(tmp_path / "x.qcow2"))
    assert running.returncode == 1 and "stop it" in running.stderr
    run_lk("stop", "a", "b", check=True, timeout=120)
    assert sha256(image) == before

    committed = tmp_path / "committed.qcow2"
    assert run_lk("commit", "a", str(committed), check=True).stdout.strip() == str(committed)
    again = run_lk("commit", "a", str(committed))
    assert again.returncode == 2 and "--force" in again.stderr
    run_lk("rm", "a", "b", check=True)
    assert not (qemu_env / "run" / a).exists()  # the overlay and the data disk went with it
    assert sha256(image) == before

    # A new container of the committed image sees a's change; the named disk kept a's data.
    c = boot(run_lk, committed, "--name", "c", "--disk", "shared")
    assert read_marker(run_lk, "c", device(run_lk, "c", f"lk-{c}-boot")) == "written-by-a-01"
    assert read_marker(run_lk, "c", device(run_lk, "c", "lk-shared")) == "named-disk-data"
    run_lk("rm", "-f", "c", check=True, timeout=120)
    run_lk("disk", "rm", "shared", check=True)
    assert json.loads(run_lk("disk", "ls", "--json", check=True).stdout) == []
