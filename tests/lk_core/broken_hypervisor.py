"""Hypervisors for testing lk_core.testing's conformance kit itself.

:class:`ToyEngine` is a correct engine (a general :class:`Hypervisor`, not a
process hypervisor): it starts its VMs itself (tests/helpers/fake_vm.py
processes), finds them again through the :class:`Handle` lk records, and
reports their state. It passes the kit. Each other class breaks one rule and
must fail the kit with a readable message:

- :class:`IgnoresGracefulStop`: ``request_stop`` does nothing, so only a kill stops it;
- :class:`LyingState`: ``state`` always says ``running``;
- :class:`WrongStartType`: ``start`` returns a dict instead of a Handle;
- :class:`SilentConsole`: the VM never writes its console;
- :class:`PlainClass`: written for lk 0.1 (no base class, no capabilities): it
  runs, wrapped, but is not a Hypervisor;
- :class:`BadDeclarations`: a capitalised name, no description, no formats,
  a capability given as a string, an option of an unknown kind, and
  "not available" without a reason.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from lk_core.hypervisor import Capability, Hypervisor
from lk_core.model import Availability, Container, HypervisorOptions, Status
from lk_core.options import OptionSpec
from lk_core.paths import runtime_dir
from lk_core.plugins import Plugins
from lk_core.process import is_same_process, signal_process, start_token
from lk_core.vm import Handle, VmState

FAKE_VM = Path(__file__).resolve().parents[1] / "helpers" / "fake_vm.py"

#: Every VM process started in this Python process (reaped by :func:`kill_all`).
_PROCESSES: dict[int, subprocess.Popen[bytes]] = {}


def kill_all() -> None:
    """Kill every VM process the toy engines started (a test's last resort)."""
    for proc in list(_PROCESSES.values()):
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    _PROCESSES.clear()


class ToyEngine(Hypervisor):
    """An engine whose VMs are fake_vm.py processes it starts and watches itself."""

    name = "toy"
    description = "Toy engine: VMs are processes it starts itself (tests only)"
    formats = frozenset({"iso", "raw"})
    capabilities = frozenset({Capability.RESTART})

    def availability(self) -> Availability:
        return Availability(True, details={"kind": "test double"})

    def console_path(self, spec: HypervisorOptions) -> str:
        return str(spec.console_log)

    def start(self, plugins: Plugins, container: Container, spec: HypervisorOptions) -> Any:
        proc = subprocess.Popen(
            [
                *(sys.executable, str(FAKE_VM)),
                *("--console", self.console_path(spec), "--runtime", str(spec.runtime_dir)),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        _PROCESSES[proc.pid] = proc
        return Handle({"pid": proc.pid, "token": start_token(proc.pid)})

    @staticmethod
    def _identity(container: Container) -> tuple[int, str]:
        return int(container.handle.get("pid", 0)), str(container.handle.get("token", ""))

    def _alive(self, container: Container) -> bool:
        for proc in _PROCESSES.values():
            proc.poll()  # reap exited VMs
        return is_same_process(*self._identity(container))

    def state(self, container: Container) -> VmState:
        if self._alive(container):
            return VmState(Status.RUNNING)
        proc = _PROCESSES.get(self._identity(container)[0])
        return VmState(Status.STOPPED, exit_code=proc.returncode if proc else None)

    def request_stop(self, container: Container) -> None:
        (runtime_dir(container.id) / "powerdown").touch()

    def kill(self, container: Container) -> None:
        pid, token = self._identity(container)
        signal_process(pid, token, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while self._alive(container) and time.monotonic() < deadline:
            time.sleep(0.05)


class IgnoresGracefulStop(ToyEngine):
    name = "ignores-stop"

    def request_stop(self, container: Container) -> None:
        """Pretends to ask, asks nothing."""


class LyingState(ToyEngine):
    name = "lying-state"

    def state(self, container: Container) -> VmState:
        self._alive(container)
        return VmState(Status.RUNNING)


class WrongStartType(ToyEngine):
    name = "wrong-start"

    def start(self, plugins: Plugins, container: Container, spec: HypervisorOptions) -> Any:
        handle = super().start(plugins, container, spec)
        return dict(handle.data)


class SilentConsole(ToyEngine):
    name = "silent-console"

    def console_path(self, spec: HypervisorOptions) -> str:
        return "/dev/null"


class BadDeclarations(ToyEngine):
    name = "Bad Name"
    description = ""
    formats: frozenset[str] = frozenset()
    capabilities = frozenset({"ports"})  # type: ignore[assignment]

    def availability(self) -> Availability:
        return Availability(False, "")

    def options(self) -> list[OptionSpec]:
        return [OptionSpec("speed", "How fast", kind="fast")]


class PlainClass:
    """lk 0.1's protocol: lk wraps it in LegacyProcessHypervisor."""

    name = "plain"
    description = "A plain class, as lk 0.1 plugins were"
    formats = frozenset({"iso"})
    priority = 0

    def availability(self) -> Availability:
        return Availability(True)

    def build_command(self, options: HypervisorOptions) -> list[str]:
        console, runtime = str(options.console_log), str(options.runtime_dir)
        return [sys.executable, str(FAKE_VM), "--console", console, "--runtime", runtime]

    def request_shutdown(self, container: Container, runtime_dir: Path) -> None:
        (runtime_dir / "powerdown").touch()


def iso_image(folder: Path) -> Path:
    """A file lk's detector takes for an ISO (the toy engines boot anything)."""
    data = bytearray(0x8800)
    data[0x8001:0x8006] = b"CD001"
    path = folder / "image.iso"
    path.write_bytes(bytes(data))
    return path
