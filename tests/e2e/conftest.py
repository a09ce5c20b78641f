"""End-to-end fixtures: the real test image (built once, cached) and real QEMU."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def test_image_dir() -> Path:
    """The directory of the test image in every format (built from Debian packages)."""
    if shutil.which("qemu-system-x86_64") is None:
        pytest.fail("qemu-system-x86_64 is not installed: run scripts/setup.sh")
    result = subprocess.run(
        ["bash", str(ROOT / "tests" / "images" / "build.sh")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode != 0:
        pytest.fail(f"building the test image failed:\n{result.stderr[-3000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def qemu_env(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """LK_HOME for real QEMU runs (no fake hypervisor)."""
    monkeypatch.delenv("LK_PLUGIN_MODULES", raising=False)
    from lk_core.plugins import set_plugins

    set_plugins(None)
    return sandbox
