"""``lk exec`` through OpenSSH with connection multiplexing (ControlMaster).

The first exec into a container starts an OpenSSH master connection that
stays in the background (``ControlPersist``) with its control socket in the
container's runtime folder; every later exec opens one channel on it: no new
TCP connection, key exchange or authentication, and no paramiko in this
process. Behaviour is the paramiko path's (:func:`lk_core.ssh.exec_command`):

- the remote command string is the same (:func:`lk_core.ssh.remote_command`);
- the host key is checked against the same pinned file
  (``<runtime dir>/known_hosts``, OpenSSH's format, ``[127.0.0.1]:PORT``),
  first contact pins (``accept-new``), a different key is refused;
- no user or system ssh configuration is read (``-F none``), only lk's key
  is offered (``IdentitiesOnly``), never a password prompt (``BatchMode``);
- stdout and stderr stay separate, stdin is forwarded, ``-t`` gets a pty.

The control socket's name carries a hash of the port, the key and the pinned
host key: a master is only reused by an exec that would have authenticated
and checked the host exactly as it did. A master whose connection died (the
guest rebooted or stopped) is replaced by OpenSSH itself (it connects anew
when the master cannot open a session). When ssh fails on its own (exit
status 255 *and* an error in its log), :func:`try_exec` returns ``None`` and
the caller falls back to paramiko, which gives lk's usual one-line error.

Not used (``None``): ``ssh`` absent, ``LK_SSH_MUX=0``, an endpoint through a
tunnel (``via``), an engine that keeps the pinned key in its record
(``owns_records``), and ``-t`` without stdin (paramiko sizes that pty from this
terminal, which ssh cannot do without reading it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from lk_core.model import Container
    from lk_core.plugins import Plugins
    from lk_core.ssh import ExecResult

#: Set to 0 to always use paramiko.
ENV_SWITCH = "LK_SSH_MUX"
#: Seconds an idle master connection stays up after the last exec.
CONTROL_PERSIST = 300
#: Longest unix socket path, less the 17 characters OpenSSH appends to a
#: temporary name while it starts a master.
_SOCKET_LIMIT = (107 if sys.platform.startswith("linux") else 103) - 17


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether exec may use OpenSSH (``$LK_SSH_MUX`` is not 0)."""
    env = os.environ if environ is None else environ
    return env.get(ENV_SWITCH, "1").strip().lower() not in ("0", "no", "false", "off")


def control_path(runtime: Path, port: int, key: str, pinned: bytes, key_bytes: bytes) -> Path:
    """The master's control socket: unique per port, key and pinned host key."""
    digest = hashlib.sha256()
    for part in (str(port).encode(), key.encode(), key_bytes, pinned):
        digest.update(len(part).to_bytes(8, "big") + part)
    return runtime / f"ssh-{digest.hexdigest()[:10]}.ctl"


_SAFE_PUNCTUATION = frozenset("/._-+,:@=% ")


def _path_option(path: Path | str) -> str | None:
    """A path as an ssh ``-o`` value or ``-i`` file: quoted, ``%`` doubled (OpenSSH
    expands ``%`` tokens); ``None`` for a path ssh's option parser cannot take verbatim.
    """
    text = str(path)
    if not text.startswith("/") or not all(c.isalnum() or c in _SAFE_PUNCTUATION for c in text):
        return None
    return text.replace("%", "%%")


