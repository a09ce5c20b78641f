#!/usr/bin/env python3
"""A fake hyperkit: a real process that takes hyperkit's command line and acts like it.

Use it as ``LK_HYPERKIT`` (it must be executable; if ``python3`` on PATH is not
the right interpreter, wrap it in a shell script that runs
``exec /path/to/python fake_hyperkit.py "$@"``). What it does:

- parses hyperkit's options (``-A -u -F -c -m -U -s -l -f`` ...) and, when
  ``$FAKE_HYPERKIT_ARGV`` names a file, writes them there as JSON:
  ``{"argv": [...], "flags": [...], "options": {...}, "slots": {...},
  "lpc": {...}, "firmware": {...}}``;
- like hyperkit, exits 1 without ``-f`` and refuses an existing pidfile
  (it is created with ``O_EXCL``); writes its PID to the ``-F`` pidfile and
  removes it on exit;
- serial console (``-l com1,...``): ``autopty=PATH`` creates a pseudo-terminal
  and writes its name into PATH (what hyperkit does, and what lk's console
  launcher copies into the console log); ``log=PATH`` gets the same lines as
  plain text (real hyperkit keeps a 64 KiB ring buffer there); ``stdio``
  writes them to stdout;
- prints ``fake-hyperkit: booting``, then ``lk-test: ready`` on the console,
  then sleeps until SIGTERM, on which it prints ``lk-test: shutting down``,
  waits (at most 2 s) for the console to be read, and exits 0.

Fault injection through the environment: ``FAKE_HYPERKIT_BOOT_SECONDS``
(delay before the ready line, default 0.2), ``FAKE_HYPERKIT_FAIL_START=1``
(complain on stderr, exit 1), ``FAKE_HYPERKIT_IGNORE_TERM=1`` (only a kill
stops it), ``FAKE_HYPERKIT_EXIT_AFTER=S`` with ``FAKE_HYPERKIT_EXIT_CODE=N``
(the VM "crashes" after S seconds).
"""

from __future__ import annotations

import contextlib
import fcntl
import getopt
import json
import os
import signal
import struct
import sys
import termios
import time
import tty

# hyperkit's getopt string, minus the one option that takes an argument by mistake upstream.
OPTSTRING = "behvuwxMACHPWYf:F:g:c:s:m:l:U:"


def parse(argv: list[str]) -> dict[str, object]:
    """Parse hyperkit's argv the way hyperkit does (getopt, then comma-separated values)."""
    try:
        opts, rest = getopt.getopt(argv, OPTSTRING)
    except getopt.GetoptError as error:
        print(f"fake-hyperkit: {error}", file=sys.stderr)
        sys.exit(1)
    flags: list[str] = []
    options: dict[str, object] = {}
    slots: dict[str, dict[str, str]] = {}
    lpc: dict[str, dict[str, str]] = {}
    firmware: dict[str, object] = {}
    for name, value in opts:
        key = name.lstrip("-")
        if not value and key not in "fFgcsmlU":
            flags.append(key)
        elif key == "s":
            slot, _, rest_of = value.partition(",")
            emulation, _, config = rest_of.partition(",")
            slots[slot] = {"emulation": emulation, "config": config}
        elif key == "l":
            device, _, backends = value.partition(",")
            parsed: dict[str, str] = {}
            for backend in backends.split(","):
                backend_name, _, backend_value = backend.partition("=")
                parsed[backend_name] = backend_value
            lpc[device] = parsed
        elif key == "f":
            # hyperkit splits the first three commas only: the cmdline keeps its commas.
            parts = value.split(",", 3)
            firmware = {"kind": parts[0], "args": parts[1:]}
        else:
            options[key] = value
    return {
        "argv": argv,
        "flags": flags,
        "options": options,
        "slots": slots,
        "lpc": lpc,
        "firmware": firmware,
        "rest": rest,
    }


class Console:
    """The serial console: a pty (autopty), a plain copy (log=), or stdout (stdio)."""

    def __init__(self, backends: dict[str, str]) -> None:
        self.master = -1
        self.slave = -1
        self.log_path = backends.get("log", "")
        self.stdio = "stdio" in backends
        link = backends.get("autopty")
        if link:
            self.master, self.slave = os.openpty()
            tty.setraw(self.slave, termios.TCSANOW)
            name = os.ttyname(self.slave)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(link)
            with open(link, "w", encoding="utf-8") as handle:
                handle.write(name)
        if self.log_path:
            open(self.log_path, "w").close()  # hyperkit truncates its ring at start

    def line(self, text: str) -> None:
        """Print one line on the console."""
        data = (text + "\n").encode()
        if self.master >= 0:
            os.write(self.master, data)
        if self.log_path:
            with open(self.log_path, "ab") as handle:
                handle.write(data)
        if self.stdio:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()

    def drain(self, timeout: float = 2.0) -> None:
        """Wait until whoever reads the terminal has read everything (at most ``timeout``)."""
        if self.slave < 0:
            return
        # The pty moves written bytes to the reader's queue asynchronously: give it a
        # moment before trusting an empty queue.
        time.sleep(0.1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pending = struct.unpack(
                "i", fcntl.ioctl(self.slave, termios.FIONREAD, struct.pack("i", 0))
            )[0]
            if pending == 0:
                return
            time.sleep(0.02)


def main() -> int:
    """Behave like hyperkit running a guest that powers off on ACPI."""
    parsed = parse(sys.argv[1:])
    record = os.environ.get("FAKE_HYPERKIT_ARGV")
    if record:
        with open(record, "w", encoding="utf-8") as handle:
            json.dump(parsed, handle, indent=2)
    if os.environ.get("FAKE_HYPERKIT_FAIL_START") == "1":
        print("fake-hyperkit: Unable to create VM (-85)", file=sys.stderr)
        return 1
    firmware = parsed["firmware"]
    if not firmware:
        print("Usage: hyperkit ... -f <fw>", file=sys.stderr)
        return 1
    options = parsed["options"]
    assert isinstance(options, dict)
    pidfile = str(options.get("F", ""))
    if pidfile:
        try:
            fd = os.open(pidfile, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except OSError:
            print("Failed to set up pidfile", file=sys.stderr)
            return 1
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
    lpc = parsed["lpc"]
    assert isinstance(lpc, dict)
    console = Console(lpc.get("com1", {}))
    stopping: list[bool] = []

    def on_term(_signum: int, _frame: object) -> None:
        stopping.append(True)

    if os.environ.get("FAKE_HYPERKIT_IGNORE_TERM") == "1":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, on_term)
    try:
        console.line("fake-hyperkit: booting")
        time.sleep(float(os.environ.get("FAKE_HYPERKIT_BOOT_SECONDS", "0.2")))
        console.line("lk-test: ready")
        started = time.monotonic()
        exit_after = float(os.environ.get("FAKE_HYPERKIT_EXIT_AFTER", "0") or 0)
        while not stopping:
            if exit_after and time.monotonic() - started >= exit_after:
                console.line("fake-hyperkit: guest crashed")
                console.drain()
                return int(os.environ.get("FAKE_HYPERKIT_EXIT_CODE", "3"))
            time.sleep(0.05)
        console.line("lk-test: shutting down")
        console.drain()
        return 0
    finally:
        if pidfile:
            with contextlib.suppress(OSError):
                os.unlink(pidfile)


if __name__ == "__main__":
    sys.exit(main())
