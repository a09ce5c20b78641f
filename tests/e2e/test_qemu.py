"""Real VMs under QEMU: every image format, ports, volumes, exec, stop, faults.

The test image (tests/images/build.sh) prints ``lk-test: ready`` once sshd
listens, mounts 9p shares listed in lk's metadata CD, and prints
``lk-test: shutting down`` on an ACPI power-off.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from e2e_support import READY, SHUTDOWN, listening_addresses, wait_for_text

pytestmark = pytest.mark.e2e

FORMATS = {
    "iso": "lk-test.iso",
    "raw": "lk-test-bios.img",
    "qcow2": "lk-test.qcow2",
    "vmdk": "lk-test.vmdk",
    "kernel+initrd": "lk-test-kernel",
}


def record(home: Path, cid: str) -> dict:
    return json.loads((home / "containers.json").read_text())["containers"][cid]


def boot(run_lk, image: Path | str, *extra: str) -> str:
    result = run_lk("run", "-d", *extra, str(image), check=True)
    return result.stdout.strip().splitlines()[0]


def copy_image(src_dir: Path, name: str, dest: Path) -> Path:
    """A private copy (disk formats are written to and locked by QEMU)."""
    dest.mkdir(parents=True, exist_ok=True)
    if name == "lk-test-kernel":
        for suffix in ("kernel", "initrd.img", "cmdline"):
            shutil.copy(src_dir / f"lk-test-{suffix}", dest / f"lk-test-{suffix}")
        return dest / "lk-test-kernel"
    target = dest / name
    shutil.copy(src_dir / name, target)
    return target


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_boots_and_stops_gracefully(fmt, run_lk, qemu_env, test_image_dir, tmp_path):
    image = copy_image(test_image_dir, FORMATS[fmt], tmp_path / "img")
    cid = boot(run_lk, image, "--name", f"fmt-{fmt.replace('+', '-')}")
    assert record(qemu_env, cid)["format"] == fmt
    log = qemu_env / "logs" / f"{cid}.log"
    wait_for_text(log, READY)
    assert READY in run_lk("logs", cid, check=True).stdout
    assert "running" in run_lk("ps", check=True).stdout

    run_lk("stop", cid, check=True)
    rec = record(qemu_env, cid)
    assert rec["status"] == "stopped" and rec["exit_code"] == 0
    assert SHUTDOWN in log.read_text(errors="replace")
    run_lk("rm", cid, check=True)
    assert not log.exists() and not (qemu_env / "run" / cid).exists()


def test_ports_volumes_exec_cp_and_kill(run_lk, qemu_env, test_image_dir, tmp_path):
    share = tmp_path / "share"
    share.mkdir()
    (share / "hello.txt").write_text("hello from the host\n")
    host_port = _free_port()
    cid = boot(
        run_lk,
        test_image_dir / "lk-test.iso",
        "--name",
        "web",
        "-p",
        f"{host_port}:8000",
        "-v",
        f"{share}:/data:ro",
        "--wait",
    )
    rec = record(qemu_env, cid)
    ssh_port = rec["ssh_port"]
    # Published and SSH ports listen on loopback only.
    assert listening_addresses(ssh_port) == {"127.0.0.1"}
    assert listening_addresses(host_port) == {"127.0.0.1"}
    # The volume is mounted where asked, read-only, under a unique tag.
    inspect = json.loads(run_lk("inspect", "web", check=True).stdout)
    assert inspect["volumes"][0]["tag"] == "lkvol0"
    assert inspect["volumes"][0]["guest_path"] == "/data"
    assert run_lk("exec", "web", "--", "cat", "/data/hello.txt", check=True).stdout == (
        "hello from the host\n"
    )
    readonly = run_lk("exec", "web", "--", "touch", "/data/new")
    assert readonly.returncode != 0 and not (share / "new").exists()
    # A server in the guest is reachable through the published port.
    run_lk("exec", "web", "--", "busybox", "httpd", "-p", "8000", "-h", "/data", check=True)
    with urllib.request.urlopen(f"http://127.0.0.1:{host_port}/hello.txt", timeout=20) as resp:
        assert resp.read() == b"hello from the host\n"

    # exec: quoting, exit codes, separate streams, stdin, TTY, env, workdir.
    assert run_lk("exec", "web", "--", "echo", "a b;c", check=True).stdout == "a b;c\n"
    assert run_lk("exec", "web", "--", "echo", "$HOME", "`id`", check=True).stdout == (
        "$HOME `id`\n"
    )
    for code in (0, 1, 7):
        assert run_lk("exec", "web", "--", "sh", "-c", f"exit {code}").returncode == code
    streams = run_lk("exec", "web", "--", "sh", "-c", "echo out; echo err >&2", check=True)
    assert streams.stdout == "out\n" and streams.stderr == "err\n"
    assert run_lk("exec", "web", "--", "cat", input="piped\n", check=True).stdout == "piped\n"
    assert (
        run_lk("exec", "-t", "web", "--", "tty", check=True).stdout.strip().startswith("/dev/pts/")
    )
    assert "/dev/pts" not in run_lk("exec", "web", "--", "tty").stdout
    env = run_lk(
        "exec",
        "-e",
        "GREETING=hi there",
        "-w",
        "/tmp",
        "web",
        "--",
        "sh",
        "-c",
        'echo "$GREETING"; pwd',
        check=True,
    )
    assert env.stdout == "hi there\n/tmp\n"

    # cp both ways.
    blob = tmp_path / "blob.bin"
    blob.write_bytes(os.urandom(200_000))
    run_lk("cp", str(blob), "web:/tmp/blob.bin", check=True)
    back = tmp_path / "back.bin"
    run_lk("cp", "web:/tmp/blob.bin", str(back), check=True)
    assert back.read_bytes() == blob.read_bytes()
    # A failed copy never truncates the destination.
    missing = run_lk("cp", "web:/nonexistent", str(back))
    assert missing.returncode == 1 and "No such file" in missing.stderr
    assert back.read_bytes() == blob.read_bytes()
    folder = run_lk("cp", "web:/etc", str(tmp_path / "etc-copy"))
    assert folder.returncode == 1 and "is a directory" in folder.stderr
    assert not (tmp_path / "etc-copy").exists()
    assert not list(tmp_path.glob(".*.lk-cp"))

    # lk shell exits with the shell's status, without a traceback.
    shell = run_lk("shell", "web", input="echo from-shell; exit 3\n")
    assert shell.returncode == 3 and "from-shell" in shell.stdout
    assert "Traceback" not in shell.stderr

    # Python API.
    from lk_core.manager import Manager

    result = Manager().exec("web", ["sh", "-c", "echo api; exit 3"])
    assert (result.exit_code, result.stdout) == (3, "api\n")

    # kill -9 of QEMU: recorded as an error, the log is kept.
    os.kill(rec["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 20
    while record(qemu_env, cid)["status"] != "error" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert record(qemu_env, cid)["status"] == "error"
    assert "error" in run_lk("ps", "-a", check=True).stdout
    assert READY in run_lk("logs", "web", check=True).stdout
    stopped = run_lk("exec", "web", "--", "true")
    assert stopped.returncode != 0 and "is error" in stopped.stderr


def test_host_key_pinning_wrong_key_and_two_vms(run_lk, qemu_env, test_image_dir, tmp_path):
    odd = tmp_path / "my images, v1"
    image = copy_image(test_image_dir, "lk-test-kernel", odd)
    first = boot(run_lk, image, "--name", "one", "--wait")
    second = boot(run_lk, test_image_dir / "lk-test.iso", "--name", "two", "--wait")
    ports = {record(qemu_env, c)["ssh_port"] for c in (first, second)}
    assert len(ports) == 2
    assert run_lk("exec", "one", "--", "hostname", check=True).stdout.strip()
    assert run_lk("exec", "two", "--", "true").returncode == 0

    # The host key was pinned on first contact; a different key is refused.
    known = qemu_env / "run" / first / "known_hosts"
    assert "ssh-" in known.read_text()
    line = known.read_text().split()
    other = (qemu_env / "run" / second / "known_hosts").read_text().split()
    known.write_text(f"{line[0]} {other[1]} {other[2]}\n")
    refused = run_lk("exec", "one", "--", "true")
    assert refused.returncode != 0
    assert "host key" in refused.stderr and "changed" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    # A key the VM does not trust is refused with a clear message.
    import attrs
    from lk_core.errors import SSHError
    from lk_core.manager import Manager
    from lk_core.ssh import exec_command
    from lk_core.ssh_keys import ensure_default_key

    wrong = tmp_path / "wrong_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong)], check=True)
    container = Manager().get("two")
    assert container.ssh_key == str(ensure_default_key())
    with pytest.raises(SSHError, match="refused SSH key"):
        exec_command(attrs.evolve(container, ssh_key=str(wrong)), ["true"])

    run_lk("stop", "one", "two", check=True)
    assert SHUTDOWN in (qemu_env / "logs" / f"{first}.log").read_text(errors="replace")


def test_foreground_run_streams_console_and_ctrl_c_powers_off(qemu_env, test_image_dir):
    proc = subprocess.Popen(
        [sys.executable, "-m", "lk_core", "run", str(test_image_dir / "lk-test.iso")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        seen = b""
        deadline = time.monotonic() + 120
        while READY.encode() not in seen and time.monotonic() < deadline:
            chunk = proc.stdout.read1(4096)
            if not chunk:
                break
            seen += chunk
        assert READY.encode() in seen
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert SHUTDOWN.encode() in seen + rest


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_spaces_and_commas_in_every_path(run_lk, qemu_env, test_image_dir, monkeypatch):
    home = qemu_env / "lk home, v2"
    monkeypatch.setenv("LK_HOME", str(home))
    image = copy_image(test_image_dir, "lk-test.qcow2", qemu_env / "disk images, old")
    share = qemu_env / "shared files, too"
    share.mkdir()
    (share / "note, 1.txt").write_text("commas are fine\n")
    cid = boot(run_lk, image, "-v", f"{share}:/mnt/share", "--wait")
    assert "," in record(home, cid)["image"]
    out = run_lk("exec", cid, "--", "cat", "/mnt/share/note, 1.txt", check=True).stdout
    assert out == "commas are fine\n"
    run_lk("stop", cid, check=True)
    assert SHUTDOWN in (home / "logs" / f"{cid}.log").read_text(errors="replace")
