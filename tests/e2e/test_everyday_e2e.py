"""lk start / restart / run --rm / stats with real QEMU (boots one VM at a time)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from e2e_support import READY, SHUTDOWN, wait_for_text

pytestmark = pytest.mark.e2e


def record(home: Path, cid: str) -> dict:
    return json.loads((home / "containers.json").read_text())["containers"][cid]


def wait_count(path: Path, text: str, count: int, timeout: float = 120.0) -> str:
    deadline = time.monotonic() + timeout
    content = ""
    while time.monotonic() < deadline:
        content = path.read_text(errors="replace") if path.exists() else ""
        if content.count(text) >= count:
            return content
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not {count} times in {path}:\n{content[-2000:]}")


def test_restart_start_stats_and_run_rm(run_lk, qemu_env: Path, test_image_dir: Path) -> None:
    iso = str(test_image_dir / "lk-test.iso")
    cid = run_lk("run", "-d", "--name", "ev", "-m", "256", iso, check=True).stdout.strip()
    log = qemu_env / "logs" / f"{cid}.log"
    wait_for_text(log, READY)
    first = record(qemu_env, cid)

    stats = json.loads(run_lk("stats", "--format", "json", "ev", check=True).stdout)
    assert stats[0]["memory_bytes"] > 10_000_000 and stats[0]["block_read_bytes"] > 0
    assert "BLOCK I/O" in run_lk("stats", "--no-stream", check=True).stdout

    assert run_lk("restart", "ev", check=True).stdout.strip() == "ev"
    content = wait_count(log, READY, 2)  # one log across boots
    assert SHUTDOWN in content  # the restart's stop was graceful
    again = record(qemu_env, cid)
    assert again["pid"] != first["pid"] and again["status"] == "running"
    assert again["command"] == first["command"] and again["memory"] == 256

    run_lk("stop", "ev", check=True)
    assert record(qemu_env, cid)["status"] == "stopped"
    assert "127.0.0.1:" not in run_lk("ps", "-a", check=True).stdout  # no SSH when stopped
    run_lk("start", "ev", check=True)
    wait_count(log, READY, 3)
    run_lk("stop", "ev", check=True)
    assert record(qemu_env, cid)["status_reason"] == ""  # graceful, not forced

    tmp = run_lk("run", "-d", "--rm", iso, check=True).stdout.strip()
    tmp_log = qemu_env / "logs" / f"{tmp}.log"
    wait_for_text(tmp_log, READY)
    run_lk("stop", tmp, check=True)
    deadline = time.monotonic() + 15
    while (tmp_log.exists() or (qemu_env / "run" / tmp).exists()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not tmp_log.exists() and not (qemu_env / "run" / tmp).exists()
    assert tmp not in json.loads((qemu_env / "containers.json").read_text())["containers"]

    removed = run_lk("prune", "-f", check=True).stdout.splitlines()
    assert removed[0] == "ev" and removed[-1].startswith("Removed 1 container, freed ")