def ssh_argv(
    *,
    ssh: str,
    host: str,
    port: int,
    user: str,
    key: str,
    known_hosts: Path,
    command: str,
    control: Path | None,
    log: Path,
    tty: bool,
    first_contact: bool,
) -> list[str]:
    """The OpenSSH command that runs ``command`` (sent verbatim) on the guest.

    Raises ValueError for a key, known_hosts or control path that ssh would
    not read verbatim (quotes, backslashes, ``$``, control characters).
    """
    paths = [_path_option(p) for p in (key, known_hosts, control or "/")]
    if any(p is None for p in paths):
        raise ValueError("a path ssh cannot take verbatim")
    key_arg, known_arg, control_arg = (str(p) for p in paths)
    argv = [
        ssh,
        "-F",
        "none",
        "-p",
        str(port),
        "-l",
        user,
        "-o",
        f'IdentityFile="{key_arg}"',  # not -i: that one is checked before % expansion
        "-E",
        str(log),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "IdentityAgent=none",
        "-o",
        "BatchMode=yes",
        "-o",
        f"StrictHostKeyChecking={'accept-new' if first_contact else 'yes'}",
        "-o",
        f'UserKnownHostsFile="{known_arg}"',
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "HashKnownHosts=no",
        "-o",
        "CheckHostIP=no",
        "-o",
        "UpdateHostKeys=no",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ConnectTimeout=10",
    ]
    if control is not None:
        argv += [
            "-o",
            "ControlMaster=auto",
            "-o",
            f'ControlPath="{control_arg}"',
            "-o",
            f"ControlPersist={CONTROL_PERSIST}",
            # A master whose guest vanished without closing (a reset) is noticed.
            "-o",
            "ServerAliveInterval=10",
            "-o",
            "ServerAliveCountMax=3",
        ]
    argv += ["-tt" if tty else "-T", host, "--", command]
    return argv


def _has_pin(known: bytes, host: str, port: int) -> bool:
    name = host if port == 22 else f"[{host}]:{port}"
    for line in known.decode(errors="replace").splitlines():
        fields = line.split()
        if len(fields) >= 3 and name in fields[0].split(","):
            return True
    return False


# -- a client of the master's control socket (OpenSSH's PROTOCOL.mux) -------------
_MUX_MSG_HELLO = 0x00000001
_MUX_C_NEW_SESSION = 0x10000002
_MUX_S_PERMISSION_DENIED = 0x80000002
_MUX_S_FAILURE = 0x80000003
_MUX_S_EXIT_MESSAGE = 0x80000004
_MUX_S_SESSION_OPENED = 0x80000006
_MUX_S_TTY_ALLOC_FAIL = 0x80000008
_MUX_VERSION = 4
_ESCAPE_NONE = 0xFFFFFFFE


class SessionBroke(Exception):
    """The master's session ended without an exit status (its connection died)."""


def _u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


def _string(data: bytes) -> bytes:
    return _u32(len(data)) + data


def _packet(payload: bytes) -> bytes:
    return _u32(len(payload)) + payload


def new_session_request(command: str, request_id: int = 1) -> bytes:
    """``MUX_C_NEW_SESSION`` for a command without a tty, as ``ssh -T`` sends it."""
    return _packet(
        _u32(_MUX_C_NEW_SESSION)
        + _u32(request_id)
        + _string(b"")  # reserved
        + _u32(0)  # tty
        + _u32(0)  # X11
        + _u32(0)  # agent
        + _u32(0)  # subsystem
        + _u32(_ESCAPE_NONE)
        + _string(b"")  # terminal type
        + _string(command.encode("utf-8", "surrogateescape"))
    )


