"""SSH into containers with fabric: wait for SSH, exec, interactive shell, copy files.

Imported only by the commands that need it (fabric and paramiko are slow to
import). Security:

- the VM's key is the one it was started with (``Container.ssh_key``), on the
  port it was given (``Container.ssh_port``), as root on 127.0.0.1;
- arguments are quoted with :func:`shlex.join`, so ``lk exec ID -- echo 'a b;c'``
  prints ``a b;c`` and nothing is interpreted by the remote shell;
- the host key is pinned per VM in ``<runtime dir>/known_hosts`` on first
  contact (in the record itself, ``extra["host_key"]``, for a hypervisor that
  :attr:`~lk_core.hypervisor.Hypervisor.owns_records`); a different key
  afterwards is refused;
- the guest is reached where its hypervisor's
  :meth:`~lk_core.hypervisor.Hypervisor.ssh_endpoint` says: through an SSH
  tunnel (``direct-tcpip``) to the VM's host when the endpoint has ``via``, that
  host's key checked against the one the hypervisor pinned.
"""

from __future__ import annotations

import contextlib
import os
import select
import shlex
import shutil
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import attrs

from lk_core.errors import ContainerStateError, SSHError
from lk_core.model import Container, Status
from lk_core.paths import runtime_dir

if TYPE_CHECKING:
    from fabric import Connection

    from lk_core.hypervisor import Hypervisor
    from lk_core.plugins import Plugins
    from lk_core.vm import SshEndpoint, Tunnel

SSH_USER = "root"
KNOWN_HOSTS = "known_hosts"
_BANNER_PREFIX = b"SSH-"


@attrs.frozen
class ExecResult:
    """What a command run in a container returned."""

    exit_code: int
    stdout: str
    stderr: str


def known_hosts_path(container: Container) -> Path:
    """Where the VM's pinned host key is kept."""
    return runtime_dir(container.id) / KNOWN_HOSTS


def ssh_banner(port: int, host: str = "127.0.0.1", timeout: float = 2.0) -> bytes:
    """The SSH server's banner on ``host:port``, or b"" if none answers yet.

    A TCP connect alone proves nothing: QEMU's user network accepts
    connections before the guest listens. The banner comes from the guest.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            data = sock.recv(256)
    except OSError:
        return b""
    return data if data.startswith(_BANNER_PREFIX) else b""


def hypervisor_of(container: Container, plugins: Plugins | None = None) -> Hypervisor | None:
    """The hypervisor in ``plugins`` that runs ``container`` (None if its plugin is gone).

    Without ``plugins``, the process-wide plugins (for callers outside a Manager).
    """
    if plugins is None:
        from lk_core.plugins import get_plugins

        plugins = get_plugins()
    return plugins.hypervisors().get(container.hypervisor.lower())


def endpoint_of(container: Container, plugins: Plugins | None = None) -> SshEndpoint:
    """Where the container's SSH answers, as its hypervisor says (127.0.0.1 by default)."""
    from lk_core.vm import SshEndpoint

    hv = hypervisor_of(container, plugins)
    if hv is None:
        return SshEndpoint("127.0.0.1", container.ssh_port)
    return hv.ssh_endpoint(container)


def open_tunnel(via: Tunnel, timeout: float = 10.0) -> Any:
    """A connected ``paramiko.SSHClient`` to the tunnel host, its key checked."""
    import paramiko

    client = paramiko.SSHClient()
    client._system_host_keys = paramiko.HostKeys()  # only the key the hypervisor pinned
    entry = paramiko.hostkeys.HostKeyEntry.from_line(via.known_host) if via.known_host else None
    if entry is not None:
        for name in entry.hostnames:
            client.get_host_keys().add(name, entry.key.get_name(), entry.key)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    kwargs: dict[str, Any] = {"look_for_keys": not via.key_file, "allow_agent": not via.key_file}
    if via.key_file:
        kwargs["key_filename"] = via.key_file
    try:
        client.connect(
            via.host, port=via.port, username=via.user or None, timeout=timeout, **kwargs
        )
    except (paramiko.SSHException, OSError, EOFError) as exc:
        client.close()
        raise SSHError(
            f"cannot open an SSH tunnel through {via.host}:{via.port}: {exc or type(exc).__name__}"
        ) from exc
    return client


