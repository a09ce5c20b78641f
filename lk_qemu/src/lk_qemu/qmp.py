"""A tiny QMP (QEMU Machine Protocol) client over a unix socket, stdlib only.

QMP is newline-delimited JSON. On connect QEMU sends a greeting
(``{"QMP": {...}}``); the client must send ``qmp_capabilities`` before any
other command. Each command gets a reply ``{"return": ...}`` or
``{"error": {"class": ..., "desc": ...}}``; asynchronous ``{"event": ...}``
messages may arrive at any time and are skipped here.

Usage::

    with QmpClient(runtime_dir / "qmp.sock", timeout=2.0) as qmp:
        qmp.execute("system_powerdown")

Every failure (no socket, connection refused, timeout, closed connection,
malformed message, error reply) raises :class:`QmpError`, a
:class:`~lk_core.errors.HypervisorError`.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from lk_core.errors import HypervisorError

__all__ = ["DEFAULT_TIMEOUT", "QmpClient", "QmpError"]

#: Seconds allowed for connecting and for each command's reply.
DEFAULT_TIMEOUT = 5.0
# A reply larger than this is not from QEMU's QMP (protects against runaway reads).
_MAX_MESSAGE = 16 * 1024 * 1024


class QmpError(HypervisorError):
    """A QMP exchange failed.

    ``error_class`` is QEMU's error class (e.g. ``"CommandNotFound"``) when
    QEMU answered with an error reply, else ``""``.
    """

    def __init__(self, message: str, error_class: str = "") -> None:
        super().__init__(message)
        self.error_class = error_class


class QmpClient:
    """A synchronous QMP connection to the unix socket at ``path``.

    :meth:`connect` (or entering the ``with`` block) connects, reads the
    greeting and negotiates capabilities; :meth:`execute` runs one command.
    ``timeout`` (seconds) bounds the connection and each reply.
    """

    def __init__(self, path: Path | str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.greeting: dict[str, Any] = {}
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._next_id = 0

    def __enter__(self) -> QmpClient:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def connect(self) -> dict[str, Any]:
        """Connect, read the greeting and send ``qmp_capabilities``; return the greeting."""
        if self._sock is not None:
            raise QmpError(f"QMP client for {self.path} is already connected")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.path))
        except FileNotFoundError:
            sock.close()
            raise QmpError(f"no QMP socket at {self.path} (is the VM running?)") from None
        except ConnectionRefusedError:
            sock.close()
            raise QmpError(
                f"QMP socket {self.path} refused the connection (the VM has exited?)"
            ) from None
        except TimeoutError:
            sock.close()
            raise QmpError(f"timed out connecting to QMP socket {self.path}") from None
        except OSError as error:
            sock.close()
            raise QmpError(
                f"cannot connect to QMP socket {self.path}: {error.strerror or error}"
            ) from None
        self._sock = sock
        self._buffer = b""
        try:
            greeting = self._read_message(time.monotonic() + self.timeout, "the greeting")
            if "QMP" not in greeting:
                raise QmpError(f"{self.path} did not greet like QMP: {_brief(greeting)}")
            self.greeting = greeting
            self.execute("qmp_capabilities")
        except BaseException:
            self.close()
            raise
        return greeting

    def close(self) -> None:
        """Close the connection (harmless if already closed)."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        """Run ``command`` and return its ``"return"`` value.

        That is a ``dict`` for most commands (``{}`` for ``system_powerdown``,
        ``{"status": "running", ...}`` for ``query-status``) and a ``list`` for
        some ``query-*`` commands. Events received meanwhile are skipped.
        Raises :class:`QmpError` for an error reply, a timeout or a lost
        connection.
        """
        if self._sock is None:
            raise QmpError(f"QMP client for {self.path} is not connected")
        self._next_id += 1
        request_id = f"lk-{self._next_id}"
        request: dict[str, Any] = {"execute": command, "id": request_id}
        if arguments is not None:
            request["arguments"] = arguments
        deadline = time.monotonic() + self.timeout
        try:
            self._sock.sendall(json.dumps(request).encode("utf-8") + b"\n")
        except TimeoutError:
            raise QmpError(f"timed out sending QMP command {command!r}") from None
        except OSError as error:
            raise QmpError(
                f"cannot send QMP command {command!r} to {self.path}: {error.strerror or error}"
            ) from None
        while True:
            message = self._read_message(deadline, f"the reply to {command!r}")
            if "event" in message:
                continue
            if "id" in message and message["id"] != request_id:
                continue
            if "error" in message:
                failure = message["error"]
                if isinstance(failure, dict):
                    error_class = str(failure.get("class", ""))
                    desc = str(failure.get("desc", "")) or "no description"
                else:
                    error_class, desc = "", str(failure)
                suffix = f" ({error_class})" if error_class else ""
                raise QmpError(f"QMP command {command!r} failed: {desc}{suffix}", error_class)
            if "return" in message:
                return message["return"]
            raise QmpError(f"unexpected QMP reply to {command!r}: {_brief(message)}")

    def _read_message(self, deadline: float, what: str) -> dict[str, Any]:
        """Read one JSON object (one line) before ``deadline`` (``time.monotonic()``)."""
        assert self._sock is not None
        while True:
            line, newline, rest = self._buffer.partition(b"\n")
            if newline:
                self._buffer = rest
                if not line.strip():
                    continue
                try:
                    message = json.loads(line)
                except ValueError:
                    raise QmpError(
                        f"malformed QMP message from {self.path}: {_brief(line)}"
                    ) from None
                if not isinstance(message, dict):
                    raise QmpError(f"malformed QMP message from {self.path}: {_brief(message)}")
                return message
            if len(self._buffer) > _MAX_MESSAGE:
                raise QmpError(f"QMP message from {self.path} is too long")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise QmpError(f"timed out waiting for {what} from QMP socket {self.path}")
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                raise QmpError(
                    f"timed out waiting for {what} from QMP socket {self.path}"
                ) from None
            except OSError as error:
                raise QmpError(
                    f"lost the QMP connection to {self.path}: {error.strerror or error}"
                ) from None
            if not chunk:
                raise QmpError(f"QMP connection to {self.path} closed while waiting for {what}")
            self._buffer += chunk


def _brief(value: object, limit: int = 200) -> str:
    """Return ``value`` as a one-line string of at most ``limit`` characters."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
