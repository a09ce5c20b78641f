"""libvirt connection URIs, parsed into a small record.

``driver[+transport]://[user@][host][:port]/path[?params]``: for example
``qemu:///system``, ``qemu+ssh://lk@host:2222/session?keyfile=/k&no_verify=1``,
``qemu+libssh://...``, ``qemu+tcp://127.0.0.1/system``. Parsing is pure and only
as strict as lk needs: what libvirt itself would reject is left to libvirt.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit

import attrs
from lk_core.errors import UsageError

__all__ = ["DEFAULT_PORTS", "NETWORK_TRANSPORTS", "LibvirtURI", "parse_uri"]

#: Transports that reach another machine over TCP, and their default ports.
DEFAULT_PORTS: dict[str, int] = {"ssh": 22, "libssh": 22, "libssh2": 22, "tcp": 16509, "tls": 16514}
#: Transports :func:`parse_uri` accepts that are network connections.
NETWORK_TRANSPORTS = frozenset(DEFAULT_PORTS)
_LOCAL_TRANSPORTS = frozenset({"", "unix", "ext"})


@attrs.frozen
class LibvirtURI:
    """A parsed libvirt URI.

    ``transport`` is ``""`` for a plain local URI; ``host`` is ``""`` when the
    URI names no host (local). ``port`` is the explicit port or 0.
    ``params`` keeps the query parameters in order.
    """

    text: str
    driver: str
    transport: str = ""
    user: str = ""
    host: str = ""
    port: int = 0
    path: str = ""
    params: tuple[tuple[str, str], ...] = ()

    @property
    def is_remote(self) -> bool:
        """True if the connection goes over the network (ssh, libssh, tcp, tls)."""
        return self.transport in NETWORK_TRANSPORTS or (
            self.transport == "" and self.host not in ("", "localhost")
        )

    @property
    def is_session(self) -> bool:
        """True for a per-user session daemon (``/session``)."""
        return self.path.rstrip("/") == "/session"

    @property
    def keyfile(self) -> str:
        """The ``keyfile`` parameter (an SSH private key), or ``""``."""
        return self.param("keyfile")

    @property
    def probe_address(self) -> tuple[str, int] | None:
        """``(host, port)`` a TCP connection must reach for this URI, or None when local."""
        if not self.is_remote:
            return None
        port = self.port or DEFAULT_PORTS.get(self.transport or "tls", 16514)
        return (self.host or "localhost", port)

    def param(self, name: str) -> str:
        """The value of query parameter ``name`` (the last one if repeated), or ``""``."""
        value = ""
        for key, item in self.params:
            if key == name:
                value = item
        return value

    def with_param(self, name: str, value: str) -> LibvirtURI:
        """This URI with ``name=value`` appended to its query (unless ``name`` is present)."""
        if any(key == name for key, _ in self.params):
            return self
        separator = "&" if "?" in self.text else "?"
        return attrs.evolve(
            self, text=f"{self.text}{separator}{name}={value}", params=(*self.params, (name, value))
        )

    def __str__(self) -> str:
        return self.text


def parse_uri(text: str) -> LibvirtURI:
    """Parse a libvirt URI, raising :class:`~lk_core.errors.UsageError` when it is not one."""
    value = text.strip()
    try:
        parts = urlsplit(value)
        port = parts.port or 0
    except ValueError as error:
        raise UsageError(f"invalid libvirt URI {text!r}: {error}") from None
    if not parts.scheme or "://" not in value:
        raise UsageError(
            f"invalid libvirt URI {text!r}: expected DRIVER[+TRANSPORT]://[USER@]HOST[:PORT]/PATH, "
            "e.g. qemu:///system or qemu+ssh://user@host/system"
        )
    driver, _, transport = parts.scheme.lower().partition("+")
    if transport and transport not in NETWORK_TRANSPORTS | _LOCAL_TRANSPORTS:
        raise UsageError(
            f"invalid libvirt URI {text!r}: unknown transport {transport!r} (known: "
            f"{', '.join(sorted(NETWORK_TRANSPORTS | {'unix', 'ext'}))})"
        )
    return LibvirtURI(
        text=value,
        driver=driver,
        transport=transport,
        user=unquote(parts.username or ""),
        host=parts.hostname or "",
        port=port,
        path=parts.path,
        params=tuple(parse_qsl(parts.query, keep_blank_values=True)),
    )