def _tunnel_channel(client: Any, endpoint: SshEndpoint, timeout: float = 10.0) -> Any:
    """A ``direct-tcpip`` channel through ``client`` to the endpoint (on the tunnel host)."""
    import paramiko

    transport = client.get_transport()
    try:
        return transport.open_channel(
            "direct-tcpip", (endpoint.host, endpoint.port), ("127.0.0.1", 0), timeout=timeout
        )
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise SSHError(
            f"the tunnel host refused a connection to {endpoint.host}:{endpoint.port}: "
            f"{exc or type(exc).__name__}"
        ) from exc


def _banner_via(client: Any, endpoint: SshEndpoint, timeout: float = 2.0) -> bytes:
    """The SSH banner of the endpoint reached through a tunnel client, or b""."""
    try:
        channel = _tunnel_channel(client, endpoint, timeout)
    except SSHError:
        return b""
    try:
        channel.settimeout(timeout)
        data = channel.recv(256)
    except OSError:
        return b""
    finally:
        channel.close()
    return data if data.startswith(_BANNER_PREFIX) else b""


def wait_for_ssh(
    container: Container,
    is_running: Callable[[], Container],
    timeout: float = 120.0,
    progress: Callable[[float], None] | None = None,
    endpoint: SshEndpoint | None = None,
    plugins: Plugins | None = None,
) -> float:
    """Block until the VM's SSH server answers; return the seconds waited.

    ``is_running`` returns the container's current record; if it stops being
    active the wait fails at once. On timeout the error includes the last
    console lines.
    """
    from lk_core.logs import read_tail
    from lk_core.paths import log_path

    if not container.ssh_port:
        raise SSHError(f"container {container.display_name} has no SSH port")
    endpoint = endpoint or endpoint_of(container, plugins)
    tunnel = open_tunnel(endpoint.via) if endpoint.via is not None else None
    started = time.monotonic()
    try:
        while True:
            current = is_running()
            if not current.is_active:
                tail = _console_tail(b"".join(read_tail(log_path(container.id), 5)))
                raise ContainerStateError(
                    f"container {container.display_name} is {current.status}"
                    + (f" ({current.status_reason})" if current.status_reason else "")
                    + f" before SSH answered; last console lines: {tail}"
                )
            if tunnel is not None:
                answered = _banner_via(tunnel, endpoint)
            else:
                answered = ssh_banner(endpoint.port, endpoint.host)
            if answered:
                return time.monotonic() - started
            waited = time.monotonic() - started
            if waited >= timeout:
                tail = _console_tail(b"".join(read_tail(log_path(container.id), 5)))
                raise SSHError(
                    f"SSH of {container.display_name} did not answer within {timeout:.0f}s; "
                    f"last console lines: {tail}"
                )
            if progress is not None:
                progress(waited)
            time.sleep(0.2)
    finally:
        if tunnel is not None:
            tunnel.close()


def _console_tail(data: bytes) -> str:
    lines = [ln.strip() for ln in data.decode(errors="replace").splitlines() if ln.strip()]
    return " | ".join(lines[-5:]) or "(no output)"


def remote_command(
    argv: Sequence[str], env: Mapping[str, str] | None = None, workdir: str = ""
) -> str:
    """The shell command line that runs ``argv`` exactly, with env and workdir."""
    if not argv:
        raise SSHError("no command given: use lk exec REF -- COMMAND [ARG...]")
    command = shlex.join(argv)
    if env:
        assignments = []
        for key, value in env.items():
            if not key.isidentifier():
                raise SSHError(f"invalid environment variable name {key!r}")
            assignments.append(f"{key}={shlex.quote(value)}")
        command = f"env {' '.join(assignments)} {command}"
    if workdir:
        command = f"cd {shlex.quote(workdir)} && {command}"
    return command


def _require_running(container: Container) -> None:
    if container.status is not Status.RUNNING:
        raise ContainerStateError(
            f"container {container.display_name} is {container.status}: "
            "exec needs a running container (start one with lk run)"
        )
    if not container.ssh_port:
        raise SSHError(f"container {container.display_name} has no SSH port")


