"""Helpers for the end-to-end tests."""

from __future__ import annotations

import os
import time
from pathlib import Path

READY = "lk-test: ready"
SHUTDOWN = "lk-test: shutting down"


def wait_for_text(path: Path, text: str, timeout: float = 120.0) -> str:
    """Wait until ``text`` appears in the file; return the file's content."""
    deadline = time.monotonic() + timeout
    content = ""
    while time.monotonic() < deadline:
        try:
            content = path.read_text(errors="replace")
        except FileNotFoundError:
            content = ""
        if text in content:
            return content
        time.sleep(0.2)
    raise AssertionError(
        f"{text!r} not in {path} after {timeout}s; last output:\n{content[-2000:]}"
    )


def listening_addresses(port: int) -> set[str]:
    """The local addresses with a TCP socket listening on ``port`` (from /proc/net/tcp)."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        if not os.path.exists(table):
            continue
        with open(table) as handle:
            next(handle)
            for line in handle:
                fields = line.split()
                local, state = fields[1], fields[3]
                address, port_hex = local.split(":")
                if state == "0A" and int(port_hex, 16) == port:
                    if width == 8:
                        octets = bytes.fromhex(address)[::-1]
                        found.add(".".join(str(b) for b in octets))
                    else:
                        found.add(address)
    return found
