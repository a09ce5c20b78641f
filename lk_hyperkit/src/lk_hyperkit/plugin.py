"""The lk plugin module of lk-hyperkit (entry point ``hyperkit``, group ``lk``).

Imported at every ``lk`` start-up, so it imports nothing heavy and runs no
process: the hypervisor module is imported only when lk asks for hypervisors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lk_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from lk_hyperkit.hypervisor import HyperkitHypervisor


@hookimpl
def register_hypervisors() -> list[HyperkitHypervisor]:
    """Contribute the Hyperkit hypervisor (shown by ``lk hypervisors`` even where unavailable)."""
    from lk_hyperkit.hypervisor import HyperkitHypervisor

    return [HyperkitHypervisor()]