class _Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def feed(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def packet(self) -> bytes | None:
        """A complete packet from the buffer, or None."""
        if len(self.buffer) < 4:
            return None
        size = int.from_bytes(self.buffer[:4], "big")
        if len(self.buffer) < 4 + size:
            return None
        payload, self.buffer = self.buffer[4 : 4 + size], self.buffer[4 + size :]
        return payload

    def next_packet(self) -> bytes:
        """Block for the next packet; EOFError when the master hangs up."""
        while True:
            payload = self.packet()
            if payload is not None:
                return payload
            if not self.feed():
                raise EOFError


def mux_exec(
    control: Path, command: str, stdin_fd: int, capture: bool, out_fd: int = 1, err_fd: int = 2
) -> tuple[int, bytes, bytes] | None:
    """Run ``command`` as a new session of the master at ``control`` (no tty).

    The master gets ``stdin_fd`` and either ``out_fd``/``err_fd`` or, with
    ``capture``, pipes whose output is returned. Returns ``(exit status,
    stdout, stderr)``; ``None`` if the master cannot be used before the
    session starts (ssh then connects anew); raises :class:`SessionBroke` if
    the session ends without an exit status.
    """
    import selectors

    pipes: list[int] = []
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if capture:
            out_r, out_fd = os.pipe()
            err_r, err_fd = os.pipe()
            pipes += [out_r, out_fd, err_r, err_fd]
        try:
            sock.connect(str(control))
            sock.sendall(_packet(_u32(_MUX_MSG_HELLO) + _u32(_MUX_VERSION)))
            reader = _Reader(sock)
            hello = reader.next_packet()
            if int.from_bytes(hello[:4], "big") != _MUX_MSG_HELLO:
                return None
            sock.sendall(new_session_request(command))
            for fd in (stdin_fd, out_fd, err_fd):
                socket.send_fds(sock, [b"\0"], [fd])
            reply = reader.next_packet()
        except (OSError, EOFError):
            return None
        if int.from_bytes(reply[:4], "big") != _MUX_S_SESSION_OPENED:
            return None  # refused (permission denied, failure): let ssh try
        out: list[bytes] = []
        err: list[bytes] = []
        selector = selectors.DefaultSelector()
        selector.register(sock, selectors.EVENT_READ, None)
        pending: set[int] = set()
        if capture:
            for fd in (out_fd, err_fd):  # only the master writes to them now
                os.close(fd)
                pipes.remove(fd)
            selector.register(out_r, selectors.EVENT_READ, out)
            selector.register(err_r, selectors.EVENT_READ, err)
            pending = {out_r, err_r}
        code: int | None = None

        def take_exit_status() -> int | None:
            # The exit message may have come with the reply already read.
            while (payload := reader.packet()) is not None:
                if int.from_bytes(payload[:4], "big") == _MUX_S_EXIT_MESSAGE:
                    return int.from_bytes(payload[8:12], "big")
            return None

        code = take_exit_status()
        if code is not None:
            selector.unregister(sock)
        while code is None or pending:
            for key, _ in selector.select():
                if key.data is not None:
                    data = os.read(key.fd, 65536)
                    if data:
                        key.data.append(data)
                    else:
                        selector.unregister(key.fd)
                        pending.discard(key.fd)
                    continue
                if code is not None:
                    continue
                alive = reader.feed()
                code = take_exit_status()
                if code is not None or not alive:
                    selector.unregister(sock)
                if code is None and not alive:
                    raise SessionBroke("the SSH connection closed during the command")
        return code, b"".join(out), b"".join(err)
    finally:
        sock.close()
        for fd in pipes:
            os.close(fd)


def try_exec(
    container: Container,
    command: str,
    *,
    tty: bool,
    stdin: IO[bytes] | None,
    stream: bool,
    plugins: Plugins | None = None,
) -> ExecResult | None:
    """Run ``command`` through OpenSSH; ``None`` when this path does not apply or ssh failed."""
    from lk_core.model import Status
    from lk_core.paths import runtime_dir
    from lk_core.ssh import KNOWN_HOSTS, SSH_USER, ExecResult, hypervisor_of

    if not enabled() or container.status is not Status.RUNNING:
        return None
    if not container.ssh_port or not container.ssh_key or (tty and stdin is None):
        return None
    ssh = shutil.which("ssh")
    if ssh is None:
        return None
    hv = hypervisor_of(container, plugins)
    if hv is not None and hv.owns_records:
        return None
    endpoint = hv.ssh_endpoint(container) if hv is not None else None
    if endpoint is not None and endpoint.via is not None:
        return None
    host = endpoint.host if endpoint is not None else "127.0.0.1"
    port = endpoint.port if endpoint is not None else container.ssh_port
    try:
        key_bytes = Path(container.ssh_key).read_bytes()
    except OSError:
        return None  # paramiko reports the missing key its usual way
    runtime = runtime_dir(container.id)
    known = runtime / KNOWN_HOSTS
    try:
        runtime.mkdir(parents=True, exist_ok=True)
        if not known.exists():
            known.touch(mode=0o600)
        pinned = known.read_bytes()
    except OSError:
        return None
    first_contact = not _has_pin(pinned, host, port)
    control: Path | None = control_path(runtime, port, container.ssh_key, pinned, key_bytes)
    if first_contact or len(str(control).encode()) > _SOCKET_LIMIT:
        # One connection for this exec: the first one pins the host key (the
        # master is named after the pin), a too long path cannot be a socket.
        control = None
    if control is not None and not tty:
        done = _exec_on_master(control, command, stdin, stream)
        if isinstance(done, str):
            return _broke(container, done, stream)
        if done is not None:
            code, out, err = done
            return ExecResult(
                exit_code=code,
                stdout=out.decode(errors="replace"),
                stderr=err.decode(errors="replace"),
            )
    log = runtime / f"ssh-{os.getpid()}.log"
    try:
        argv = ssh_argv(
            ssh=ssh,
            host=host,
            port=port,
            user=SSH_USER,
            key=container.ssh_key,
            known_hosts=known,
            command=command,
            control=control,
            log=log,
            tty=tty,
            first_contact=first_contact,
        )
    except ValueError:
        return None  # paramiko takes any path
    env = dict(os.environ)
    if tty:
        env.setdefault("TERM", "xterm")
    try:
        if stream:
            proc = subprocess.run(
                argv, stdin=stdin if stdin is not None else subprocess.DEVNULL, env=env
            )
            out = err = b""
        else:
            proc = subprocess.run(
                argv,
                stdin=stdin if stdin is not None else subprocess.DEVNULL,
                capture_output=True,
                env=env,
            )
            out, err = proc.stdout or b"", proc.stderr or b""
        why = _ssh_error(log) if proc.returncode == 255 else ""
    except OSError:
        return None
    finally:
        log.unlink(missing_ok=True)
    if why and _before_session(why):
        return None  # nothing ran: paramiko retries and words the error lk's way
    if why:  # the session broke after it started: never run the command twice
        message = f"lk: SSH connection to {container.display_name} broke: {why.splitlines()[-1]}\n"
        if stream:
            sys.stderr.write(message)
        else:
            err += message.encode()
    return ExecResult(
        exit_code=proc.returncode,
        stdout=out.decode(errors="replace"),
        stderr=err.decode(errors="replace"),
    )


#: ssh's own errors that happen before a command can start (lowercase).
_BEFORE_SESSION = (
    "host key verification failed",
    "remote host identification has changed",
    "host key for",
    "permission denied",
    "connection refused",
    "connection timed out",
    "operation timed out",
    "no route to host",
    "connect to host",
    "kex_exchange_identification",
    "banner exchange",
    "connection closed by",
    "could not resolve",
    "no such file",
    "load key",
)


def _exec_on_master(
    control: Path, command: str, stdin: IO[bytes] | None, stream: bool
) -> tuple[int, bytes, bytes] | str | None:
    """A session on a live master without starting ssh: the result, why it broke, or None."""
    if not control.exists():
        return None
    devnull = -1
    try:
        if stdin is None:
            devnull = os.open(os.devnull, os.O_RDONLY)
            stdin_fd = devnull
        else:
            stdin_fd = stdin.fileno()
        if stream:
            sys.stdout.flush()
            sys.stderr.flush()
            out_fd, err_fd = sys.stdout.fileno(), sys.stderr.fileno()
        else:
            out_fd, err_fd = 1, 2
        return mux_exec(control, command, stdin_fd, not stream, out_fd, err_fd)
    except SessionBroke as exc:
        return str(exc)
    except (OSError, ValueError):
        return None  # no usable file descriptors here: ssh (or paramiko) does it
    finally:
        if devnull >= 0:
            os.close(devnull)


def _broke(container: Container, why: str, stream: bool) -> ExecResult:
    """The result of a command whose session broke (exit status 255, like ssh's)."""
    from lk_core.ssh import ExecResult

    message = f"lk: SSH connection to {container.display_name} broke: {why}\n"
    if stream:
        sys.stderr.write(message)
        sys.stderr.flush()
    return ExecResult(exit_code=255, stdout="", stderr="" if stream else message)


def _ssh_error(log: Path) -> str:
    """What ssh logged as its own error (a command's own exit 255 leaves the log empty)."""
    try:
        return log.read_text(errors="replace").strip()
    except OSError:
        return ""


def _before_session(error: str) -> bool:
    text = error.lower()
    return any(marker in text for marker in _BEFORE_SESSION)
