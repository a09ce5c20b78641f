"""The ``example`` hypervisor: each VM is a Python process running :mod:`lk_example_hypervisor.vm`.

Each VM is one local process, so it subclasses
:class:`lk_core.hypervisor.ProcessHypervisor`: what lk asks of it is small. Say
whether it can run here, declare what it can do (its capabilities), turn
:class:`~lk_core.model.HypervisorOptions` into a command line, and ask a
running VM to power off. lk does the rest: the supervisor process, the state,
liveness checks, logs, forced stops.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from lk_core.errors import HypervisorError
from lk_core.hypervisor import Capability, ProcessHypervisor
from lk_core.model import Availability, Container, HypervisorOptions, Protocol

#: The VM program, run with this Python.
VM_SCRIPT = Path(__file__).with_name("vm.py")
#: The VM's control socket, inside the container's private runtime folder.
CONTROL_SOCKET = "control.sock"
#: The image format this plugin adds, and the first bytes that identify it.
EXAMPLE_FORMAT = "example"
EXAMPLE_MAGIC = b"#!lk-example"
#: Longest unix socket path (``sun_path`` is 108 bytes on Linux, 104 on macOS).
MAX_SOCKET_PATH = 103


def control_socket(runtime_dir: Path) -> Path:
    """Where the VM listens for ``powerdown`` and ``status``."""
    return runtime_dir / CONTROL_SOCKET


def send_control(runtime_dir: Path, command: str, timeout: float = 2.0) -> str:
    """Send one command to the VM's control socket and return its one-line answer.

    Raises :class:`OSError` if the VM is not listening (not started yet, or gone).
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(control_socket(runtime_dir)))
        sock.sendall(command.encode() + b"\n")
        return sock.recv(4096).decode(errors="replace").strip()


# --8<-- [start:class]
class ExampleHypervisor(ProcessHypervisor):
    """VMs that are Python processes: a console log, echo services, a control socket."""

    name = "example"
    description = "Example plugin: each VM is a Python process (echo service on -p ports)"
    formats = frozenset({"iso", "raw", EXAMPLE_FORMAT})
    priority = 0  # below qemu (10): used only when asked for, or when nothing else runs
    # What it can do beyond booting: publish (TCP) ports, read lk's metadata CD, and
    # start a stopped VM again. It cannot share folders (-v): lk refuses -v in one line.
    capabilities = frozenset({Capability.PORTS, Capability.METADATA, Capability.RESTART})
    # It adds no options to lk run, so it keeps Hypervisor.options() (none).

    def availability(self) -> Availability:
        """Always available: it needs nothing but Python."""
        return Availability(True, details={"python": sys.executable})

    def build_command(self, options: HypervisorOptions) -> list[str]:
        """The argv of a VM process for ``options``; refuse what it cannot honour."""
        # -v never gets here (no Capability.VOLUMES), nor options it did not declare.
        if any(port.protocol is not Protocol.TCP for port in options.ports):
            raise HypervisorError("the example hypervisor publishes TCP ports only")
        sock = control_socket(options.runtime_dir)
        if len(os.fsencode(sock)) > MAX_SOCKET_PATH:
            raise HypervisorError(
                f"socket path {sock} is too long for a unix socket: set a shorter LK_HOME"
            )
        argv = [
            sys.executable,
            str(VM_SCRIPT),
            f"--image={options.image}",
            f"--format={options.format}",
            f"--console={options.console_log}",
            f"--control={sock}",
            f"--memory={options.memory}",
            f"--cpus={options.cpus}",
        ]
        for port in options.ports:
            argv.append(f"--echo={port.host_ip}:{port.host_port}:{port.guest_port}")
        if options.metadata_iso is not None:
            argv.append(f"--metadata={options.metadata_iso}")
        return argv

    def request_shutdown(self, container: Container, runtime_dir: Path) -> None:
        """Press the VM's power button through its control socket; do not wait."""
        try:
            send_control(runtime_dir, "powerdown")
        except OSError as exc:
            raise HypervisorError(
                f"cannot reach the example VM of {container.display_name}: {exc}"
            ) from exc


# --8<-- [end:class]
