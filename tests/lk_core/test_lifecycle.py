"""The container life cycle through the real CLI, with the fake hypervisor.

The fake VM is a real process (tests/helpers/fake_vm.py): these tests check
the supervisor, state, liveness, stop, logs and clean-up logic quickly; the
same paths are exercised with real QEMU VMs in tests/e2e.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from cli_support import state, wait_for
from lk_core.process import is_same_process, start_token

RUN = ("run", "-d", "--hypervisor", "fake")


def start(run_lk, image, *extra, env=None) -> str:
    result = run_lk(*RUN, *extra, str(image), check=True, env=env)
    return result.stdout.strip()


def test_run_ps_logs_stop_rm(run_lk, sandbox, iso_image):
    cid = start(run_lk, iso_image, "--name", "web", "-p", "18080:80")
    assert len(cid) == 8 and int(cid, 16) >= 0
    ps = run_lk("ps", check=True).stdout
    assert cid in ps and "web" in ps and "running" in ps and "127.0.0.1:18080->80/tcp" in ps
    wait_for(lambda: "lk-test: ready" in run_lk("logs", "web").stdout)

    stopped = run_lk("stop", "web", check=True)
    assert stopped.stdout.strip() == "web"
    record = state(sandbox)[cid]
    assert record["status"] == "stopped" and record["exit_code"] == 0
    assert "lk-test: shutting down" in run_lk("logs", cid).stdout
    assert cid not in run_lk("ps").stdout
    assert "stopped (0)" in run_lk("ps", "-a").stdout

    run_lk("rm", "web", check=True)
    assert cid not in state(sandbox)
    assert not (sandbox / "logs" / f"{cid}.log").exists()
    assert not (sandbox / "run" / cid).exists()


def test_ps_formats_and_quiet(run_lk, iso_image):
    cid = start(run_lk, iso_image)
    as_json = json.loads(run_lk("ps", "--format", "json", check=True).stdout)
    assert [c["id"] for c in as_json] == [cid]
    assert as_json[0]["status"] == "running" and as_json[0]["ssh_port"] > 0
    import yaml

    as_yaml = yaml.safe_load(run_lk("ps", "--format", "yaml", check=True).stdout)
    assert as_yaml[0]["id"] == cid
    assert run_lk("ps", "-q", check=True).stdout.split() == [cid]


def test_stop_forces_after_timeout_when_guest_ignores_acpi(run_lk, sandbox, iso_image):
    cid = start(run_lk, iso_image, env={"FAKE_VM_ARGS": "--ignore-powerdown"})
    pid = state(sandbox)[cid]["pid"]
    began = time.monotonic()
    run_lk("stop", "-t", "1", cid, check=True)
    assert time.monotonic() - began < 30
    assert not is_same_process(pid, state(sandbox)[cid]["pid_started"])
    assert state(sandbox)[cid]["status"] == "stopped"
    assert "lk-test: shutting down" not in run_lk("logs", cid).stdout


def test_guest_crash_is_recorded_as_error_with_exit_code(run_lk, sandbox, iso_image):
    cid = start(run_lk, iso_image, env={"FAKE_VM_ARGS": "--exit-after 0.5 --exit-code 3"})
    record = wait_for(lambda: state(sandbox)[cid]["status"] == "error" and state(sandbox)[cid])
    assert record["exit_code"] == 3
    assert "guest crashed" in record["status_reason"]
    assert "error (3)" in run_lk("ps", "-a").stdout
    assert "fake-vm: guest crashed" in run_lk("logs", cid).stdout


def test_kill_9_of_the_vm_shows_error_and_keeps_the_log(run_lk, sandbox, iso_image):
    cid = start(run_lk, iso_image)
    wait_for(lambda: "ready" in run_lk("logs", cid).stdout)
    os.kill(state(sandbox)[cid]["pid"], signal.SIGKILL)
    record = wait_for(lambda: state(sandbox)[cid]["status"] == "error" and state(sandbox)[cid])
    assert record["exit_code"] == 128 + 9
    assert "SIGKILL" in record["status_reason"]
    assert "lk-test: ready" in run_lk("logs", cid).stdout


def test_killed_supervisor_shows_broken_and_stop_still_works(run_lk, sandbox, iso_image):
    cid = start(run_lk, iso_image)
    record = state(sandbox)[cid]
    os.kill(record["supervisor_pid"], signal.SIGKILL)
    wait_for(lambda: not is_same_process(record["supervisor_pid"], record["supervisor_started"]))
    ps = run_lk("ps", check=True)
    assert "broken" in ps.stdout and "supervisor" in ps.stderr
    run_lk("stop", cid, check=True)
    assert not is_same_process(record["pid"], record["pid_started"])
    assert state(sandbox)[cid]["status"] == "stopped"


def test_stale_record_with_reused_pid_signals_nothing(run_lk, sandbox, iso_image):
    cid = start(run_lk, iso_image)
    run_lk("stop", cid, check=True)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # Forge the record: "running" with the bystander's PID but the old VM's token.
        path = sandbox / "containers.json"
        document = json.loads(path.read_text())
        rec = document["containers"][cid]
        rec.update(status="running", pid=bystander.pid, supervisor_pid=bystander.pid)
        path.write_text(json.dumps(document))
        assert start_token(bystander.pid) != rec["pid_started"]

        ps = run_lk("ps", "-a", check=True).stdout
        assert "error" in ps  # reconciled: the processes are not the VM's
        run_lk("stop", cid, check=True)
        run_lk("rm", "-f", cid, check=True)
        time.sleep(0.3)
        assert bystander.poll() is None, "lk signalled a process that was not its VM"
    finally:
        bystander.kill()
        bystander.wait()


def test_failed_start_reports_the_hypervisor_error_and_leaves_nothing(run_lk, sandbox, iso_image):
    result = run_lk(*RUN, str(iso_image), env={"FAKE_VM_ARGS": "--fail-start"})
    assert result.returncode != 0
    assert "Permission denied" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert state(sandbox) == {}
    assert list((sandbox / "logs").iterdir()) == []
    assert list((sandbox / "run").iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/nonexistent/image.iso"], "image not found"),
        (["{unknown}"], "unknown image format"),
        (["-p", "80", "{iso}"], "invalid port mapping"),
        (["-p", "1:2:3:4", "{iso}"], "invalid port mapping"),
        (["-v", "/nonexistent-dir:/data", "{iso}"], "does not exist"),
        (["-v", "{iso}:/data", "{iso}"], "not a directory"),
        (["--hypervisor", "nope", "{iso}"], "unknown hypervisor"),
        (["-m", "lots", "{iso}"], "invalid memory size"),
        (["--name", "bad/name", "{iso}"], "invalid name"),
        (["--ssh-key", "/nonexistent/key", "{iso}"], "SSH key not found"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(
    run_lk, sandbox, iso_image, tmp_path, args, message
):
    unknown = tmp_path / "disk.bin"
    unknown.write_bytes(b"\0" * 4096)
    argv = [a.replace("{iso}", str(iso_image)).replace("{unknown}", str(unknown)) for a in args]
    if "--hypervisor" not in args:
        argv = ["--hypervisor", "fake", *argv]
    result = run_lk("run", "-d", *argv)
    assert result.returncode != 0
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert state(sandbox) == {}
    for folder in ("logs", "run"):
        assert list((sandbox / folder).glob("*")) == [] if (sandbox / folder).exists() else True
    assert not list(sandbox.glob(".containers-*"))


@pytest.mark.parametrize(
    "command", [["stop", "ghost"], ["logs", "ghost"], ["rm", "ghost"], ["inspect", "ghost"]]
)
def test_unknown_ref_is_a_one_line_error(run_lk, command):
    result = run_lk(*command)
    assert result.returncode != 0
    assert result.stderr.strip() == "lk: error: no such container: ghost"


def test_names_are_unique_and_only_id_prefixes_resolve(run_lk, sandbox, iso_image):
    first = start(run_lk, iso_image, "--name", "alpha-one")
    again = run_lk(*RUN, "--name", "alpha-one", str(iso_image))
    assert again.returncode != 0 and "already in use" in again.stderr
    second = start(run_lk, iso_image, "--name", "alpha-two")
    for prefix in ("alpha", "alpha-t"):  # name prefixes match nothing (docker's rule)
        result = run_lk("inspect", prefix)
        assert result.returncode == 1
        assert result.stderr.strip() == f"lk: error: no such container: {prefix}"
    assert json.loads(run_lk("inspect", "alpha-two", check=True).stdout)["id"] == second
    assert json.loads(run_lk("inspect", first[:6], check=True).stdout)["id"] == first


def test_busy_host_port_is_reported_before_anything_starts(run_lk, sandbox, iso_image):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_lk(*RUN, "-p", f"{port}:80", str(iso_image))
    assert result.returncode != 0 and str(port) in result.stderr and "in use" in result.stderr
    assert state(sandbox) == {}


def test_logs_follow_ends_when_the_vm_exits(run_lk, sandbox, iso_image):
    cid = start(run_lk, iso_image, env={"FAKE_VM_ARGS": "--exit-after 1.5 --exit-code 0"})
    result = run_lk("logs", "-f", cid, timeout=30, check=True)
    assert "lk-test: ready" in result.stdout
    assert state(sandbox)[cid]["status"] == "stopped"


def test_logs_tail(run_lk, sandbox, iso_image):
    cid = start(run_lk, iso_image)
    wait_for(lambda: "ready" in run_lk("logs", cid).stdout)
    assert run_lk("logs", "-n", "1", cid, check=True).stdout == "lk-test: ready\n"


def test_rm_refuses_running_without_force(run_lk, sandbox, iso_image):
    cid = start(run_lk, iso_image)
    refused = run_lk("rm", cid)
    assert refused.returncode != 0 and "rm -f" in refused.stderr
    assert cid in state(sandbox)
    pid, token = state(sandbox)[cid]["pid"], state(sandbox)[cid]["pid_started"]
    run_lk("rm", "-f", cid, check=True)
    assert cid not in state(sandbox)
    assert not is_same_process(pid, token)


def test_concurrent_runs_get_distinct_ids_and_ssh_ports(run_lk, sandbox, iso_image):
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(lambda _: start(run_lk, iso_image), range(8)))
    records = state(sandbox)
    assert sorted(ids) == sorted(records)
    assert len({r["ssh_port"] for r in records.values()}) == 8
    assert all(r["status"] == "running" for r in records.values())
    run_lk("stop", *ids, check=True)
    assert all(r["status"] == "stopped" for r in state(sandbox).values())


def _foreground_run_interrupted(iso_image, interrupt) -> tuple[int, str, str]:
    """Run ``iso_image`` in the foreground; once ready, call ``interrupt(proc)``.

    Returns the exit status and what was printed after the ready line, and on stderr.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "lk_core", "run", "--hypervisor", "fake", str(iso_image)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in proc.stdout:
            if "lk-test: ready" in line:
                break
        interrupt(proc)
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, rest, err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_foreground_run_streams_console_and_a_signal_stops_gracefully(sandbox, iso_image, sig):
    """Ctrl-C, a kill or a closed terminal power the VM off instead of orphaning it."""
    returncode, rest, err = _foreground_run_interrupted(
        iso_image, lambda proc: proc.send_signal(sig)
    )
    assert returncode == 0, err
    assert "lk-test: shutting down" in rest
    (record,) = state(sandbox).values()
    assert record["status"] == "stopped"
    assert not is_same_process(record["pid"], record["pid_started"])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_foreground_run_stops_on_a_signal_the_kernel_gives_to_another_thread(
    sandbox, iso_image, sig
):
    """A signal sent to the process may land on any of its threads; Python runs handlers
    only in the main thread. ``kill(TID)`` of a helper thread makes the kernel pick that
    thread, as it may on its own: the foreground run must still stop at once."""

    def to_a_helper_thread(proc: subprocess.Popen[str]) -> None:
        helpers = [int(t) for t in os.listdir(f"/proc/{proc.pid}/task") if int(t) != proc.pid]
        assert helpers, "the foreground run streams the console from a helper thread"
        os.kill(helpers[0], sig)

    returncode, rest, err = _foreground_run_interrupted(iso_image, to_a_helper_thread)
    assert returncode == 0, err
    assert "lk-test: shutting down" in rest
    (record,) = state(sandbox).values()
    assert record["status"] == "stopped"


