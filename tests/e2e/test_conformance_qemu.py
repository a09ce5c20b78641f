"""lk-qemu passes lk's conformance kit with real boots of the test image.

Two real boots (the VM the read-only checks share, and the graceful stop,
which waits for the guest to be up); the forced stop, liveness and removal
checks stop their VM right after it starts.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e_support import READY
from lk_core.testing import HypervisorConformance
from lk_qemu.hypervisor import QemuHypervisor

pytestmark = pytest.mark.e2e


class TestQemuConformance(HypervisorConformance):
    ready_line = READY.encode()
    boot_timeout = 120.0  # TCG emulation on a busy machine
    liveness_timeout = 15.0
    run_options = {"memory": 512}

    @pytest.fixture
    def hypervisor(self) -> QemuHypervisor:
        return QemuHypervisor()

    @pytest.fixture
    def image(self, test_image_dir: Path) -> Path:
        return test_image_dir / "lk-test.iso"  # read-only: every check may boot it