def connect(
    container: Container,
    timeout: float = 10.0,
    endpoint: SshEndpoint | None = None,
    plugins: Plugins | None = None,
) -> Connection:
    """An open fabric connection to the container, host key pinned.

    ``endpoint`` defaults to what the container's hypervisor says
    (:func:`endpoint_of`); with ``via`` the connection goes through an SSH
    tunnel to that host, closed with the connection.
    """
    import paramiko
    from fabric import Connection

    _require_running(container)
    key = container.ssh_key
    if not key:
        raise SSHError(
            f"container {container.display_name} was started with --no-metadata and no "
            "--ssh-key, so lk holds no key it trusts; start it with --ssh-key KEY to use exec"
        )
    endpoint = endpoint or endpoint_of(container, plugins)
    connect_kwargs: dict[str, Any] = {"look_for_keys": False, "allow_agent": False}
    if key:
        connect_kwargs["key_filename"] = key
    tunnel = None
    if endpoint.via is not None:
        tunnel = open_tunnel(endpoint.via, timeout)
        try:
            connect_kwargs["sock"] = _tunnel_channel(tunnel, endpoint, timeout)
        except BaseException:
            tunnel.close()
            raise
    conn = Connection(
        host=endpoint.host,
        user=SSH_USER,
        port=endpoint.port,
        connect_timeout=timeout,
        connect_kwargs=connect_kwargs,
    )
    if tunnel is not None:
        _close_with(conn, tunnel)
    known = known_hosts_path(container)
    client = conn.client
    client._system_host_keys = paramiko.HostKeys()  # never trust ~/.ssh/known_hosts here
    hv = hypervisor_of(container, plugins)
    if hv is not None and hv.owns_records:  # the engine keeps the pinned key in the record
        pinned = paramiko.hostkeys.HostKeyEntry.from_line(str(container.extra.get("host_key", "")))
        if pinned is not None:
            for name in pinned.hostnames:
                client.get_host_keys().add(name, pinned.key.get_name(), pinned.key)
        known = Path(f"(the record of {container.display_name}: its host_key)")
        client.set_missing_host_key_policy(_PinInRecord(hv, container))
    else:
        known.parent.mkdir(parents=True, exist_ok=True)
        if not known.exists():
            known.touch(mode=0o600)
        client.load_host_keys(str(known))
        client.set_missing_host_key_policy(_PinOnFirstUse(known))
    try:
        conn.open()
    except paramiko.BadHostKeyException as exc:
        raise SSHError(
            f"the SSH host key of container {container.display_name} changed since first "
            f"contact (possible impostor on {endpoint.host}:{endpoint.port}); if the VM was "
            f"rebuilt on purpose, delete {known} and retry"
        ) from exc
    except paramiko.AuthenticationException as exc:
        raise SSHError(
            f"container {container.display_name} refused SSH key {key or '(none)'}: was it "
            "started with --no-metadata, another --ssh-key, or an image without the "
            "LinuxKit metadata package?"
        ) from exc
    except paramiko.SSHException as exc:
        if "authentication" in str(exc).lower():
            raise SSHError(
                f"container {container.display_name} refused SSH key {key}: {exc}"
            ) from exc
        raise SSHError(
            f"cannot reach SSH of container {container.display_name} on "
            f"{endpoint.host}:{endpoint.port} ({exc or type(exc).__name__}); "
            f"is it still booting? try: lk wait {container.display_name}"
        ) from exc
    except (OSError, EOFError) as exc:
        raise SSHError(
            f"cannot reach SSH of container {container.display_name} on "
            f"{endpoint.host}:{endpoint.port} ({exc or type(exc).__name__}); "
            f"is it still booting? try: lk wait {container.display_name}"
        ) from exc
    return conn


def _close_with(conn: Connection, tunnel: Any) -> None:
    """Make ``conn.close()`` close the tunnel client too."""
    close = conn.close

    def close_both() -> None:
        try:
            close()
        finally:
            tunnel.close()

    conn.close = close_both


