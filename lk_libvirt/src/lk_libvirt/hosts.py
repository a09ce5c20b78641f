"""The libvirt hosts lk knows: ``lk host add NAME URI``, kept in lk's config folder.

``<config dir>/libvirt-hosts.json`` (mode 0600, written atomically under a
``flock``) maps a host name to its URI, an optional storage pool name and, for
SSH URIs, the SSH key of the host itself (pinned by ``lk host add``). The host
``local`` (``qemu:///system``) exists without being added, unless an entry of
that name replaces it.

Pure file handling: nothing here imports ``libvirt`` or opens a connection.
``lk ps`` reads this module on every run (usually to find no hosts file), so
:mod:`json` and :mod:`tempfile` are imported only where a file is read or
written.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import attrs
from lk_core.errors import NotFoundError, StateError, UsageError

__all__ = [
    "HOSTS_FILE",
    "LOCAL_HOST",
    "LOCAL_URI",
    "SYSTEM_SOCKETS",
    "HostEntry",
    "add_host",
    "configured_hosts",
    "get_host",
    "hosts_path",
    "known_hosts",
    "remove_host",
]

HOSTS_FILE = "libvirt-hosts.json"
#: The implicit host: this machine's system daemon.
LOCAL_HOST = "local"
LOCAL_URI = "qemu:///system"
#: The sockets of a local system daemon: monolithic libvirtd, or modular virtqemud.
#: (Here rather than in :mod:`lk_libvirt.connection`, which re-exports it, so that
#: ``lk ps`` can see that there is no local daemon without importing that module.)
SYSTEM_SOCKETS: tuple[str, ...] = (
    "/run/libvirt/libvirt-sock",
    "/run/libvirt/virtqemud-sock",
    "/var/run/libvirt/libvirt-sock",
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


@attrs.frozen
class HostEntry:
    """One libvirt host: its name in lk, its URI, its pool, its pinned SSH key."""

    name: str
    uri: str
    pool: str = ""
    #: The SSH server key of the host, as a known_hosts line (SSH URIs only).
    host_key: str = ""

    def to_dict(self) -> dict[str, str]:
        """JSON-ready data (without the name: it is the key)."""
        data = {"uri": self.uri}
        if self.pool:
            data["pool"] = self.pool
        if self.host_key:
            data["host_key"] = self.host_key
        return data


def hosts_path() -> Path:
    """Where the hosts are kept."""
    from lk_core.paths import default_config_dir

    return default_config_dir() / HOSTS_FILE


def _load(path: Path) -> dict[str, HostEntry]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise StateError(f"cannot read {path}: {error.strerror}") from None
    import json

    try:
        data: Any = json.loads(text) if text.strip() else {}
    except ValueError as error:
        raise StateError(f"{path} is not valid JSON ({error}): fix or delete it") from None
    if not isinstance(data, dict):
        raise StateError(f"{path} must hold a JSON object of hosts")
    hosts: dict[str, HostEntry] = {}
    for name, entry in data.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("uri"), str):
            raise StateError(f"{path}: host {name!r} has no URI")
        hosts[name] = HostEntry(
            name=name,
            uri=entry["uri"],
            pool=str(entry.get("pool", "")),
            host_key=str(entry.get("host_key", "")),
        )
    return hosts


def _save(path: Path, hosts: dict[str, HostEntry]) -> None:
    import json
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = json.dumps({n: h.to_dict() for n, h in sorted(hosts.items())}, indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=".libvirt-hosts.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _lock_path(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path.with_name(path.name + ".lock")


def configured_hosts() -> dict[str, HostEntry]:
    """The hosts added with ``lk host add``, by name."""
    return _load(hosts_path())


def known_hosts() -> dict[str, HostEntry]:
    """Every host lk uses: ``local`` first (unless replaced), then the configured ones."""
    hosts = {LOCAL_HOST: HostEntry(LOCAL_HOST, LOCAL_URI)}
    hosts.update(configured_hosts())
    return hosts


def get_host(name: str) -> HostEntry:
    """The host called ``name``, or a one-line NotFoundError listing the known ones."""
    hosts = known_hosts()
    try:
        return hosts[name]
    except KeyError:
        raise NotFoundError(
            f"unknown libvirt host {name!r} (known: {', '.join(sorted(hosts))}); "
            "add it with 'lk host add NAME URI'"
        ) from None


def add_host(entry: HostEntry) -> None:
    """Add (or replace) a host entry."""
    from lk_core.locking import locked

    if not _NAME.match(entry.name):
        raise UsageError(f"invalid host name {entry.name!r}: use letters, digits, '.', '_' or '-'")
    path = hosts_path()
    with locked(_lock_path(path)):
        hosts = _load(path)
        hosts[entry.name] = entry
        _save(path, hosts)


def remove_host(name: str) -> HostEntry:
    """Forget a host; raise NotFoundError if it was not added."""
    from lk_core.locking import locked

    path = hosts_path()
    with locked(_lock_path(path)):
        hosts = _load(path)
        entry = hosts.pop(name, None)
        if entry is None:
            raise NotFoundError(f"no libvirt host {name!r} was added (see 'lk host ls')")
        _save(path, hosts)
    return entry
