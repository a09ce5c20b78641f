"""A hypervisor plugin written against lk 0.1's contract: a plain class, no base class.

Load it with ``LK_PLUGIN_MODULES=legacy_hypervisor`` (tests/plugins on
PYTHONPATH). It has only what lk 0.1 asked for: ``name``, ``description``,
``formats``, ``priority``, ``availability()``, ``build_command(options)`` and
``request_shutdown(container, runtime_dir)``. lk wraps it in
:class:`lk_core.hypervisor.LegacyProcessHypervisor`. Its VMs are
tests/helpers/fake_vm.py processes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lk_core.model import Availability, Container, HypervisorOptions

from lk_core import hookimpl

FAKE_VM = Path(__file__).resolve().parents[1] / "helpers" / "fake_vm.py"


class LegacyHypervisor:
    name = "legacy"
    description = "A hypervisor written for lk 0.1 (a plain class)"
    formats = frozenset({"iso", "raw"})
    priority = 0

    def availability(self) -> Availability:
        return Availability(True, details={"written for": "lk 0.1"})

    def build_command(self, options: HypervisorOptions) -> list[str]:
        return [
            sys.executable,
            str(FAKE_VM),
            "--console",
            str(options.console_log),
            "--runtime",
            str(options.runtime_dir),
        ]

    def request_shutdown(self, container: Container, runtime_dir: Path) -> None:
        (runtime_dir / "powerdown").touch()


@hookimpl
def register_hypervisors() -> list[LegacyHypervisor]:
    return [LegacyHypervisor()]
