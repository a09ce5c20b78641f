"""lk-qemu: the QEMU hypervisor plugin for lk.

Modules: :mod:`lk_qemu.plugin` (entry point), :mod:`lk_qemu.hypervisor`
(:class:`~lk_qemu.hypervisor.QemuHypervisor`), :mod:`lk_qemu.accel`
(accelerator choice), :mod:`lk_qemu.argv` (the command line, pure) and
:mod:`lk_qemu.qmp` (a small QMP client).
"""

from __future__ import annotations

__all__: list[str] = []