class _PinInRecord:
    """Accept the first host key seen and keep it in the record, through the hypervisor."""

    def __init__(self, hv: Hypervisor, container: Container) -> None:
        self.hv = hv
        self.container = container

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.container.extra["host_key"] = f"{hostname} {key.get_name()} {key.get_base64()}"
        self.hv.update_record(self.container)


class _PinOnFirstUse:
    """Accept and save the first host key seen; paramiko refuses a different one later."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        client.save_host_keys(str(self.path))
        self.path.chmod(0o600)


def exec_command(
    container: Container,
    argv: Sequence[str],
    *,
    tty: bool = False,
    stdin: IO[bytes] | None = None,
    env: Mapping[str, str] | None = None,
    workdir: str = "",
    stream: bool = False,
    plugins: Plugins | None = None,
) -> ExecResult:
    """Run ``argv`` in the container and return its exit code and output.

    ``stream`` writes stdout and stderr to this process's own as they arrive
    (what ``lk exec`` does); otherwise output is only captured. ``stdin`` (a
    binary stream) is forwarded to the command until it ends, then closed.
    """
    command = remote_command(argv, env, workdir)
    from lk_core.ssh_mux import try_exec

    done = try_exec(container, command, tty=tty, stdin=stdin, stream=stream, plugins=plugins)
    if done is not None:  # OpenSSH on a multiplexed connection (see lk_core.ssh_mux)
        return done
    conn = connect(container, plugins=plugins)
    try:
        transport = conn.client.get_transport()
        if transport is None:
            raise SSHError(f"SSH connection to {container.display_name} closed unexpectedly")
        channel = transport.open_session()
        if tty:
            columns, rows = _terminal_size()
            channel.get_pty(term=os.environ.get("TERM", "xterm"), width=columns, height=rows)
        channel.exec_command(command)
        with _raw_terminal(tty and stdin is not None):
            if stdin is not None:
                from lk_core.threads import start_helper_thread

                start_helper_thread(_pump_stdin, stdin, channel, name="lk-stdin")
            else:
                channel.shutdown_write()
            out, err = _collect(channel, stream)
            code = channel.recv_exit_status()
    finally:
        conn.close()
    return ExecResult(
        exit_code=code,
        stdout=out.decode(errors="replace"),
        stderr=err.decode(errors="replace"),
    )


def _terminal_size() -> tuple[int, int]:
    size = shutil.get_terminal_size((80, 24))
    return size.columns, size.lines


@contextlib.contextmanager
def _raw_terminal(enabled: bool) -> Iterator[None]:
    """Put this terminal in raw mode (keys go to the remote pty as typed)."""
    if not enabled or not sys.stdin.isatty():
        yield
        return
    import termios
    import tty as tty_module

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty_module.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _pump_stdin(source: IO[bytes], channel: Any) -> None:
    """Copy ``source`` to the remote command's stdin, then signal end of input."""
    try:
        fd = source.fileno()
    except (OSError, ValueError, AttributeError):
        fd = -1
    try:
        while True:
            data = os.read(fd, 32768) if fd >= 0 else source.read(32768)
            if not data:
                break
            channel.sendall(data)
        channel.shutdown_write()
    except OSError:
        pass  # the command finished (or the channel closed) before reading everything


def _collect(channel: Any, stream: bool) -> tuple[bytes, bytes]:
    """Read stdout and stderr until the command exits; echo them if ``stream``."""
    out_chunks: list[bytes] = []
    err_chunks: list[bytes] = []
    sinks = (sys.stdout.buffer, sys.stderr.buffer) if stream else (None, None)
    while True:
        got = False
        if channel.recv_ready():
            data = channel.recv(32768)
            got = bool(data)
            out_chunks.append(data)
            if sinks[0] is not None:
                sinks[0].write(data)
                sinks[0].flush()
        if channel.recv_stderr_ready():
            data = channel.recv_stderr(32768)
            got = got or bool(data)
            err_chunks.append(data)
            if sinks[1] is not None:
                sinks[1].write(data)
                sinks[1].flush()
        if not got:
            if (
                channel.exit_status_ready()
                and not channel.recv_ready()
                and not (channel.recv_stderr_ready())
            ):
                break
            select.select([channel], [], [], 0.1)
    return b"".join(out_chunks), b"".join(err_chunks)


