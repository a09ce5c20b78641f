"""The whole life cycle through the real ``lk`` CLI with a fake hyperkit on macOS.

Hyperkit cannot run on Linux: the platform is forced to darwin (test plugin
tests/helpers/hyperkit_on_darwin.py) and ``hyperkit`` is a fake executable
that records the argv it received, writes a console through its pty and
powers off on SIGTERM as hyperkit does.
"""

from __future__ import annotations

import json
import time

FAKE_ENV = {"LK_PLUGIN_MODULES": "hyperkit_on_darwin", "LK_DISABLE_PLUGINS": "hyperkit"}


def _wait_for(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_run_ps_logs_stop_rm_with_fake_hyperkit(run_lk, sandbox, hyperkit_binary, tmp_path):
    image_dir = tmp_path / "out"
    image_dir.mkdir()
    (image_dir / "vm-kernel").write_bytes(b"\x00" * 1024)
    (image_dir / "vm-initrd.img").write_bytes(b"\x00" * 1024)
    (image_dir / "vm-cmdline").write_text("quiet\n")
    argv_file = tmp_path / "argv.json"
    env = {
        **FAKE_ENV,
        "LK_HYPERKIT": str(hyperkit_binary),
        "FAKE_HYPERKIT_ARGV": str(argv_file),
        "HOME": str(tmp_path),
    }

    hv = json.loads(run_lk("hypervisors", "--json", env=env, check=True).stdout)
    hyperkit = next(h for h in hv if h["name"] == "hyperkit")
    assert hyperkit["available"] and hyperkit["default"]

    result = run_lk("run", "-d", "--name", "mac", str(image_dir / "vm"), env=env, check=True)
    cid = result.stdout.strip().splitlines()[0]
    record = json.loads((sandbox / "containers.json").read_text())["containers"][cid]
    assert record["hypervisor"] == "hyperkit" and record["format"] == "kernel+initrd"

    assert _wait_for(argv_file.exists)
    argv = json.loads(argv_file.read_text())["argv"]
    flat = " ".join(argv)
    assert "-A" in argv and "-u" in argv
    assert argv[argv.index("-m") + 1] == "1024M" and argv[argv.index("-c") + 1] == "1"
    assert "0:0,hostbridge" in flat and "31,lpc" in flat
    assert argv[argv.index("-F") + 1] == str(sandbox / "run" / cid / "hyperkit.pid")
    kexec = argv[argv.index("-f") + 1]
    assert kexec.startswith(f"kexec,{image_dir / 'vm-kernel'},{image_dir / 'vm-initrd.img'},")
    assert "console=ttyS0" in kexec and "quiet" in kexec
    assert "ahci-cd," in flat  # the metadata CD with the SSH key

    assert "running" in run_lk("ps", env=env, check=True).stdout
    log = sandbox / "logs" / f"{cid}.log"
    assert _wait_for(lambda: "lk-test: ready" in log.read_text(errors="replace"))
    assert "lk-test: ready" in run_lk("logs", "mac", env=env, check=True).stdout

    run_lk("stop", "mac", env=env, check=True)
    record = json.loads((sandbox / "containers.json").read_text())["containers"][cid]
    assert record["status"] == "stopped" and record["exit_code"] == 0
    assert _wait_for(lambda: "lk-test: shutting down" in log.read_text(errors="replace"))

    run_lk("rm", "mac", env=env, check=True)
    assert not log.exists() and not (sandbox / "run" / cid).exists()


def test_hyperkit_refuses_vmdk_and_ports_with_one_line(run_lk, sandbox, hyperkit_binary, tmp_path):
    env = {**FAKE_ENV, "LK_HYPERKIT": str(hyperkit_binary), "HOME": str(tmp_path)}
    vmdk = tmp_path / "disk.vmdk"
    vmdk.write_bytes(b"KDMV" + b"\0" * 508)
    refused = run_lk("run", "-d", "--hypervisor", "hyperkit", str(vmdk), env=env)
    assert refused.returncode != 0 and "qemu-img convert" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert (
        not (sandbox / "containers.json").exists()
        or json.loads((sandbox / "containers.json").read_text())["containers"] == {}
    )