def test_wait_reports_a_vm_that_dies_while_booting(run_lk, sandbox, iso_image):
    result = run_lk(
        *RUN, "--wait", str(iso_image), env={"FAKE_VM_ARGS": "--exit-after 0.5 --exit-code 4"}
    )
    assert result.returncode != 0
    assert "before SSH answered" in result.stderr and "guest crashed" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_wait_times_out_with_the_last_console_lines(run_lk, sandbox, iso_image):
    cid = start(run_lk, iso_image)
    result = run_lk("wait", "--timeout", "1", cid)
    assert result.returncode != 0
    assert "did not answer within 1s" in result.stderr and "lk-test: ready" in result.stderr


def test_exec_on_a_stopped_container_is_a_clear_error(run_lk, sandbox, iso_image):
    cid = start(run_lk, iso_image)
    run_lk("stop", cid, check=True)
    result = run_lk("exec", cid, "--", "true")
    assert result.returncode != 0
    assert result.stderr.strip() == (
        f"lk: error: container {cid} is stopped: exec needs a running container "
        "(start one with lk run)"
    )


def test_ctrl_c_exits_130(run_lk, sandbox, iso_image):
    cid = start(run_lk, iso_image)
    proc = subprocess.Popen(
        [sys.executable, "-m", "lk_core", "logs", "-f", cid],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert "lk-test: ready" in proc.stdout.readline() + proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert "Traceback" not in err


def test_ctrl_c_while_a_foreground_vm_starts_still_stops_it(sandbox, iso_image):
    proc = subprocess.Popen(
        [sys.executable, "-m", "lk_core", "run", "--hypervisor", "fake", str(iso_image)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "FAKE_VM_ARGS": "--boot-seconds 2"},
    )
    wait_for(lambda: (sandbox / "containers.json").exists(), timeout=20, step=0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    (record,) = state(sandbox).values()
    assert record["status"] == "stopped"
    assert not is_same_process(record["pid"], record["pid_started"])
    assert (
        "broken"
        not in subprocess.run(
            [sys.executable, "-m", "lk_core", "ps", "-a"], capture_output=True, text=True
        ).stdout
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ssh-port", "70000", "{iso}"], "70000"),
        (["--ssh-port", "-1", "{iso}"], "-1"),
        (["--no-metadata", "--metadata-file", "{iso}", "{iso}"], "--metadata-file"),
        (["--wait", "--wait-timeout", "-5", "{iso}"], "-5"),
        (["--ssh-port", "45001", "-p", "45001:80", "{iso}"], "both --ssh-port and published"),
        (["--ssh-key", "{iso}", "{iso}"], "cannot use SSH key"),
    ],
)
def test_bad_run_options_are_usage_errors(run_lk, sandbox, iso_image, args, message):
    argv = [a.replace("{iso}", str(iso_image)) for a in args]
    result = run_lk("run", "-d", "--hypervisor", "fake", *argv)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert state(sandbox) == {}


def test_passphrase_protected_ssh_key_is_refused(run_lk, sandbox, iso_image, tmp_path):
    key = tmp_path / "locked"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "secret", "-f", str(key)], check=True
    )
    result = run_lk("run", "-d", "--hypervisor", "fake", "--ssh-key", str(key), str(iso_image))
    assert result.returncode == 2 and "passphrase" in result.stderr
    assert state(sandbox) == {}


