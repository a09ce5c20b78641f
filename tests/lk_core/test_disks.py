"""Container disks in the core (issue 12): parsing, planning, named disks, commit checks.

Bad input is a one-line error, exit 2 for usage errors, and creates nothing.
The CLI tests use the real QEMU plugin only to create disks with qemu-img
(no VM boots); runs are refused before anything starts.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from lk_core.disks import (
    BOOT,
    DATA,
    MAX_SERIAL,
    Disk,
    DiskRequest,
    check_disk_name,
    parse_disk_option,
    parse_disk_size,
    serial_for,
    writes_image_in_place,
)
from lk_core.errors import UsageError
from lk_core.model import Container, Status

MiB = 1024 * 1024
QEMU = {"LK_PLUGIN_MODULES": ""}  # the real plugins (qemu), not the fake hypervisor


@pytest.mark.parametrize(
    ("text", "size"),
    [("64M", 64 * MiB), ("1G", 1024 * MiB), ("1.5G", 1536 * MiB), ("10", 10 * MiB),
     ("512MiB", 512 * MiB), ("2gb", 2048 * MiB), ("1M", MiB)],
)  # fmt: skip
def test_sizes(text: str, size: int) -> None:
    assert parse_disk_size(text) == size


@pytest.mark.parametrize("text", ["0", "-1", "abc", "1.5.G", "", "10X", "0.5K", "1K"])
def test_bad_sizes_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="invalid disk size") as info:
        parse_disk_size(text)
    assert info.value.exit_code == 2 and "\n" not in str(info.value)


def test_disk_option_forms() -> None:
    assert parse_disk_option("64M") == DiskRequest(size=64 * MiB)
    assert parse_disk_option("docker:10G") == DiskRequest(name="docker", size=10 * 1024 * MiB)
    assert parse_disk_option("docker") == DiskRequest(name="docker")
    assert parse_disk_option("10") == DiskRequest(size=10 * MiB)  # a size, never a name


@pytest.mark.parametrize(
    ("text", "message"),
    [("0", "invalid disk size"), ("-1", "invalid disk size"), ("1.5.G", "invalid disk size"),
     ("a/b", "invalid disk name"), ("..", "invalid disk name"), ("../x:1G", "invalid disk name"),
     ("data:abc", "invalid disk size"), ("data:0", "invalid disk size"), ("", "--disk needs")],
)  # fmt: skip
def test_bad_disk_options(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_disk_option(text)


@pytest.mark.parametrize("name", ["10G", "64", "1.5G", "a/b", "..", "x..y", ".hidden", "-x"])
def test_names_that_are_sizes_or_paths_are_refused(name: str) -> None:
    with pytest.raises(UsageError, match="invalid disk name"):
        check_disk_name(name)


def test_serials_fit_virtio_and_are_stable() -> None:
    assert serial_for("0123abcd", 0) == "lk-0123abcd-d0"
    assert serial_for("0123abcd", 3, "docker") == "lk-docker"
    long = serial_for("0123abcd", 0, "a-very-long-disk-name-indeed")
    assert long == "lk-a-very-long-disk-" and len(long.encode()) == MAX_SERIAL


def test_who_writes_an_image_in_place() -> None:
    overlay = Container(id="a", image="/i.qcow2", format="qcow2", disks=[Disk(role=BOOT)])
    in_place = Container(id="b", image="/i.qcow2", format="qcow2")
    iso = Container(id="c", image="/i.iso", format="iso")
    data_only = Container(id="d", image="/i.qcow2", format="qcow2", disks=[Disk(role=DATA)])
    assert not writes_image_in_place(overlay) and not writes_image_in_place(iso)
    assert writes_image_in_place(in_place) and writes_image_in_place(data_only)


def test_overlays_share_an_image_but_in_place_does_not(tmp_path: Path) -> None:
    from lk_core.run_plan import _check_image_not_in_use

    image = tmp_path / "i.qcow2"
    overlay = Container(id="a", image=str(image), format="qcow2", status=Status.RUNNING,
                        disks=[Disk(role=BOOT)])  # fmt: skip
    _check_image_not_in_use(image, "qcow2", [overlay], [Disk(role=BOOT)])
    with pytest.raises(UsageError, match="in use by container a"):
        _check_image_not_in_use(image, "qcow2", [overlay], [])  # --in-place
    in_place = attrs_evolve(overlay, disks=[])
    with pytest.raises(UsageError, match="in use by container a"):
        _check_image_not_in_use(image, "qcow2", [in_place], [Disk(role=BOOT)])
    stopped = attrs_evolve(in_place, status=Status.STOPPED)
    _check_image_not_in_use(image, "qcow2", [stopped], [])


def attrs_evolve(container: Container, **changes: object) -> Container:
    import attrs

    return attrs.evolve(container, **changes)


# -- through the CLI ------------------------------------------------------------------
needs_disk_tool = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-img")


@pytest.fixture
def qcow2_image(tmp_path: Path) -> Path:
    disk = tmp_path / "disk.qcow2"
    disk.write_bytes(b"QFI\xfb" + b"\0" * 508)
    return disk


def nothing_created(home: Path) -> bool:
    state = home / "containers.json"
    records = json.loads(state.read_text())["containers"] if state.exists() else {}
    run = home / "run"
    return not records and not (run.exists() and any(run.iterdir()))


@pytest.mark.parametrize(
    ("value", "message"),
    [("0", "invalid disk size '0'"), ("-1", "invalid disk size '-1'"),
     ("1.5.G", "invalid disk size '1.5.G'"), ("abc", "no disk named 'abc'"),
     ("a/b:1G", "invalid disk name 'a/b'"), ("..", "invalid disk name"),
     ("999T", "larger than the free space in"), ("big:999T", "larger than the free space in")],
)  # fmt: skip
def test_bad_disk_values_create_nothing(run_lk, sandbox, qcow2_image, value, message) -> None:
    result = run_lk("run", "-d", "--hypervisor", "qemu", "--disk", value, str(qcow2_image),
                    env=QEMU)  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert nothing_created(sandbox) and not (sandbox / "disks").exists()


def test_free_space_error_says_how_much_is_free(run_lk, sandbox, qcow2_image) -> None:
    result = run_lk("run", "-d", "--hypervisor", "qemu", "--disk", "999T", str(qcow2_image),
                    env=QEMU)  # fmt: skip
    assert "free)" in result.stderr and str(sandbox) in result.stderr


def test_a_hypervisor_without_disks_refuses_disk(run_lk, sandbox, qcow2_image) -> None:
    result = run_lk("run", "-d", "--hypervisor", "fake", "--disk", "64M", str(qcow2_image))
    assert result.returncode == 1
    assert result.stderr.strip() == "lk: error: hypervisor fake cannot attach data disks (--disk)"
    assert nothing_created(sandbox)


@needs_disk_tool
def test_named_disk_create_ls_rm(run_lk, sandbox) -> None:
    created = run_lk("disk", "create", "docker", "64M", env=QEMU, check=True)
    path = Path(created.stdout.strip())
    assert path == sandbox / "disks" / "docker.qcow2" and path.is_file()
    assert path.stat().st_size < MiB  # sparse
    listed = json.loads(run_lk("disk", "ls", "--format", "json", env=QEMU, check=True).stdout)
    assert [(d["name"], d["size"], d["attached_to"]) for d in listed] == [("docker", 64 * MiB, [])]
    table = run_lk("disk", "ls", env=QEMU, check=True).stdout
    assert "docker" in table and "64M" in table
    again = run_lk("disk", "create", "docker", "1G", env=QEMU)
    assert again.returncode == 2 and "exists already" in again.stderr
    assert run_lk("disk", "rm", "docker", env=QEMU, check=True).stdout.strip() == "docker"
    assert not path.exists()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [(["10G", "1G"], 2, "looks like a size"), (["../x", "1G"], 2, "invalid disk name"),
     (["a/b", "1G"], 2, "invalid disk name"), (["d", "abc"], 2, "invalid disk size"),
     (["d", "0"], 2, "invalid disk size"), (["--", "d", "-1"], 2, "invalid disk size"),
     (["d", "1.5.G"], 2, "invalid disk size"), (["d", "999T"], 2, "free)")],
)  # fmt: skip
def test_bad_disk_create(run_lk, sandbox, args, code, message) -> None:
    result = run_lk("disk", "create", *args, env=QEMU)
    assert result.returncode == code and message in result.stderr
    assert not (sandbox / "disks").exists() or not any((sandbox / "disks").iterdir())


def test_rm_of_an_unknown_disk(run_lk, sandbox) -> None:
    result = run_lk("disk", "rm", "nosuch", env=QEMU)
    assert result.returncode == 1 and "no disk named 'nosuch'" in result.stderr


@pytest.fixture
def alive() -> dict:
    """Record fields of a live process standing in for a running VM (and its supervisor)."""
    import subprocess

    from lk_core.process import start_token

    proc = subprocess.Popen(["sleep", "60"])
    token = start_token(proc.pid)
    yield {"status": "running", "pid": proc.pid, "pid_started": token,
           "supervisor_pid": proc.pid, "supervisor_started": token}  # fmt: skip
    proc.kill()
    proc.wait()


def write_records(home: Path, *records: dict) -> None:
    base = {"hypervisor": "qemu", "memory": 1024, "cpus": 1, "started_at": "2026-01-01T00:00:00Z"}
    containers = {r["id"]: {**base, **r} for r in records}
    (home / "containers.json").write_text(json.dumps({"schema": 1, "containers": containers}))


def test_rm_of_an_attached_disk_is_refused(run_lk, sandbox, alive) -> None:
    (sandbox / "disks").mkdir()
    (sandbox / "disks" / "docker.qcow2").write_bytes(b"QFI\xfb" + b"\0" * 60)
    disks = [{"role": "data", "name": "docker", "path": "/p"}]
    write_records(
        sandbox, {"id": "abcd1234", "name": "dev", "image": "/x.iso", "format": "iso", **alive,
                  "disks": disks}
    )  # fmt: skip
    result = run_lk("disk", "rm", "docker", env=QEMU)
    assert result.returncode == 2 and "attached to container dev" in result.stderr
    assert (sandbox / "disks" / "docker.qcow2").exists()


def test_commit_refusals(run_lk, sandbox, tmp_path, alive) -> None:
    overlay = tmp_path / "boot.qcow2"
    overlay.write_bytes(b"QFI\xfb" + b"\0" * 60)
    boot = {"role": "boot", "path": str(overlay), "format": "qcow2"}
    write_records(
        sandbox,
        {"id": "aaaa0001", "name": "disk", "image": "/i.qcow2", "format": "qcow2",
         "status": "stopped", "disks": [boot]},
        {"id": "aaaa0002", "name": "iso", "image": "/i.iso", "format": "iso", "status": "stopped"},
        {"id": "aaaa0003", "name": "inplace", "image": "/i.raw", "format": "raw",
         "status": "stopped"},
        {"id": "aaaa0004", "name": "busy", "image": "/i.qcow2", "format": "qcow2",
         **alive, "disks": [boot]},
    )  # fmt: skip
    existing = tmp_path / "exists.qcow2"
    existing.write_bytes(b"keep")
    cases = [
        (["disk", str(existing)], 2, "exists already: use --force"),
        (["disk", str(tmp_path / "no" / "such" / "x.qcow2")], 2, "does not exist"),
        (["disk", str(tmp_path)], 2, "is a folder"),
        (["iso", str(tmp_path / "a.qcow2")], 1, "no disk of its own"),
        (["inplace", str(tmp_path / "b.qcow2")], 1, "runs /i.raw in place"),
        (["busy", str(tmp_path / "c.qcow2")], 1, "stop it before committing"),
    ]
    for args, code, message in cases:
        result = run_lk("commit", *args, env=QEMU)
        assert (result.returncode, message in result.stderr) == (code, True), (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1
    assert existing.read_bytes() == b"keep"
    assert not any((tmp_path / n).exists() for n in ("a.qcow2", "b.qcow2", "c.qcow2"))


@needs_disk_tool
def test_commit_force_replaces(run_lk, sandbox, tmp_path) -> None:
    import subprocess

    overlay = tmp_path / "boot.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(overlay), "1M"], check=True)
    write_records(sandbox, {"id": "aaaa0001", "name": "disk", "image": "/i.qcow2",
                            "format": "qcow2", "status": "stopped",
                            "disks": [{"role": "boot", "path": str(overlay),
                                       "format": "qcow2"}]})  # fmt: skip
    target = tmp_path / "out.qcow2"
    target.write_bytes(b"old")
    run_lk("commit", "--force", "disk", str(target), env=QEMU, check=True)
    assert target.read_bytes()[:4] == b"QFI\xfb"
    assert not list(tmp_path.glob(".*.partial"))
