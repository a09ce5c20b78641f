"""What this host can give a VM: its memory and CPUs, checked before QEMU starts."""

from __future__ import annotations

import os

from lk_core.errors import UsageError

__all__ = ["check_host_limits", "host_cpus", "host_memory_mb"]


def host_memory_mb() -> int | None:
    """The host's physical memory in MB, or None if it cannot be told."""
    try:
        pages = os.sysconf("SC_PHYS_PAGES")
        page_size = os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None
    if pages <= 0 or page_size <= 0:
        return None
    return pages * page_size // (1024 * 1024)


def host_cpus() -> int | None:
    """The number of CPUs of the host, or None if it cannot be told."""
    return os.cpu_count()


def _describe_memory(mb: int) -> str:
    return f"{mb // 1024} GiB" if mb >= 1024 else f"{mb} MB"


def check_host_limits(memory_mb: int, cpus: int) -> None:
    """Refuse a VM bigger than this host, before the hypervisor fails on it.

    Raises :class:`~lk_core.errors.UsageError` (exit status 2) if
    ``memory_mb`` is more than the host's physical memory or ``cpus`` more
    than its CPUs, saying what the host has. A limit the host cannot report
    is not checked.
    """
    total_mb = host_memory_mb()
    if total_mb is not None and memory_mb > total_mb:
        raise UsageError(
            f"--memory {memory_mb} MB is more than this host's "
            f"{_describe_memory(total_mb)} of memory"
        )
    count = host_cpus()
    if count is not None and cpus > count:
        plural = "CPU" if count == 1 else "CPUs"
        raise UsageError(f"--cpus {cpus} is more than this host's {count} {plural}")
