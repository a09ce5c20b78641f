"""Opening a libvirt connection that never hangs longer than a deadline.

``virConnectOpen`` has no timeout: an ssh transport to a host that drops packets
waits for ssh's own (long) timeout, and a wedged daemon never answers. So:

1. Network transports (ssh, libssh, tcp, tls) are probed first with a plain TCP
   connect to host:port within the deadline; the failure reason (refused, timed
   out, unknown host) becomes the one-line error.
2. The local system daemon's socket must exist (else "libvirtd is not running").
3. ``virConnectOpen`` itself runs in a worker thread; if it has not returned by
   the deadline the caller gets an error, and the thread closes the connection
   if it opens later (a Python thread cannot be killed; it is a daemon thread).

For ``qemu+ssh`` URIs ``no_tty=1`` is added unless given (ssh would otherwise
ask for a password on the terminal); keepalive (5 s interval, 3 missed) is
enabled on remote connections so that a host that dies is noticed.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Sequence

from lk_core.errors import HypervisorError
from lk_core.threads import start_helper_thread

from lk_libvirt.binding import Connection, ensure_event_loop, error_message, libvirt_module
from lk_libvirt.hosts import SYSTEM_SOCKETS
from lk_libvirt.uri import LibvirtURI, parse_uri

__all__ = [
    "DEFAULT_TIMEOUT",
    "SYSTEM_SOCKETS",
    "close_connection",
    "open_connection",
    "probe_tcp",
]

#: Seconds :func:`open_connection` waits by default. The first connection to a
#: freshly started daemon takes ~8 s (QEMU capability probe).
DEFAULT_TIMEOUT = 30.0


def probe_tcp(host: str, port: int, timeout: float) -> None:
    """Connect to ``host:port`` and close; raise HypervisorError with the reason on failure."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=max(timeout, 0.1)):
            pass
    except TimeoutError:
        raise HypervisorError(
            f"cannot reach {host}:{port}: no answer within {timeout:g} s"
        ) from None
    except socket.gaierror as error:
        raise HypervisorError(
            f"cannot reach {host}:{port}: unknown host ({error.strerror})"
        ) from None
    except OSError as error:
        raise HypervisorError(f"cannot reach {host}:{port}: {error.strerror or error}") from None


def _check_local(uri: LibvirtURI, sockets: Sequence[str]) -> None:
    """Raise HypervisorError if ``uri`` is the local system daemon and none of its sockets exist."""
    if uri.is_remote or uri.is_session or uri.param("socket"):
        return
    if uri.path.rstrip("/") != "/system":
        return
    if not any(os.path.exists(path) for path in sockets):
        raise HypervisorError(
            f"no libvirt daemon answers on {uri} ({sockets[0]} does not exist): start libvirtd "
            "(e.g. sudo bash scripts/libvirt-up.sh, or systemctl start libvirtd)"
        )


def _effective_uri(uri: LibvirtURI) -> LibvirtURI:
    """The URI actually opened: ssh transports never ask for a password on the terminal."""
    if uri.transport == "ssh":
        return uri.with_param("no_tty", "1")
    return uri


def open_connection(
    uri: str | LibvirtURI,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    read_only: bool = False,
    system_sockets: Sequence[str] = SYSTEM_SOCKETS,
) -> Connection:
    """Open a connection to ``uri`` within ``timeout`` seconds, or raise HypervisorError.

    The error is one line: the URI and the reason (unreachable host, no daemon,
    authentication refused, timed out). Starts libvirt's event loop first
    (:func:`~lk_libvirt.binding.ensure_event_loop`).
    """
    parsed = uri if isinstance(uri, LibvirtURI) else parse_uri(uri)
    libvirt = libvirt_module()
    ensure_event_loop()
    deadline = time.monotonic() + timeout
    address = parsed.probe_address
    if address is not None:
        try:
            probe_tcp(address[0], address[1], timeout)
        except HypervisorError as error:
            raise HypervisorError(f"cannot connect to {parsed}: {error}") from None
    _check_local(parsed, system_sockets)

    target = str(_effective_uri(parsed))
    lock = threading.Lock()
    outcome: dict[str, object] = {}

    def opener() -> None:
        try:
            conn = libvirt.openReadOnly(target) if read_only else libvirt.open(target)
        except Exception as error:  # libvirtError, or anything the bindings raise
            with lock:
                outcome["error"] = error
            return
        with lock:
            if outcome.get("abandoned"):
                close_connection(conn)
                return
            outcome["conn"] = conn

    worker = start_helper_thread(opener, name="libvirt-open")
    worker.join(max(deadline - time.monotonic(), 0.0))
    with lock:
        conn: Connection = outcome.get("conn")
        failure = outcome.get("error")
        if isinstance(failure, BaseException):
            raise HypervisorError(f"cannot connect to {parsed}: {error_message(failure)}") from None
        if conn is None:
            outcome["abandoned"] = True
            raise HypervisorError(
                f"cannot connect to {parsed}: no answer within {timeout:g} s"
            ) from None
    if parsed.is_remote:
        # Keepalive is best effort (old or local daemons refuse it).
        with contextlib.suppress(Exception):
            conn.setKeepAlive(5, 3)
    return conn


def close_connection(conn: Connection) -> None:
    """Close ``conn``, ignoring errors (the connection may already be dead)."""
    # A dead connection cannot be closed cleanly; there is nothing to do about it.
    with contextlib.suppress(Exception):
        conn.close()
