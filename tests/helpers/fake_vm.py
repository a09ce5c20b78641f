"""A fake VM: a real process that behaves like a hypervisor running a guest.

It appends console lines to --console, prints the test image's ready line,
powers off (printing the shutdown line, exit 0) when a file ``powerdown``
appears in --runtime, and exits on SIGTERM like QEMU. Fault injection:
--ignore-powerdown (only a kill stops it), --exit-after S --exit-code N
(crash), --fail-start (complain on stderr and exit 1 at once).
"""

import argparse
import os
import signal
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--console", required=True)
parser.add_argument("--runtime", required=True)
parser.add_argument("--boot-seconds", type=float, default=0.2)
parser.add_argument("--ignore-powerdown", action="store_true")
parser.add_argument("--exit-after", type=float, default=0)
parser.add_argument("--exit-code", type=int, default=0)
parser.add_argument("--fail-start", action="store_true")
parser.add_argument("--console-socket", default="")
args = parser.parse_args()

if args.fail_start:
    print("fake-vm: cannot open disk image: Permission denied", file=sys.stderr)
    sys.exit(1)


def console(line: str) -> None:
    with open(args.console, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def on_term(_signum, _frame):
    console("fake-vm: terminating on signal 15")
    sys.exit(0)


signal.signal(signal.SIGTERM, on_term)
if os.path.exists(os.path.join(args.runtime, "powerdown")):  # left by the last run's stop
    os.remove(os.path.join(args.runtime, "powerdown"))
with open(os.path.join(args.runtime, "fake.pid"), "w") as handle:
    handle.write(str(os.getpid()))
console("fake-vm: booting")


def serve_console(path: str) -> None:
    """An interactive console like QEMU's socket chardev: one client; each line typed is
    answered with "fake-shell: LINE" on the socket and in the console log."""
    import socket
    import threading

    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if os.path.exists(path):  # left by the last run
        os.remove(path)
    server.bind(path)
    server.listen(1)

    def loop() -> None:
        while True:
            client, _ = server.accept()
            buffer = b""
            while True:
                data = client.recv(4096)
                if not data:
                    break
                buffer += data
                while b"\n" in buffer or b"\r" in buffer:
                    cut = min(i for i in (buffer.find(b"\n"), buffer.find(b"\r")) if i >= 0)
                    line, buffer = buffer[:cut].decode(errors="replace"), buffer[cut + 1 :]
                    if line:
                        console(f"fake-shell: {line}")
                        client.sendall(f"fake-shell: {line}\r\n".encode())
            client.close()

    threading.Thread(target=loop, daemon=True).start()


if args.console_socket:
    serve_console(args.console_socket)
time.sleep(args.boot_seconds)
console("lk-test: ready")
started = time.monotonic()
powerdown = os.path.join(args.runtime, "powerdown")
while True:
    if os.path.exists(powerdown) and not args.ignore_powerdown:
        console("lk-test: shutting down")
        sys.exit(0)
    if args.exit_after and time.monotonic() - started >= args.exit_after:
        console("fake-vm: guest crashed")
        print("fake-vm: guest crashed", file=sys.stderr)
        sys.exit(args.exit_code)
    time.sleep(0.05)