def interactive_shell(container: Container, plugins: Plugins | None = None) -> int:
    """Open an interactive login shell on this terminal; return its exit status."""
    from invoke.exceptions import UnexpectedExit

    conn = connect(container, plugins=plugins)
    try:
        result = conn.shell()
    except UnexpectedExit as exc:  # the shell exited non-zero: that is its status, not an error
        result = exc.result
    finally:
        conn.close()
    return int(getattr(result, "exited", 0) or 0)


def copy_to(container: Container, local: str, remote: str, plugins: Plugins | None = None) -> None:
    """Copy a local file into the container (SFTP)."""
    conn = connect(container, plugins=plugins)
    try:
        conn.put(local, remote=remote)
    except OSError as exc:
        where = f"{container.display_name}:{remote}"
        raise SSHError(f"cannot copy {local} to {where}: {_reason(exc)}") from exc
    finally:
        conn.close()


def copy_from(
    container: Container, remote: str, local: str, plugins: Plugins | None = None
) -> None:
    """Copy a file out of the container (SFTP).

    The file is downloaded beside its destination and renamed into place only
    when complete, so a failed copy never truncates an existing file.
    """
    import stat as stat_module
    import tempfile

    target = Path(local)
    if target.is_dir():
        target = target / Path(remote).name
    if not target.parent.is_dir():
        raise SSHError(f"cannot copy to {local}: folder {target.parent} does not exist")
    conn = connect(container, plugins=plugins)
    where = f"{container.display_name}:{remote}"
    try:
        sftp = conn.sftp()
        try:
            info = sftp.stat(remote)
        except OSError as exc:
            raise SSHError(f"cannot copy {where}: {_reason(exc)}") from exc
        if info.st_mode is not None and stat_module.S_ISDIR(info.st_mode):
            raise SSHError(f"cannot copy {where}: it is a directory (lk cp copies files)")
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".lk-cp", dir=target.parent)
        os.close(fd)
        try:
            sftp.get(remote, tmp)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise SSHError(f"cannot copy {where} to {local}: {_reason(exc)}") from exc
    finally:
        conn.close()


def forward_port(
    container: Container,
    local_port: int,
    guest_port: int,
    ready: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
    plugins: Plugins | None = None,
) -> None:
    """Serve 127.0.0.1:``local_port`` here, each connection carried to 127.0.0.1:``guest_port``
    inside the guest (SSH ``direct-tcpip``), until Ctrl-C or ``stop`` is set.

    ``ready`` is called with the bound port (``local_port`` 0 picks one).
    """
    from lk_core.threads import start_helper_thread

    conn = connect(container, plugins=plugins)
    transport = conn.client.get_transport()
    server = socket.create_server(("127.0.0.1", local_port))
    server.settimeout(0.5)
    try:
        if ready is not None:
            ready(server.getsockname()[1])
        while stop is None or not stop.is_set():
            try:
                client, peer = server.accept()
            except TimeoutError:
                if transport is None or not transport.is_active():
                    raise SSHError(
                        f"the SSH connection to {container.display_name} closed"
                    ) from None
                continue
            try:
                channel = transport.open_channel("direct-tcpip", ("127.0.0.1", guest_port), peer)
            except Exception as exc:
                client.close()
                print(f"lk: cannot reach guest port {guest_port}: {exc}", file=sys.stderr)
                continue
            start_helper_thread(_splice, client, channel, name="lk-forward")
    finally:
        server.close()
        conn.close()


def _splice(sock: socket.socket, channel: Any) -> None:
    """Copy both ways between a local socket and an SSH channel until either ends."""
    try:
        while True:
            readable, _, _ = select.select([sock, channel], [], [], 1.0)
            if sock in readable:
                data = sock.recv(32768)
                if not data:
                    break
                channel.sendall(data)
            if channel in readable:
                data = channel.recv(32768)
                if not data:
                    break
                sock.sendall(data)
    except OSError:
        pass
    finally:
        channel.close()
        sock.close()


def _reason(exc: OSError) -> str:
    """An OSError as words, without Python's ``[Errno N]`` prefix."""
    return exc.strerror or str(exc) or type(exc).__name__
