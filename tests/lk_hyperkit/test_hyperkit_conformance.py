"""lk-hyperkit passes lk's conformance kit, with a fake hyperkit on a forced macOS.

Hyperkit cannot run on Linux: the hypervisor is told it runs on an Intel Mac
and ``hyperkit`` is tests/lk_hyperkit/fake_hyperkit.py (console through its
pty, power-off on SIGTERM as hyperkit does).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lk_core.testing import HypervisorConformance, make_image
from lk_hyperkit.hypervisor import HyperkitHypervisor


class TestHyperkitConformance(HypervisorConformance):
    ready_line = b"lk-test: ready"
    boot_timeout = 20.0
    liveness_timeout = 10.0

    @pytest.fixture
    def hypervisor(self, make_hv) -> HyperkitHypervisor:
        return make_hv()

    @pytest.fixture
    def image(self, tmp_path: Path) -> Path:
        # LinuxKit's kernel+initrd output boots without UEFI firmware.
        return make_image(tmp_path / "out", "kernel+initrd")
