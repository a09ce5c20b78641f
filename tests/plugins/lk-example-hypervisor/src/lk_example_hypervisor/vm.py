"""An example VM: a process that behaves like a hypervisor running a guest.

    python vm.py --image=PATH --format=FMT --console=LOG --control=SOCKET
                 [--memory=MB] [--cpus=N] [--echo=HOST_IP:HOST_PORT:GUEST_PORT]...
                 [--metadata=ISO]

It appends its "serial console" to LOG: a boot banner, what it found in the
image, then ``example-vm: ready``. Every ``--echo`` starts an echo service
(RFC 862: each line sent comes back) on HOST_IP:HOST_PORT, standing in for a
guest service published with ``lk run -p HOST_PORT:GUEST_PORT``. It listens on
the unix socket SOCKET for one-line commands: ``status`` (answers
``running ...``) and ``powerdown`` (answers ``ok``, prints a shutdown line and
exits 0, like a guest that handles the ACPI power button). SIGTERM makes it
exit 0 at once, as QEMU does. It needs only the standard library.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import socketserver
import sys
import threading
import time
from pathlib import Path

MAGIC = b"#!lk-example"
ISO_VOLUME_ID = slice(0x8028, 0x8048)


class Console:
    """The VM's serial console: lines appended to the log file as they happen."""

    def __init__(self, path: str) -> None:
        self.handle = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        self.lock = threading.Lock()

    def print(self, line: str) -> None:
        """Write one console line."""
        with self.lock:
            self.handle.write(line + "\n")


def describe_image(path: Path, fmt: str) -> list[str]:
    """What the VM "boots": a few facts about the image, or an example image's own lines."""
    data = path.read_bytes()
    lines = [f"example-vm: booting {path.name} ({fmt}, {len(data)} bytes)"]
    if fmt == "iso":
        label = data[ISO_VOLUME_ID].decode("ascii", "replace").strip()
        lines.append(f"example-vm: ISO 9660 volume {label or '(no label)'}")
    elif fmt == "example":
        text = data[len(MAGIC) :].decode("utf-8", "replace")
        lines.extend(line for line in text.splitlines() if line.strip())
    return lines


class EchoHandler(socketserver.StreamRequestHandler):
    """RFC 862 echo, a line at a time."""

    def handle(self) -> None:
        """Send every line back until the client closes."""
        for line in self.rfile:
            self.wfile.write(line)


class EchoServer(socketserver.ThreadingTCPServer):
    """An echo service bound to a published host address."""

    daemon_threads = True
    allow_reuse_address = True


def start_echo(spec: str, console: Console) -> EchoServer:
    """Start the echo service described by HOST_IP:HOST_PORT:GUEST_PORT."""
    host_ip, host_port, guest_port = spec.rsplit(":", 2)
    server = EchoServer((host_ip, int(host_port)), EchoHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    console.print(f"example-vm: echo service on guest port {guest_port} ({host_ip}:{host_port})")
    return server


def remove_file(path: str) -> None:
    """Delete ``path`` if it exists."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def serve_control(path: str, console: Console, started: float) -> None:
    """Answer ``status`` and ``powerdown`` on the control socket until powered down."""
    remove_file(path)  # a stale socket from an earlier VM with this ID
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        try:
            server.listen(4)
            console.print("example-vm: ready")
            while True:
                conn, _ = server.accept()
                with conn:
                    command = conn.recv(256).decode(errors="replace").strip()
                    if command == "powerdown":
                        conn.sendall(b"ok\n")
                        console.print("example-vm: power button pressed, shutting down")
                        return
                    if command == "status":
                        uptime = time.monotonic() - started
                        conn.sendall(f"running, up {uptime:.1f}s\n".encode())
                    else:
                        conn.sendall(f"unknown command {command!r}\n".encode())
        finally:
            remove_file(path)


def main(argv: list[str] | None = None) -> int:
    """Run the VM until it is powered down or terminated."""
    parser = argparse.ArgumentParser(prog="example-vm")
    parser.add_argument("--image", required=True)
    parser.add_argument("--format", required=True)
    parser.add_argument("--console", required=True)
    parser.add_argument("--control", required=True)
    parser.add_argument("--memory", type=int, default=1024)
    parser.add_argument("--cpus", type=int, default=1)
    parser.add_argument("--echo", action="append", default=[])
    parser.add_argument("--metadata", default="")
    args = parser.parse_args(argv)

    started = time.monotonic()
    console = Console(args.console)

    def on_term(signum: int, _frame: object) -> None:
        console.print(f"example-vm: terminating on signal {signum}")
        sys.exit(0)  # unwinds serve_control, which removes the socket

    signal.signal(signal.SIGTERM, on_term)
    console.print(f"example-vm: {args.memory} MB, {args.cpus} CPU(s)")
    for line in describe_image(Path(args.image), args.format):
        console.print(line)
    if args.metadata:
        size = os.path.getsize(args.metadata)
        console.print(f"example-vm: metadata CD attached ({size} bytes)")
    try:
        servers = [start_echo(spec, console) for spec in args.echo]
    except OSError as exc:  # stderr ends up in lk's error message
        print(f"example-vm: cannot publish a port: {exc}", file=sys.stderr)
        return 1
    serve_control(args.control, console, started)
    for server in servers:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
