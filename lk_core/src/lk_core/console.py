"""``lk attach``: an interactive serial console through the hypervisor's console socket.

The hypervisor offers the console (:meth:`~lk_core.hypervisor.Hypervisor.open_console`,
capability ``CONSOLE``); this module holds the one-client lock, puts the
terminal in raw mode, relays bytes both ways and watches for the detach keys
(``Ctrl-]`` by default, as ``virsh console``; docker's ``--detach-keys``
syntax). Console output keeps going to the container's log while attached:
the hypervisor writes the log itself.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from lk_core.errors import ContainerStateError, HypervisorError, UsageError
from lk_core.hypervisor import Capability, require
from lk_core.model import Container, Status

__all__ = [
    "DEFAULT_DETACH_KEYS",
    "LOCK_NAME",
    "DetachMatcher",
    "attach",
    "console_lock",
    "describe_keys",
    "parse_detach_keys",
]

#: The default detach sequence, as ``virsh console``.
DEFAULT_DETACH_KEYS = "ctrl-]"
#: The lock file held (``flock``) by the attached ``lk attach`` process, in the runtime folder.
LOCK_NAME = "console.lock"

_CTRL = "abcdefghijklmnopqrstuvwxyz@[\\]^_"


class SocketLike(Protocol):
    """What :meth:`Hypervisor.open_console` returns: a connected stream socket."""

    def fileno(self) -> int: ...
    def recv(self, size: int, /) -> bytes: ...
    def sendall(self, data: bytes, /) -> Any: ...
    def close(self) -> None: ...


def parse_detach_keys(spec: str) -> bytes:
    """The bytes of a detach sequence given as docker's ``--detach-keys``.

    Comma-separated keys, each one character (``q``) or ``ctrl-<c>`` with
    ``<c>`` a letter or one of ``@[\\]^_`` (``ctrl-]``, ``ctrl-x``,
    ``ctrl-],q``). Raises :class:`UsageError` for anything else.
    """
    keys = bytearray()
    parts = spec.split(",") if spec else []
    for part in parts:
        lowered = part.lower()
        if lowered.startswith("ctrl-") and len(part) == 6 and lowered[5] in _CTRL:
            keys.append(ord(lowered[5].upper()) & 0x1F)  # ctrl-] is 0x1d, ctrl-x 0x18
        elif len(part) == 1 and part.isascii() and part.isprintable():
            keys.append(ord(part))
        else:
            raise UsageError(
                f"invalid --detach-keys {spec!r}: give comma-separated keys, each one "
                "character or ctrl-<letter, @, [, \\, ], ^ or _> (e.g. ctrl-] or ctrl-x,q)"
            )
    if not keys:
        raise UsageError("--detach-keys needs at least one key (e.g. ctrl-])")
    return bytes(keys)


def describe_keys(keys: bytes) -> str:
    """``Ctrl-]``, ``Ctrl-X q``: the detach sequence as users read it."""
    words = []
    for byte in keys:
        if byte < 0x20:
            words.append(f"Ctrl-{chr(byte | 0x40)}")
        else:
            words.append(chr(byte))
    return " ".join(words)


class DetachMatcher:
    """Watches typed bytes for the detach sequence; everything else is forwarded.

    Bytes that could start the sequence are held back until the sequence is
    complete (detach) or broken (they are forwarded), as docker does.
    """

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.pending = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """Return ``(bytes to forward, detach?)`` for ``data`` typed."""
        out = bytearray()
        for value in data:
            self.pending += bytes([value])
            while self.pending and not self.keys.startswith(self.pending):
                out += self.pending[:1]
                self.pending = self.pending[1:]
            if self.pending == self.keys:
                self.pending = b""
                return bytes(out), True
        return bytes(out), False


@contextlib.contextmanager
def console_lock(container: Container, directory: Path) -> Iterator[None]:
    """Hold ``<directory>/console.lock`` while attached; refuse if another process holds it.

    The holder writes its PID into the file, so the refusal can name it.
    """
    import fcntl

    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise ContainerStateError(
                f"container {container.display_name} already has a console attached (pid {holder})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def check_attachable(container: Container, hypervisor: Any) -> None:
    """Raise a one-line error unless ``container`` runs on a hypervisor that has a console."""
    if hypervisor is None:
        raise HypervisorError(
            f"the plugin of hypervisor {container.hypervisor!r} is not loaded: "
            f"cannot attach to {container.display_name}"
        )
    require(hypervisor, Capability.CONSOLE)
    if container.status not in (Status.RUNNING, Status.STARTING):
        raise ContainerStateError(
            f"container {container.display_name} is {container.status}: "
            f"start it first ('lk start {container.display_name}')"
        )


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        view = view[written:]


def relay(console: SocketLike, in_fd: int, out_fd: int, keys: bytes) -> str:
    """Copy ``in_fd`` to the console and the console to ``out_fd`` until one ends.

    Returns ``"detached"`` (the detach keys were typed) or ``"closed"`` (the
    console closed: the VM stopped). At end of input the console is still
    shown until it closes.
    """
    matcher = DetachMatcher(keys)
    sock_fd = console.fileno()
    reading_input = True
    while True:
        watched = [sock_fd, in_fd] if reading_input else [sock_fd]
        try:
            ready, _, _ = select.select(watched, [], [])
        except InterruptedError:
            continue
        if sock_fd in ready:
            try:
                data = console.recv(65536)
            except ConnectionError:
                data = b""
            if not data:
                return "closed"
            _write_all(out_fd, data)
        if in_fd in ready:
            try:
                typed = os.read(in_fd, 4096)
            except OSError:
                typed = b""
            if not typed:
                reading_input = False
                continue
            forward, detach = matcher.feed(typed)
            if forward:
                try:
                    console.sendall(forward)
                except OSError:
                    return "closed"
            if detach:
                return "detached"


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[bool]:
    """Raw mode on ``fd`` while inside if it is a terminal; yields whether it is one."""
    if not os.isatty(fd):
        yield False
        return
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield True
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def attach(
    container: Container,
    hypervisor: Any,
    directory: Path,
    keys: bytes,
    in_fd: int,
    out_fd: int,
    notice: Any = None,
) -> str:
    """Attach ``in_fd``/``out_fd`` to ``container``'s serial console; see :func:`relay`.

    ``directory`` holds the one-client lock (the container's runtime
    folder). ``notice(text)`` (optional) is told when the console is open.
    """
    check_attachable(container, hypervisor)
    with console_lock(container, directory):
        console: SocketLike = hypervisor.open_console(container)
        try:
            if notice is not None:
                notice(f"Connected to {container.display_name} (detach with {describe_keys(keys)})")
            with raw_terminal(in_fd):
                return relay(console, in_fd, out_fd, keys)
        finally:
            console.close()
