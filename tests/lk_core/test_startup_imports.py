"""``lk ps`` imports only what listing needs (a guard for start-up speed, not a timing).

Each module below cost ``lk ps`` milliseconds once, before it was moved to the
code that needs it. The test runs the real command line twice (the first run
fills lk's caches) and looks at what the second one imported.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cli_support import run_lk_recording
from lk_libvirt.hosts import SYSTEM_SOCKETS

#: Never needed to list containers.
NEVER = (
    "cattrs",  # records in lk's own shape are read by lk_core.records
    "lk_core.serialize",
    "importlib.metadata",  # the entry points come from lk's cache
    "yaml",
    "paramiko",
    "fabric",
    "pycdlib",
    "logging",
    "subprocess",
    "hashlib",
    "lk_core.ssh",
    "lk_core.supervisor",
    "lk_core.metadata",
    "lk_core.checkpoints",
    "lk_templates.render",
    # other commands' modules: lk's commands are added lazily
    "lk_core.cli.ssh",
    "lk_core.cli.everyday",
    "lk_core.cli.checkpoints",
    "lk_core.cli.disks",
    "lk_core.cli.info",
    "lk_templates.cli",
    "lk_libvirt.cli",
)
#: Needed only to ask a libvirt daemon, when one runs here.
WITHOUT_A_DAEMON = ("libvirt", "lk_libvirt.connection", "xml.etree.ElementTree", "tempfile")

RECORD = {
    "image": "/images/lk.iso",
    "format": "iso",
    "hypervisor": "fake",
    "status": "stopped",
    "started_at": "2026-11-28T10:00:00Z",
    "finished_at": "2026-11-28T11:00:00Z",
    "exit_code": 0,
    "ports": [{"host_port": 8080, "guest_port": 80, "host_ip": "127.0.0.1", "protocol": "tcp"}],
}


def imported_by(args: list[str], tmp_path: Path) -> set[str]:
    out = tmp_path / "modules.txt"
    for _ in range(2):  # the first run fills the entry-point cache
        result = run_lk_recording(args, modules_file=out)
        assert result.returncode == 0, result.stderr
    return set(out.read_text().split())


@pytest.mark.parametrize("args", [["ps"], ["ps", "-a"], ["ps", "-q"]])
def test_lk_ps_imports_only_what_listing_needs(
    args: list[str], sandbox: Path, tmp_path: Path
) -> None:
    containers = {f"{i:08x}": {"id": f"{i:08x}", "name": f"vm{i}", **RECORD} for i in range(50)}
    (sandbox / "containers.json").write_text(json.dumps({"schema": 1, "containers": containers}))
    loaded = imported_by(args, tmp_path)
    assert "lk_core.records" in loaded  # the records were read
    unwanted = list(NEVER)
    if not any(os.path.exists(p) for p in SYSTEM_SOCKETS):
        unwanted += WITHOUT_A_DAEMON
    assert sorted(set(unwanted) & loaded) == []
