"""Published ports: parsing ``[IP:]HOST:GUEST[/tcp|udp]`` and checking host ports are free."""

from __future__ import annotations

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


def port_is_free(host_ip: str, port: int, protocol: Protocol = Protocol.TCP) -> bool:
    """True if a server could bind ``host_ip:port`` right now."""
    with socket.socket(socket.AF_INET, _socket_type(protocol)) as sock:
        if protocol is Protocol.TCP:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host_ip, port))
        except OSError:
            return False
    return True


def check_ports_free(mappings: Iterable[PortMapping], flag: str = "-p HOST:GUEST") -> None:
    """Raise a one-line error for a duplicated or busy host port (``flag`` fixes it)."""
    seen: set[tuple[str, int, Protocol]] = set()
    for m in mappings:
        key = (m.host_ip, m.host_port, m.protocol)
        if key in seen:
            raise UsageError(f"host port {m.host_port}/{m.protocol} is published twice")
        seen.add(key)
        if not port_is_free(m.host_ip, m.host_port, m.protocol):
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
