"""lk attach with real QEMU: a terminal on the test image's serial console (a root shell).

The test runs ``lk attach`` on a pseudo-terminal, types a command into the
guest's shell, sees its output, and detaches with Ctrl-] (0x1d).
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from e2e_support import READY, SHUTDOWN, wait_for_text

pytestmark = pytest.mark.e2e


def read_until(fd: int, text: bytes, timeout: float = 60.0) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while text not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{text!r} not seen; got {seen[-2000:]!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the other side of the pty closed
                chunk = b""
            if not chunk:
                raise AssertionError(f"EOF before {text!r}; got {seen[-2000:]!r}")
            seen += chunk
    return seen


def test_attach_types_into_the_guest_shell_and_detaches_with_ctrl_bracket(
    run_lk, qemu_env: Path, test_image_dir: Path
) -> None:
    cid = run_lk(
        "run", "-d", "--name", "con", str(test_image_dir / "lk-test.iso"), check=True
    ).stdout.strip()
    log = qemu_env / "logs" / f"{cid}.log"
    wait_for_text(log, READY)

    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lk_core", "attach", "con"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
        start_new_session=True,
    )
    os.close(slave)
    try:
        read_until(master, b"Connected to con (detach with Ctrl-])")
        # one client at a time: a second attach is refused, naming the first
        second = run_lk("attach", "con")
        assert second.returncode == 1
        assert f"already has a console attached (pid {proc.pid})" in second.stderr
        os.write(master, b"\r")
        read_until(master, b"# ")  # the shell's prompt
        os.write(master, b"echo lk-attach-$((6*7))\r")
        read_until(master, b"lk-attach-42")  # only the output has 42: the typed line has $((6*7))
        os.write(master, b"\x1d")
        read_until(master, b"detached from con", timeout=15)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    # the console went on to the log while attached; the VM still runs
    assert "lk-attach-42" in log.read_text(errors="replace")
    assert json.loads(run_lk("inspect", "con", check=True).stdout)["status"] == "running"
    run_lk("stop", "con", check=True)
    assert SHUTDOWN in log.read_text(errors="replace")
    assert "forced" not in run_lk("ps", "-a", check=True).stdout
