"""Real VMs under QEMU: checkpoints and warm starts (issue 13).

Three cold boots in all (a qcow2 container with a data disk, an ISO for
``--warm``, an ISO saved with ``--stop``), five resumes and one resume QEMU
refuses; at most two VMs at once.
The test image runs from its initramfs, so a file written in ``/root`` lives
in RAM: it survives only through the saved RAM.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from e2e_support import listening_addresses

pytestmark = pytest.mark.e2e

SEEK = 1024  # 512 KiB into the data disk, in sectors


def boot(run_lk, *args: str) -> str:
    result = run_lk("run", "-d", "--wait", *args, check=True, timeout=300)
    return result.stdout.strip().splitlines()[0]


def sh(run_lk, ref: str, script: str) -> str:
    return run_lk("exec", ref, "--", "sh", "-c", script, check=True, timeout=60).stdout


def data_disk(run_lk, ref: str, serial: str) -> str:
    script = (
        f'for d in /sys/block/vd*; do [ "$(cat $d/serial)" = "{serial}" ] && echo ${{d##*/}}; '
        "done; true"
    )
    name = sh(run_lk, ref, script).strip()
    assert name, f"no disk with serial {serial} in {ref}"
    return name


def refused(run_lk, *args: str) -> str:
    result = run_lk(*args, timeout=120)
    assert result.returncode != 0, f"lk {' '.join(args)} should have failed:\n{result.stdout}"
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    return message


def banner(port: int) -> bytes:
    from lk_core.ssh import ssh_banner

    return ssh_banner(port)


def copy_checkpoint(home: Path, name: str, new: str) -> Path:
    source, target = home / "checkpoints" / name, home / "checkpoints" / new
    shutil.copytree(source, target)
    for path in [target, *target.rglob("*")]:
        path.chmod(0o700 if path.is_dir() else 0o600)
    data = json.loads((target / "checkpoint.json").read_text())
    data["name"] = new
    (target / "checkpoint.json").write_text(json.dumps(data))
    return target


def test_checkpoint_resume_twice_and_refusals(run_lk, qemu_env, test_image_dir, tmp_path):
    image = tmp_path / "lk-test.qcow2"
    shutil.copy(test_image_dir / "lk-test.qcow2", image)
    src = boot(run_lk, "--name", "src", "--disk", "64M", str(image))
    sh(run_lk, "src", "echo hello > /root/marker")
    dev = data_disk(run_lk, "src", f"lk-{src}-d0")
    sh(run_lk, "src", f"printf disk-marker | dd of=/dev/{dev} bs=512 seek={SEEK} conv=fsync")

    assert run_lk("checkpoint", "create", "src", "c1", check=True).stdout.strip() == "c1"
    assert sh(run_lk, "src", "cat /root/marker").strip() == "hello"  # the source goes on
    listed = json.loads(run_lk("checkpoint", "ls", "--format", "json", check=True).stdout)
    assert [(c["name"], c["memory"], c["cpus"], c["warm"]) for c in listed] == [
        ("c1", 1024, 1, False)
    ]
    sidecar = json.loads(run_lk("checkpoint", "inspect", "c1", check=True).stdout)
    assert sidecar["source"]["id"] == src and sidecar["source"]["host_keys"]
    run_lk("stop", "src", check=True)

    # Two containers from it at once: each its own ID, SSH port and published port.
    from lk_core.ports import free_port

    ports: list[int] = []
    for name in ("a", "b"):
        port = free_port(avoid=ports)
        ports.append(port)
        run_lk(
            "run", "-d", "--wait", "--from-checkpoint", "c1", "--name", name,
            "-p", f"{port}:22", check=True, timeout=120,
        )  # fmt: skip
    for name, port in zip(("a", "b"), ports, strict=True):
        uptime = float(sh(run_lk, name, "cat /proc/uptime").split()[0])
        assert uptime > 0
        assert sh(run_lk, name, "cat /root/marker").strip() == "hello"
        out = sh(run_lk, name, f"dd if=/dev/{dev} bs=512 skip={SEEK} count=1 2>/dev/null")
        assert out.startswith("disk-marker")
        assert listening_addresses(port) == {"127.0.0.1"}
        assert banner(port).startswith(b"SSH-")
        info = json.loads(run_lk("inspect", name, check=True).stdout)
        assert info["from_checkpoint"] == "c1"
        assert info["id"] != src and info["memory"] == 1024
    assert "backs the disks of container" in refused(run_lk, "checkpoint", "rm", "c1")

    # Refusals, before anything starts.
    assert "conflicts" in refused(run_lk, "run", "-d", "--from-checkpoint", "c1", "-m", "2048")
    assert "conflicts" in refused(run_lk, "run", "-d", "--from-checkpoint", "c1", "-c", "2")
    volume = f"{tmp_path}:/mnt"
    assert "-v" in refused(run_lk, "run", "-d", "--from-checkpoint", "c1", "-v", volume)
    assert "9p" in refused(run_lk, "run", "-d", "--warm", "-v", volume, str(image))
    home = qemu_env
    old = copy_checkpoint(home, "c1", "old")
    data = json.loads((old / "checkpoint.json").read_text())
    data["compat"]["version"] = "6.2.0"
    (old / "checkpoint.json").write_text(json.dumps(data))
    message = refused(run_lk, "run", "-d", "--from-checkpoint", "old")
    assert "6.2.0" in message and "7." in message and "machine" in message
    short = copy_checkpoint(home, "c1", "short")
    with (short / "state").open("r+b") as handle:
        handle.truncate(handle.seek(0, 2) // 2)
    assert "truncated" in refused(run_lk, "run", "-d", "--from-checkpoint", "short")
    bad = copy_checkpoint(home, "c1", "bad")
    with (bad / "state").open("r+b") as handle:
        size = handle.seek(0, 2)
        handle.seek(size // 2)
        handle.write(b"\xff" * 65536)  # inside the RAM stream: only QEMU's load notices
    before = run_lk("ps", "-a", "-q", check=True).stdout.split()
    message = refused(run_lk, "run", "-d", "--from-checkpoint", "bad")
    assert "cannot resume checkpoint bad" in message and "migration" in message, message
    assert run_lk("ps", "-a", "-q", check=True).stdout.split() == before  # nothing left

    run_lk("rm", "-f", "a", "b", "src", check=True)
    for name in ("c1", "old", "short", "bad"):
        run_lk("checkpoint", "rm", name, check=True)
    assert json.loads(run_lk("checkpoint", "ls", "--json", check=True).stdout) == []


def test_warm_start(run_lk, qemu_env, test_image_dir):
    iso = str(test_image_dir / "lk-test.iso")
    first = boot(run_lk, "--warm", iso)
    assert "from_checkpoint" not in json.loads(run_lk("inspect", first, check=True).stdout)
    listed = json.loads(run_lk("checkpoint", "ls", "--json", check=True).stdout)
    assert len(listed) == 1 and listed[0]["warm"] and listed[0]["name"].startswith("warm-")
    assert "warm" in run_lk("checkpoint", "ls", check=True).stdout
    second = boot(run_lk, "--warm", iso)
    info = json.loads(run_lk("inspect", second, check=True).stdout)
    assert info["from_checkpoint"] == listed[0]["name"]
    assert float(sh(run_lk, second, "cat /proc/uptime").split()[0]) > 0
    assert run_lk("checkpoint", "prune", check=True).stdout.strip() == ""  # in use
    run_lk("rm", "-f", first, second, check=True)
    assert run_lk("checkpoint", "prune", check=True).stdout.strip() == listed[0]["name"]


def test_checkpoint_with_stop_powers_the_source_off(run_lk, qemu_env, test_image_dir):
    """``create --stop``: the source ends as a requested stop, and the checkpoint resumes."""
    src = boot(run_lk, "--name", "src", str(test_image_dir / "lk-test.iso"))
    sh(run_lk, "src", "echo kept > /root/marker")
    created = run_lk("checkpoint", "create", "src", "c2", "--stop", check=True, timeout=120)
    assert created.stdout.strip() == "c2"
    info = json.loads(run_lk("inspect", "src", check=True).stdout)
    assert (info["status"], info["exit_code"]) == ("stopped", 0), info
    assert run_lk("ps", "-q", check=True).stdout.split() == []  # nothing runs any more
    assert json.loads(run_lk("checkpoint", "inspect", "c2", check=True).stdout)["stopped"] is True
    resumed = boot(run_lk, "--from-checkpoint", "c2")
    assert sh(run_lk, resumed, "cat /root/marker").strip() == "kept"
    run_lk("rm", "-f", resumed, src, check=True)
    run_lk("checkpoint", "rm", "c2", check=True)
