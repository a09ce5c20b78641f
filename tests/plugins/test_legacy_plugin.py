"""A plugin written against lk 0.1's contract (a plain class) still works with lk 2.0's core.

It is loaded through ``LK_PLUGIN_MODULES`` by the real ``lk`` command line and
driven through a whole life cycle: run -d, ps, logs, stop (gracefully, through
its ``request_shutdown``), rm.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

PLUGINS_DIR = Path(__file__).resolve().parent


@pytest.fixture
def legacy_env(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LK_PLUGIN_MODULES", "legacy_hypervisor")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(PLUGINS_DIR), os.environ.get("PYTHONPATH", "")])
    )
    return sandbox


def test_a_legacy_plugin_is_wrapped_and_listed(run_lk, legacy_env: Path) -> None:
    rows = json.loads(run_lk("hypervisors", "--format", "json", check=True).stdout)
    legacy = next(row for row in rows if row["name"] == "legacy")
    assert legacy["available"] is True and legacy["formats"] == ["iso", "raw"]


def test_full_lifecycle_with_a_legacy_plugin(run_lk, legacy_env: Path, iso_image: Path) -> None:
    cid = run_lk(
        "run", "-d", "--hypervisor", "legacy", "--name", "old", str(iso_image), check=True
    ).stdout.strip()
    ps = run_lk("ps", check=True).stdout
    assert cid in ps and "old" in ps and "running" in ps
    assert json.loads(run_lk("inspect", "old", check=True).stdout)["hypervisor"] == "legacy"
    deadline = time.monotonic() + 20
    while "lk-test: ready" not in run_lk("logs", "old").stdout:
        assert time.monotonic() < deadline, run_lk("logs", "old").stdout
        time.sleep(0.1)

    assert run_lk("stop", "old", check=True).stdout.strip() == "old"
    record = json.loads((legacy_env / "containers.json").read_text())["containers"][cid]
    assert record["status"] == "stopped" and record["exit_code"] == 0
    assert "lk-test: shutting down" in run_lk("logs", cid).stdout  # request_shutdown worked
    assert cid not in run_lk("ps", check=True).stdout

    assert run_lk("rm", "old", check=True).stdout.strip() == "old"
    assert run_lk("ps", "-a", "-q", check=True).stdout == ""
    assert not (legacy_env / "run" / cid).exists()
