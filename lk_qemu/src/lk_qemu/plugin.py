"""The lk plugin entry point (``lk`` group, name ``qemu``): contributes the QEMU hypervisor."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lk_core.hookspecs import hookimpl

from lk_qemu.hypervisor import QemuHypervisor

if TYPE_CHECKING:
    from lk_core.hypervisor import Hypervisor


@hookimpl
def register_hypervisors() -> list[Hypervisor]:
    """Contribute :class:`~lk_qemu.hypervisor.QemuHypervisor`."""
    return [QemuHypervisor()]
