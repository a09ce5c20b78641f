"""Choosing QEMU's accelerator (KVM, HVF, WHPX or plain TCG emulation).

The choice is, in order: an explicit request (``lk run --accel``, carried in
``HypervisorOptions.options["accel"]``), then ``$LK_QEMU_ACCEL``, then
automatic detection:

* macOS: ``hvf`` (Hypervisor.framework);
* Linux: ``kvm`` when ``/dev/kvm`` is readable and writable by this user,
  unless the loaded KVM is **kvm-pvm** (``/sys/module/kvm_pvm`` exists): that
  flavour (used in some sandboxes) starts QEMU but cannot boot a stock kernel,
  so it is refused and TCG is used instead;
* anything else: ``tcg``.

Only cheap file-system probes are made (no subprocess), so this can run on
every ``lk hypervisors``. The probes are parameters so tests can fake them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from lk_core.errors import UsageError

__all__ = [
    "ACCELERATORS",
    "ENV_ACCEL",
    "KVM_DEVICE",
    "KVM_PVM_MODULE",
    "choose_accelerator",
    "validate_accelerator",
]

#: The accelerators lk accepts, in the order shown in messages.
ACCELERATORS: tuple[str, ...] = ("kvm", "hvf", "tcg", "whpx")
#: Environment variable that overrides automatic detection.
ENV_ACCEL = "LK_QEMU_ACCEL"
#: The KVM device node.
KVM_DEVICE = Path("/dev/kvm")
#: Present when the KVM module is kvm-pvm (cannot boot a stock guest kernel).
KVM_PVM_MODULE = Path("/sys/module/kvm_pvm")


def _read_write_ok(path: Path) -> bool:
    """Return whether ``path`` is readable and writable by this process, never raising."""
    try:
        return os.access(path, os.R_OK | os.W_OK)
    except (OSError, ValueError):
        return False


def _exists(path: Path) -> bool:
    """Return whether anything exists at ``path``, never raising."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def validate_accelerator(value: str, source: str) -> str:
    """Return ``value`` lower-cased if it names a known accelerator.

    ``source`` says where the value came from (for the message). Raises
    :class:`~lk_core.errors.UsageError` otherwise.
    """
    accel = value.strip().lower()
    if accel not in ACCELERATORS:
        raise UsageError(
            f"unknown QEMU accelerator {value!r} from {source}: "
            f"expected one of {', '.join(ACCELERATORS)}"
        )
    return accel


def choose_accelerator(
    requested: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    platform: str | None = None,
    kvm_device: Path = KVM_DEVICE,
    kvm_pvm_module: Path = KVM_PVM_MODULE,
    exists: Callable[[Path], bool] = _exists,
    read_write_ok: Callable[[Path], bool] = _read_write_ok,
) -> tuple[str, str]:
    """Pick the accelerator and say why, as ``(accelerator, reason)``.

    ``requested`` is the explicit choice (``--accel``), empty or ``None`` for
    none. ``environ`` defaults to :data:`os.environ`, ``platform`` to
    :data:`sys.platform`; ``exists`` and ``read_write_ok`` probe the file
    system. ``reason`` is a short human phrase, e.g. ``"/dev/kvm not found"``,
    meant to be shown as ``f"{accel} ({reason})"``.

    Raises :class:`~lk_core.errors.UsageError` for an unknown explicit or
    ``$LK_QEMU_ACCEL`` value.
    """
    if requested and requested.strip():
        return validate_accelerator(requested, "--accel"), "requested with --accel"
    env = os.environ if environ is None else environ
    from_env = env.get(ENV_ACCEL, "").strip()
    if from_env:
        return validate_accelerator(from_env, f"${ENV_ACCEL}"), f"set by ${ENV_ACCEL}"
    system = sys.platform if platform is None else platform
    if system == "darwin":
        return "hvf", "macOS Hypervisor.framework"
    if not system.startswith("linux"):
        return "tcg", f"no hardware accelerator detected on {system}"
    if not exists(kvm_device):
        return "tcg", f"{kvm_device} not found"
    if not read_write_ok(kvm_device):
        return "tcg", f"{kvm_device} is not readable and writable by this user (join group kvm)"
    if exists(kvm_pvm_module):
        return "tcg", f"{kvm_device} is kvm-pvm, which cannot boot a stock kernel"
    return "kvm", f"{kvm_device} is usable"
