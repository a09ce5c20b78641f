"""A domain's serial console: read over the connection (works remotely), or from virtlogd's file.

:class:`Console` opens the console with ``virDomainOpenConsole`` into a
non-blocking stream whose "readable" callback (run by libvirt's event loop
thread, see :func:`~lk_libvirt.binding.ensure_event_loop`) appends to a buffer.
To see a guest's first lines, start the domain paused, open the console, then
resume (:func:`lk_libvirt.domains.start_domain` / ``resume_domain``): a pty
console only carries what is written while it is open.

For a local domain whose XML has ``<serial><log file=.../>``, virtlogd writes
everything to that file as well; :func:`read_log_file` reads it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from types import TracebackType

from lk_core.errors import HypervisorError

from lk_libvirt.binding import (
    Connection,
    Domain,
    Stream,
    ensure_event_loop,
    error_message,
    libvirt_module,
)

__all__ = ["Console", "has_line", "read_log_file"]

_RECV_SIZE = 65536
_EAGAIN = -2


def has_line(text: str, line: str) -> bool:
    """True if ``line`` occurs alone on a line of ``text`` (``\\r\\n`` or ``\\n`` endings)."""
    return any(candidate.strip() == line for candidate in text.splitlines())


class Console:
    """The serial console of a running (or paused) domain, read in the background.

    Use as a context manager, or call :meth:`close`. ``force`` takes the
    console over from another client (e.g. a ``virsh console`` left open).
    """

    def __init__(self, conn: Connection, domain: Domain, *, force: bool = True) -> None:
        libvirt = libvirt_module()
        ensure_event_loop()
        self._libvirt = libvirt
        self._name = str(domain.name())
        self._cond = threading.Condition()
        self._chunks: list[bytes] = []
        self._closed = False
        self._reason = ""
        self._stream: Stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
        flags = libvirt.VIR_DOMAIN_CONSOLE_FORCE if force else 0
        try:
            domain.openConsole(None, self._stream, flags)
            self._stream.eventAddCallback(
                libvirt.VIR_STREAM_EVENT_READABLE
                | libvirt.VIR_STREAM_EVENT_ERROR
                | libvirt.VIR_STREAM_EVENT_HANGUP,
                self._on_event,
                None,
            )
        except libvirt.libvirtError as error:
            raise HypervisorError(
                f"cannot open the console of {self._name}: {error_message(error)}"
            ) from None

    def _on_event(self, stream: Stream, events: int, _opaque: object) -> None:
        """Stream callback (event loop thread): read what is there, note the end."""
        libvirt = self._libvirt
        reason = ""
        data: bytes | int = b""
        if events & libvirt.VIR_STREAM_EVENT_READABLE:
            try:
                data = stream.recv(_RECV_SIZE)
            except libvirt.libvirtError as error:
                reason = error_message(error)
            else:
                if data == b"":
                    reason = "the console closed (domain stopped?)"
        if events & (libvirt.VIR_STREAM_EVENT_ERROR | libvirt.VIR_STREAM_EVENT_HANGUP):
            reason = reason or "the console closed (domain stopped?)"
        with self._cond:
            if isinstance(data, bytes) and data:
                self._chunks.append(data)
            if reason and not self._closed:
                self._closed = True
                self._reason = reason
                with contextlib.suppress(libvirt.libvirtError):
                    stream.eventRemoveCallback()
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        """True once the console ended (domain stopped, connection lost, :meth:`close`)."""
        with self._cond:
            return self._closed

    def text(self) -> str:
        """Everything read so far, decoded (UTF-8, invalid bytes replaced)."""
        with self._cond:
            return b"".join(self._chunks).decode("utf-8", "replace")

    def wait_for_line(self, line: str, timeout: float) -> float:
        """Wait until ``line`` appears alone on a console line; return the seconds waited.

        Raises HypervisorError when ``timeout`` passes or the console closes
        first, with the last console line in the message.
        """
        start = time.monotonic()
        deadline = start + timeout
        with self._cond:
            while True:
                text = b"".join(self._chunks).decode("utf-8", "replace")
                if has_line(text, line):
                    return time.monotonic() - start
                remaining = deadline - time.monotonic()
                if self._closed or remaining <= 0:
                    break
                self._cond.wait(remaining)
        lines = [item.strip() for item in text.splitlines() if item.strip()]
        last = f" (last console line: {lines[-1]!r})" if lines else " (no console output)"
        why = self._reason if self._closed else f"not seen within {timeout:g} s"
        raise HypervisorError(f"{self._name}: {line!r} {why}{last}")

    def read_from(self, index: int, timeout: float) -> tuple[list[bytes], bool]:
        """The chunks read since chunk ``index`` (waiting up to ``timeout`` for one), and closed."""
        with self._cond:
            if len(self._chunks) <= index and not self._closed:
                self._cond.wait(timeout)
            return list(self._chunks[index:]), self._closed

    def close(self) -> None:
        """Stop reading and close the stream (idempotent)."""
        libvirt = self._libvirt
        with self._cond:
            was_closed = self._closed
            self._closed = True
            self._reason = self._reason or "closed"
            self._cond.notify_all()
        if not was_closed:
            with contextlib.suppress(libvirt.libvirtError):
                self._stream.eventRemoveCallback()
        with contextlib.suppress(libvirt.libvirtError):
            self._stream.abort()

    def __enter__(self) -> Console:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def read_log_file(path: str | Path, max_bytes: int = 1 << 20) -> str:
    """The last ``max_bytes`` of a local serial log file, decoded ("" if it does not exist)."""
    file = Path(path)
    try:
        with file.open("rb") as handle:
            size = file.stat().st_size
            handle.seek(max(size - max_bytes, 0))
            return handle.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
    except OSError as error:
        raise HypervisorError(f"cannot read the console log {file}: {error.strerror}") from None
