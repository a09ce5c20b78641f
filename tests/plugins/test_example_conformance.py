"""The docs' worked example passes lk's conformance kit (lk_core.testing).

This is the test module the plugin author guide recommends every hypervisor
plugin to have; the part between the ``--8<--`` markers is shown there.
"""

from __future__ import annotations

import sys
from pathlib import Path

SRC = Path(__file__).parent / "lk-example-hypervisor" / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

# --8<-- [start:conformance]
import pytest  # noqa: E402
from lk_core.testing import HypervisorConformance, make_image  # noqa: E402
from lk_example_hypervisor.hypervisor import ExampleHypervisor  # noqa: E402


class TestExampleHypervisor(HypervisorConformance):
    """Every check of the kit, against the example hypervisor."""

    ready_line = b"example-vm: ready"  # its console's last boot line
    boot_timeout = 20.0
    liveness_timeout = 10.0

    @pytest.fixture
    def hypervisor(self) -> ExampleHypervisor:
        return ExampleHypervisor()

    @pytest.fixture
    def image(self, tmp_path: Path) -> Path:
        return make_image(tmp_path, "iso")  # the example "boots" any ISO file


# --8<-- [end:conformance]
