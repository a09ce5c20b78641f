"""lk_core.testing's conformance kit against the fake process hypervisor (tests/helpers)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_hypervisor import FakeHypervisor
from lk_core.testing import HypervisorConformance, make_image


class TestFakeHypervisor(HypervisorConformance):
    ready_line = b"lk-test: ready"
    boot_timeout = 10.0
    liveness_timeout = 10.0

    @pytest.fixture
    def hypervisor(self, monkeypatch: pytest.MonkeyPatch) -> FakeHypervisor:
        monkeypatch.delenv("FAKE_VM_ARGS", raising=False)
        return FakeHypervisor()

    @pytest.fixture
    def image(self, tmp_path: Path) -> Path:
        return make_image(tmp_path / "image", "iso")
