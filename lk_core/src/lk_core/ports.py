"""Published ports: parsing ``[IP:]HOST:GUEST[/tcp|udp]`` and checking host ports are free."""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Iterable

from lk_core.errors import UsageError
from lk_core.model import PortMapping, Protocol

LOOPBACK = "127.0.0.1"


def _port_number(text: str, spec: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        raise UsageError(f"invalid port mapping {spec!r}: {text!r} is not a port (1-65535)")
    return int(text)


def parse_port(spec: str) -> PortMapping:
    """Parse ``[IP:]HOST:GUEST[/tcp|udp]``; the host IP defaults to 127.0.0.1."""
    body, _, proto_text = spec.strip().partition("/")
    proto_text = proto_text.lower() or "tcp"
    if proto_text not in ("tcp", "udp"):
        raise UsageError(f"invalid port mapping {spec!r}: protocol must be tcp or udp")
    parts = body.split(":")
    if len(parts) in (3, 4) and parts[-1].strip().lower() in ("tcp", "udp"):
        fixed = ":".join(parts[:-1]) + "/" + parts[-1].strip().lower()
        raise UsageError(
            f"invalid port mapping {spec!r}: the protocol goes after a slash, e.g. {fixed}"
        )
    if len(parts) == 2:
        host_ip, host, guest = LOOPBACK, parts[0], parts[1]
    elif len(parts) == 3:
        host_ip, host, guest = parts
    else:
        raise UsageError(
            f"invalid port mapping {spec!r}: expected [IP:]HOST:GUEST[/tcp|udp], e.g. 8080:80"
        )
    try:
        address = ipaddress.ip_address(host_ip)
    except ValueError:
        raise UsageError(
            f"invalid port mapping {spec!r}: {host_ip!r} is not an IPv4 address"
        ) from None
    if address.version != 4:
        raise UsageError(f"invalid port mapping {spec!r}: only IPv4 host addresses are supported")
    return PortMapping(
        host_port=_port_number(host, spec),
        guest_port=_port_number(guest, spec),
        host_ip=str(address),
        protocol=Protocol(proto_text),
    )


def _socket_type(protocol: Protocol) -> int:
    return socket.SOCK_DGRAM if protocol is Protocol.UDP else socket.SOCK_STREAM


def _bind_error(host_ip: str, port: int, protocol: Protocol) -> OSError | None:
    """The error binding ``host_ip:port`` gives right now, or None if it can be bound."""
    with socket.socket(socket.AF_INET, _socket_type(protocol)) as sock:
        if protocol is Protocol.TCP:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host_ip, port))
        except OSError as error:
            return error
    return None


def port_is_free(host_ip: str, port: int, protocol: Protocol = Protocol.TCP) -> bool:
    """True if a server could bind ``host_ip:port`` right now."""
    return _bind_error(host_ip, port, protocol) is None


def check_ports_free(mappings: Iterable[PortMapping], flag: str = "-p HOST:GUEST") -> None:
    """Raise a one-line error for a duplicated or busy host port (``flag`` fixes it).

    A host address that is not one of this host's own is reported as such,
    not as a port in use.
    """
    seen: set[tuple[str, int, Protocol]] = set()
    for m in mappings:
        key = (m.host_ip, m.host_port, m.protocol)
        if key in seen:
            raise UsageError(f"host port {m.host_port}/{m.protocol} is published twice")
        seen.add(key)
        error = _bind_error(m.host_ip, m.host_port, m.protocol)
        if error is None:
            continue
        if error.errno == errno.EADDRNOTAVAIL:
            raise UsageError(
                f"host address {m.host_ip} is not a local address of this host: publish on "
                f"127.0.0.1, 0.0.0.0 or one of this host's addresses (e.g. -p 127.0.0.1:"
                f"{m.host_port}:{m.guest_port})"
            )
        if error.errno == errno.EACCES:
            raise UsageError(
                f"host port {m.host_ip}:{m.host_port}/{m.protocol} needs privileges lk does "
                f"not have (ports below 1024 are reserved): choose another with {flag}"
            )
        raise UsageError(
            f"host port {m.host_ip}:{m.host_port}/{m.protocol} is already in use: "
            f"choose another with {flag}"
        )


def free_port(avoid: Iterable[int] = (), host_ip: str = LOOPBACK) -> int:
    """A TCP port on ``host_ip`` that is free now and not in ``avoid``."""
    avoid_set = set(avoid)
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host_ip, 0))
            port = int(sock.getsockname()[1])
        if port not in avoid_set:
            return port
    raise UsageError("could not find a free TCP port on 127.0.0.1")
