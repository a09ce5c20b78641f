"""A fake hypervisor plugin for fast lifecycle, concurrency and fault tests.

Load it with ``LK_PLUGIN_MODULES=fake_hypervisor`` (with tests/helpers on
PYTHONPATH). Its VMs are real processes (fake_vm.py). Options given with
``lk run --hypervisor fake`` through ``HypervisorOptions.options`` come from
the environment variable FAKE_VM_ARGS (extra arguments for fake_vm.py).
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from lk_core.hypervisor import Capability, ProcessHypervisor
from lk_core.model import Availability, Container, HypervisorOptions

from lk_core import hookimpl

FAKE_VM = Path(__file__).with_name("fake_vm.py")


class FakeHypervisor(ProcessHypervisor):
    name = "fake"
    description = "A fake hypervisor for tests"
    formats = frozenset({"iso", "raw", "qcow2", "vmdk", "kernel+initrd"})
    priority = 0
    capabilities = frozenset(
        {Capability.RESTART, Capability.PORTS, Capability.VOLUMES, Capability.METADATA}
    )

    def availability(self) -> Availability:
        return Availability(True, "", {"kind": "test double"})

    def build_command(self, options: HypervisorOptions) -> list[str]:
        extra = shlex.split(os.environ.get("FAKE_VM_ARGS", ""))
        return [
            sys.executable,
            str(FAKE_VM),
            "--console",
            str(options.console_log),
            "--runtime",
            str(options.runtime_dir),
            *extra,
        ]

    def request_shutdown(self, container: Container, runtime_dir: Path) -> None:
        (runtime_dir / "powerdown").touch()


class FakeConsoleHypervisor(FakeHypervisor):
    """The fake with an interactive console (``lk attach``) on ``<runtime>/console.sock``."""

    name = "fake-console"
    description = "A fake hypervisor with a console socket, for tests"
    capabilities = FakeHypervisor.capabilities | {Capability.CONSOLE}

    def build_command(self, options: HypervisorOptions) -> list[str]:
        socket_path = options.runtime_dir / "console.sock"
        return [*super().build_command(options), "--console-socket", str(socket_path)]

    def open_console(self, container: Container) -> object:
        import socket

        from lk_core.paths import runtime_dir

        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(runtime_dir(container.id) / "console.sock"))
        return sock


@hookimpl
def register_hypervisors() -> list[FakeHypervisor]:
    return [FakeHypervisor(), FakeConsoleHypervisor()]
