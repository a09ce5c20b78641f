"""Start hyperkit with its serial console copied, as plain text, into lk's console log.

Why this exists: none of hyperkit's serial back-ends writes a plain, growing
log. ``log=<file>`` is a fixed-size (64 KiB) memory-mapped *ring buffer*,
truncated when hyperkit starts and overwritten in place; ``stdio`` writes to
file descriptor 0, which lk connects to ``/dev/null``. What works is
``autopty=<file>``: hyperkit creates a pseudo-terminal and writes the name of
its slave side into ``<file>``; whoever reads that terminal sees the console.

So lk does not start hyperkit directly but this launcher, which

1. removes a stale pidfile (hyperkit creates it with ``O_EXCL`` and refuses to
   start if a killed hyperkit left one) and a stale autopty file;
2. starts a detached *console copier* (a grandchild process) that waits for
   the autopty file, opens the terminal in raw mode and appends everything it
   reads to the console log until hyperkit closes the terminal;
3. replaces itself with hyperkit (``exec``). The process lk recorded, verifies
   and signals is therefore hyperkit itself: SIGTERM reaches hyperkit (an
   ACPI power-button event) and a forced kill really stops the VM.

The copier ignores SIGINT, SIGHUP, SIGQUIT and SIGTSTP, keeps no descriptor of
lk's (its stdin/stdout/stderr are ``/dev/null``) and exits when the terminal
closes, when hyperkit is gone, or when no autopty file appears in time.

Standard library only: lk runs it as a script with ``python -I``::

    python -I launch.py --console-log LOG --tty RUNTIME/tty --pidfile RUNTIME/hyperkit.pid \\
        -- /path/to/hyperkit ARGS...
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import select
import signal
import stat
import sys
import termios
import time
import tty
from collections.abc import Sequence

#: How long the copier waits for hyperkit to create the autopty file.
DEFAULT_TTY_WAIT_SECONDS = 120.0
#: How often the copier checks that hyperkit is still there while waiting.
POLL_SECONDS = 0.02
#: Exit status when hyperkit cannot be executed (as a shell does).
EXEC_FAILED = 127
_READ_SIZE = 65536


def _alive(pid: int) -> bool:
    """Return whether a process ``pid`` exists (a zombie counts as existing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd``; give up silently on errors (disk full, closed)."""
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except InterruptedError:
            continue
        except OSError:
            return
        view = view[written:]


def _terminal_path(tty_file: str) -> str | None:
    """Return the terminal device named by hyperkit's autopty file, or None if not there yet.

    hyperkit writes the slave's device name into a regular file; older
    versions made the file a symlink to the device. Both are accepted.
    """
    try:
        mode = os.stat(tty_file).st_mode
    except OSError:
        return None
    if stat.S_ISCHR(mode):
        return tty_file
    if not stat.S_ISREG(mode):
        return None
    try:
        with open(tty_file, "rb") as handle:
            name = handle.read().decode("utf-8", "replace").strip()
    except OSError:
        return None
    return name or None


def open_console(tty_file: str, hyperkit_pid: int, timeout: float) -> int | None:
    """Wait for hyperkit's terminal and open it for reading, in raw mode.

    Returns the descriptor, or None if hyperkit exits or ``timeout`` seconds
    pass first.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(hyperkit_pid):
        device = _terminal_path(tty_file)
        if device is not None:
            try:
                fd = os.open(device, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
            except OSError:
                fd = -1
            if fd >= 0:
                # Raw: no echo back into the guest, no line buffering. TCSANOW, not
                # setraw's default TCSAFLUSH, which would discard the boot output
                # hyperkit has already written.
                with contextlib.suppress(termios.error, OSError):
                    tty.setraw(fd, termios.TCSANOW)
                return fd
        time.sleep(POLL_SECONDS)
    return None


def copy_console(console_fd: int, log_fd: int, hyperkit_pid: int) -> None:
    """Append everything read from ``console_fd`` to ``log_fd`` until the terminal closes.

    Also stops once hyperkit is gone and nothing is left to read.
    """
    while True:
        try:
            readable, _, _ = select.select([console_fd], [], [], 1.0)
        except InterruptedError:
            continue
        if not readable and _alive(hyperkit_pid):
            continue
        try:
            data = os.read(console_fd, _READ_SIZE)
        except BlockingIOError:
            if not _alive(hyperkit_pid):
                return
            continue
        except InterruptedError:
            continue
        except OSError as error:
            if error.errno == errno.EIO:  # the other side closed: hyperkit exited
                return
            raise
        if not data:
            return
        _write_all(log_fd, data)


def _become_quiet_daemon() -> None:
    """Detach the copier from lk's terminal signals and descriptors."""
    for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGTSTP):
        signal.signal(signum, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    null = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1, 2):
        os.dup2(null, target)
    if null > 2:
        os.close(null)


def _run_copier(tty_file: str, log_fd: int, hyperkit_pid: int, timeout: float) -> None:
    """Body of the copier process."""
    _become_quiet_daemon()
    console_fd = open_console(tty_file, hyperkit_pid, timeout)
    if console_fd is None:
        return
    copy_console(console_fd, log_fd, hyperkit_pid)


def spawn_copier(tty_file: str, log_fd: int, hyperkit_pid: int, timeout: float) -> None:
    """Start the console copier as a grandchild (double fork: no zombie is left behind)."""
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child, measured by the tests' output
        status = 0
        try:
            if os.fork() == 0:
                try:
                    _run_copier(tty_file, log_fd, hyperkit_pid, timeout)
                finally:
                    os._exit(0)
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.waitpid(child, 0)


def _remove(path: str) -> None:
    """Remove ``path`` if it exists."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """Split ``argv`` into the launcher's options and the hyperkit command after ``--``."""
    args = list(argv)
    if "--" not in args:
        raise SystemExit("lk-hyperkit-launch: expected '-- HYPERKIT ARGS...'")
    split = args.index("--")
    parser = argparse.ArgumentParser(prog="lk-hyperkit-launch")
    parser.add_argument("--console-log", required=True, help="file the console is appended to")
    parser.add_argument("--tty", required=True, help="hyperkit's autopty file")
    parser.add_argument("--pidfile", required=True, help="hyperkit's -F pidfile")
    parser.add_argument("--tty-wait", type=float, default=DEFAULT_TTY_WAIT_SECONDS)
    options = parser.parse_args(args[:split])
    command = args[split + 1 :]
    if not command:
        parser.error("no hyperkit command after '--'")
    return options, command


def main(argv: Sequence[str] | None = None) -> int:
    """Prepare the runtime files, start the copier, then exec hyperkit (returns only on failure)."""
    options, command = parse_args(sys.argv[1:] if argv is None else argv)
    for path in (options.pidfile, options.tty):
        os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
        _remove(path)
    try:
        log_fd = os.open(options.console_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except OSError as error:
        print(
            f"lk-hyperkit-launch: cannot open console log {options.console_log}: "
            f"{error.strerror or error}; the console will not be recorded",
            file=sys.stderr,
        )
        log_fd = -1
    if log_fd >= 0:
        spawn_copier(options.tty, log_fd, os.getpid(), options.tty_wait)
        os.close(log_fd)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvp(command[0], command)
    except OSError as error:
        message = f"lk: cannot run hyperkit {command[0]}: {error.strerror or error}"
        print(message, file=sys.stderr)
        try:
            fd = os.open(options.console_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError:
            return EXEC_FAILED
        _write_all(fd, (message + "\n").encode())
        os.close(fd)
    return EXEC_FAILED


if __name__ == "__main__":
    sys.exit(main())
