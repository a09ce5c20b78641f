"""SSH to a libvirt host itself (not to a guest): its key, commands, the tunnel to guests.

For ``qemu+ssh``/``qemu+libssh`` hosts lk also needs what libvirt has no API
for: reading the console log file, finding the remote user's home (for the
pool folder), and tunnelling to the guest's SSH port on the host's 127.0.0.1.
paramiko does that with the URI's user, port and ``keyfile``, checking the host
key pinned by ``lk host add`` (never ``~/.ssh/known_hosts``).
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Iterator
from typing import Any

from lk_core.errors import HypervisorError

from lk_libvirt.uri import LibvirtURI, parse_uri

__all__ = ["SSH_TRANSPORTS", "fetch_host_key", "host_client", "run_on_host", "stream_from_host"]

SSH_TRANSPORTS = frozenset({"ssh", "libssh", "libssh2"})


def _address(uri: LibvirtURI) -> tuple[str, int]:
    return uri.host or "localhost", uri.port or 22


def _known_line(host: str, port: int, key: Any) -> str:
    name = host if port == 22 else f"[{host}]:{port}"
    return f"{name} {key.get_name()} {key.get_base64()}"


def fetch_host_key(uri_text: str, timeout: float = 10.0) -> str:
    """The SSH server key of ``uri``'s host as a known_hosts line (trust on first use)."""
    import paramiko

    uri = parse_uri(uri_text)
    host, port = _address(uri)
    try:
        transport = paramiko.Transport((host, port))
        transport.banner_timeout = timeout
        try:
            transport.start_client(timeout=timeout)
            key = transport.get_remote_server_key()
        finally:
            transport.close()
    except (OSError, paramiko.SSHException, EOFError) as error:
        raise HypervisorError(f"cannot read the SSH key of {host}:{port}: {error}") from None
    return _known_line(host, port, key)


def host_client(uri_text: str, known_host: str, timeout: float = 10.0) -> Any:
    """A connected ``paramiko.SSHClient`` to the URI's host, its key checked."""
    import paramiko

    uri = parse_uri(uri_text)
    if uri.transport not in SSH_TRANSPORTS:
        raise HypervisorError(
            f"{uri} is not an SSH URI: lk reaches guests and console logs on a remote host over "
            "SSH only (use a qemu+ssh:// or qemu+libssh:// URI)"
        )
    host, port = _address(uri)
    client = paramiko.SSHClient()
    if known_host:
        entry = paramiko.hostkeys.HostKeyEntry.from_line(known_host)
        if entry is not None:
            for name in entry.hostnames:
                client.get_host_keys().add(name, entry.key.get_name(), entry.key)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    kwargs: dict[str, Any] = {"look_for_keys": False, "allow_agent": not uri.keyfile}
    if uri.keyfile:
        kwargs["key_filename"] = uri.keyfile
    try:
        client.connect(
            host,
            port=port,
            username=uri.user or None,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
            **kwargs,
        )
    except paramiko.SSHException as error:
        client.close()
        hint = (
            " (pin it again with 'lk host add')" if "not found in known_hosts" in str(error) else ""
        )
        raise HypervisorError(f"cannot SSH to {host}:{port}: {error}{hint}") from None
    except (OSError, EOFError) as error:
        client.close()
        raise HypervisorError(f"cannot SSH to {host}:{port}: {error}") from None
    return client


def run_on_host(uri_text: str, known_host: str, command: str, timeout: float = 10.0) -> bytes:
    """Run a shell command on the host; return its stdout (raise on a non-zero exit)."""
    client = host_client(uri_text, known_host, timeout)
    try:
        _stdin, stdout, stderr = client.exec_command(command, timeout=timeout)
        out = stdout.read()
        code = stdout.channel.recv_exit_status()
        if code != 0:
            err = stderr.read().decode(errors="replace").strip()
            raise HypervisorError(f"{command!r} failed on the libvirt host: {err or code}")
        return bytes(out)
    finally:
        client.close()


def stream_from_host(uri_text: str, known_host: str, path: str) -> Iterator[bytes]:
    """The bytes of file ``path`` on the host (``cat``), as they are read."""
    client = host_client(uri_text, known_host)
    try:
        _stdin, stdout, _stderr = client.exec_command(f"cat -- {shlex.quote(path)} 2>/dev/null")
        channel = stdout.channel
        while True:
            data = channel.recv(65536)
            if not data:
                break
            yield bytes(data)
    finally:
        with contextlib.suppress(Exception):
            client.close()