@pytest.mark.parametrize(
    "command",
    [["logs", "-n", "-1", "x"], ["stop", "-t", "-1", "x"], ["wait", "--timeout", "-3", "x"]],
)
def test_negative_numbers_are_usage_errors(run_lk, command):
    result = run_lk(*command)
    assert result.returncode == 2 and "-" in result.stderr


def test_exec_without_a_key_says_why(run_lk, sandbox, iso_image):
    cid = start(run_lk, iso_image, "--no-metadata")
    result = run_lk("exec", cid, "--", "true")
    assert result.returncode == 1
    assert "--no-metadata and no --ssh-key" in result.stderr


def test_bad_exec_env_is_a_usage_error(run_lk, sandbox, iso_image):
    cid = start(run_lk, iso_image)
    result = run_lk("exec", "-e", "1X=2", cid, "--", "true")
    assert result.returncode == 2 and "invalid -e" in result.stderr


def test_a_disk_image_in_use_is_refused_but_isos_can_be_shared(
    run_lk, sandbox, iso_image, tmp_path
):
    disk = tmp_path / "disk.qcow2"
    disk.write_bytes(b"QFI\xfb" + b"\0" * 508)
    first = start(run_lk, disk, "--name", "owner")
    refused = run_lk(*RUN, str(disk))
    assert refused.returncode == 2 and "in use by container owner" in refused.stderr
    assert list(state(sandbox)) == [first]
    start(run_lk, iso_image)
    start(run_lk, iso_image)  # read-only media: no conflict
    run_lk("stop", "owner", check=True)
    start(run_lk, disk)  # free again once the owner stopped


def test_ps_json_alias(run_lk, sandbox, iso_image):
    cid = start(run_lk, iso_image)
    assert [c["id"] for c in json.loads(run_lk("ps", "--json", check=True).stdout)] == [cid]


def test_corrupt_record_error_names_the_record(run_lk, sandbox):
    path = sandbox / "containers.json"
    path.write_text('{"schema": 1, "containers": {"abcd1234": {"image": "/x", "memory": "lots"}}}')
    before = path.read_bytes()
    result = run_lk("ps", "-a")
    assert result.returncode == 1
    assert "abcd1234" in result.stderr and str(path) in result.stderr
    assert "move it aside" in result.stderr
    assert path.read_bytes() == before
