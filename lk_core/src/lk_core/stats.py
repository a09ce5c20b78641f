"""``lk stats``: CPU, memory and disk I/O of running containers, like ``docker stats``.

For a VM that is a local process (a :class:`~lk_core.hypervisor.ProcessHypervisor`)
lk measures the hypervisor process itself with psutil: CPU % (of one core,
so a busy 2-CPU guest can show 200 %) and resident memory, against the
guest's memory size. Anything else comes from the hypervisor's
:meth:`~lk_core.hypervisor.Hypervisor.stats` (disk bytes read and written,
an engine's memory figure); a column nobody reports is left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs

from lk_core.hypervisor import ProcessHypervisor
from lk_core.model import Container
from lk_core.process import is_same_process

if TYPE_CHECKING:
    import psutil

    from lk_core.manager import Manager

__all__ = ["Sample", "StatsReader", "format_bytes", "render", "to_json"]

_MB = 1024 * 1024


def format_bytes(size: float) -> str:
    """``512 B``, ``12.4 kB``, ``1.5 GB``: decimal units, as docker prints them."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(size) < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


@attrs.frozen
class Sample:
    """One container's figures at one moment (None: not known)."""

    container: Container
    cpu_percent: float | None = None
    memory_bytes: int | None = None
    counters: dict[str, int] = attrs.field(factory=dict)

    @property
    def memory_limit(self) -> int:
        """The guest's memory size in bytes."""
        return self.container.memory * _MB

    @property
    def memory_percent(self) -> float | None:
        """Memory use as a share of the guest's memory size."""
        if self.memory_bytes is None or not self.memory_limit:
            return None
        return 100.0 * self.memory_bytes / self.memory_limit


class StatsReader:
    """Samples containers; keeps each hypervisor process between samples for CPU %."""

    def __init__(self, manager: Manager) -> None:
        self.manager = manager
        self._processes: dict[str, psutil.Process] = {}

    def _process(self, container: Container) -> psutil.Process | None:
        import psutil

        if not container.pid or not is_same_process(container.pid, container.pid_started):
            self._processes.pop(container.id, None)
            return None
        known = self._processes.get(container.id)
        if known is not None and known.pid == container.pid:
            return known
        try:
            process = psutil.Process(container.pid)
            process.cpu_percent(None)  # the first call starts the measurement
        except psutil.Error:
            return None
        self._processes[container.id] = process
        return process

    def prime(self, containers: Sequence[Container]) -> None:
        """Start measuring CPU for ``containers`` (call, wait a moment, then :meth:`sample`)."""
        for container in containers:
            if isinstance(self.manager.hypervisor_of(container), ProcessHypervisor):
                self._process(container)

    def sample(self, containers: Sequence[Container]) -> list[Sample]:
        """The figures of each container now."""
        import psutil

        samples = []
        for container in containers:
            hv = self.manager.hypervisor_of(container)
            cpu: float | None = None
            memory: int | None = None
            if isinstance(hv, ProcessHypervisor) and container.is_active:
                process = self._process(container)
                if process is not None:
                    try:
                        cpu = process.cpu_percent(None)
                        memory = int(process.memory_info().rss)
                    except psutil.Error:
                        cpu = memory = None
            counters: dict[str, int] = {}
            if hv is not None and container.is_active:
                try:
                    counters = dict(hv.stats(container))
                except Exception:  # a plugin's stats must never break the table
                    counters = {}
            if memory is None and "memory_bytes" in counters:
                memory = counters["memory_bytes"]
            samples.append(Sample(container, cpu, memory, counters))
        return samples


def _has_block(samples: Sequence[Sample]) -> bool:
    return any(
        "block_read_bytes" in s.counters or "block_write_bytes" in s.counters for s in samples
    )


def render(samples: Sequence[Sample]) -> str:
    """The table ``lk stats`` prints."""
    from lk_core.table import render_table

    headers = ["ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %"]
    block = _has_block(samples)
    if block:
        headers.append("BLOCK I/O")
    rows = []
    for s in samples:
        used = "-" if s.memory_bytes is None else format_bytes(s.memory_bytes)
        row = [
            s.container.id,
            s.container.name or "-",
            "-" if s.cpu_percent is None else f"{s.cpu_percent:.1f}%",
            f"{used} / {format_bytes(s.memory_limit)}",
            "-" if s.memory_percent is None else f"{s.memory_percent:.1f}%",
        ]
        if block:
            read = s.counters.get("block_read_bytes")
            write = s.counters.get("block_write_bytes")
            row.append(
                f"{'-' if read is None else format_bytes(read)} / "
                f"{'-' if write is None else format_bytes(write)}"
            )
        rows.append(row)
    return render_table(headers, rows)


def to_json(samples: Sequence[Sample]) -> list[dict[str, Any]]:
    """JSON-ready figures (``--format json``): bytes as integers, None when not known."""
    result = []
    for s in samples:
        entry: dict[str, Any] = {
            "id": s.container.id,
            "name": s.container.name,
            "status": str(s.container.status),
            "cpu_percent": None if s.cpu_percent is None else round(s.cpu_percent, 2),
            "memory_bytes": s.memory_bytes,
            "memory_limit_bytes": s.memory_limit,
            "memory_percent": None if s.memory_percent is None else round(s.memory_percent, 2),
        }
        entry.update(s.counters)
        result.append(entry)
    return result
