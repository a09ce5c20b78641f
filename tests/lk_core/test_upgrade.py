"""Upgrading lk: a state file and running VMs from lk 0.1 keep working.

The record below has exactly the shape lk 0.1 wrote (its fields, its
``hypervisor_options`` for the hypervisor's settings, no ``plugin_options``,
``host`` or ``handle``), and names live processes started the way 0.1's
supervisor started them. The current lk must list, stop and remove them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from lk_core.process import is_same_process, start_token

FAKE_VM = Path(__file__).resolve().parents[1] / "helpers" / "fake_vm.py"
#: lk 0.1's supervisor waited for the hypervisor and exited; this stand-in does that.
OLD_SUPERVISOR = (
    "import os, sys, time\n"
    "pid = int(sys.argv[1])\n"
    "while os.path.exists(f'/proc/{pid}') and open(f'/proc/{pid}/stat').read().split()[2] != 'Z':\n"
    "    time.sleep(0.05)\n"
)


def _wait_for(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _old_record(cid: str, image: Path, vm: subprocess.Popen, sup: subprocess.Popen, argv) -> dict:
    return {
        "id": cid,
        "image": str(image),
        "name": "legacy-web",
        "format": "iso",
        "hypervisor": "fake",
        "status": "running",
        "status_reason": "",
        "pid": vm.pid,
        "pid_started": start_token(vm.pid),
        "supervisor_pid": sup.pid,
        "supervisor_started": start_token(sup.pid),
        "started_at": "2026-11-29T10:00:00Z",
        "finished_at": "",
        "exit_code": None,
        "ports": [
            {"host_port": 18555, "guest_port": 80, "host_ip": "127.0.0.1", "protocol": "tcp"}
        ],
        "volumes": [],
        "memory": 1024,
        "cpus": 1,
        "ssh_port": 2299,
        "ssh_key": "",
        "command": argv,
        "hypervisor_options": {"accel": "tcg"},
    }


def test_a_running_vm_recorded_by_lk_0_1_is_listed_stopped_and_removed(
    run_lk, sandbox: Path, iso_image: Path
) -> None:
    cid = "0a1b2c3d"
    runtime = sandbox / "run" / cid
    runtime.mkdir(parents=True, mode=0o700)
    (sandbox / "logs").mkdir(mode=0o700, exist_ok=True)
    log = sandbox / "logs" / f"{cid}.log"
    argv = [sys.executable, str(FAKE_VM), "--console", str(log), "--runtime", str(runtime)]
    vm = subprocess.Popen(argv, start_new_session=True)
    sup = subprocess.Popen([sys.executable, "-c", OLD_SUPERVISOR, str(vm.pid)])
    try:
        assert _wait_for(lambda: "lk-test: ready" in (log.read_text() if log.exists() else ""))
        state = sandbox / "containers.json"
        state.write_text(
            json.dumps(
                {"schema": 1, "containers": {cid: _old_record(cid, iso_image, vm, sup, argv)}}
            )
        )
        state.chmod(0o600)

        ps = run_lk("ps", check=True).stdout
        assert cid in ps and "legacy-web" in ps and "running" in ps, ps
        inspected = json.loads(run_lk("inspect", "legacy-web", check=True).stdout)
        assert inspected["hypervisor_options"] == {"accel": "tcg"}

        assert run_lk("stop", "legacy-web", check=True).stdout.strip() == "legacy-web"
        assert vm.wait(timeout=10) == 0  # the guest powered off: graceful, not killed
        assert "lk-test: shutting down" in log.read_text()
        record = json.loads(state.read_text())["containers"][cid]
        assert record["status"] == "stopped", record
        assert not is_same_process(vm.pid, record["pid_started"])

        run_lk("rm", "legacy-web", check=True)
        assert cid not in json.loads(state.read_text())["containers"]
        assert not runtime.exists() and not log.exists()
    finally:
        for proc in (vm, sup):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
