"""lk's hypervisor conformance kit (lk_core.testing) run against the libvirt hypervisor.

Needs the system libvirtd (scripts/libvirt-up.sh): the ``system_conn`` fixture
skips every VM check, with its reason, when it does not answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lk_core.testing import HypervisorConformance

pytestmark = [pytest.mark.libvirt, pytest.mark.e2e, pytest.mark.slow]


class TestLibvirtHypervisor(HypervisorConformance):
    ready_line = b"lk-test: ready"
    boot_timeout = 90.0
    run_options = {"memory": 512}

    @pytest.fixture
    def hypervisor(self, system_conn: Any) -> object:
        from lk_libvirt.hypervisor import LibvirtHypervisor

        return LibvirtHypervisor()

    @pytest.fixture
    def image(self, test_iso: Path) -> Path:
        return test_iso
