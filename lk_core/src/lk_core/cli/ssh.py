"""Commands that talk to a running container over SSH: wait, exec, shell, cp."""

from __future__ import annotations

import sys

import click

from lk_core.cli.completion import complete_active_refs, complete_cp_path


def _progress_printer(ref: str) -> object:
    if not sys.stderr.isatty():
        return None

    def show(waited: float) -> None:
        click.echo(f"\rwaiting for SSH of {ref}... {waited:4.0f}s", err=True, nl=False)

    return show


def wait_until_ssh(ref: str, timeout: float) -> float:
    """Wait for SSH with a progress line on a terminal; return the seconds waited."""
    from lk_core.manager import Manager

    progress = _progress_printer(ref)
    try:
        return Manager().wait(ref, timeout=timeout, progress=progress)  # type: ignore[arg-type]
    finally:
        if progress is not None:
            click.echo("", err=True)


@click.command("wait")
@click.argument("ref", shell_complete=complete_active_refs)
@click.option(
    "--timeout",
    default=120.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds to wait.",
)
def wait_command(ref: str, timeout: float) -> None:
    """Wait until a container's SSH server answers."""
    waited = wait_until_ssh(ref, timeout)
    click.echo(f"{ref}: SSH ready after {waited:.1f}s", err=True)


def _parse_env(items: tuple[str, ...]) -> dict[str, str]:
    from lk_core.assignments import parse_assignments

    return parse_assignments(items, "invalid -e")


@click.command("exec", context_settings={"ignore_unknown_options": True})
@click.argument("ref", shell_complete=complete_active_refs)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-terminal.")
@click.option("-i", "--interactive", is_flag=True, help="Forward stdin even from a terminal.")
@click.option("-e", "--env", "env", multiple=True, metavar="NAME=VALUE", help="Set a variable.")
@click.option("-w", "--workdir", default="", help="Working directory inside the container.")
def exec_command(
    ref: str,
    command: tuple[str, ...],
    tty: bool,
    interactive: bool,
    env: tuple[str, ...],
    workdir: str,
) -> int:
    """Run COMMAND in a running container over SSH; exits with its exit status.

    Put -- before the command: lk exec web -- ls -l /
    """
    from lk_core.errors import UsageError
    from lk_core.manager import Manager

    argv = list(command)
    stdin_is_terminal = sys.stdin.isatty()
    if tty and interactive and not stdin_is_terminal:
        raise UsageError("-t -i needs a terminal on stdin: drop -t to pipe input")
    # Piped input is forwarded (docker needs -i for that; lk does it for you), except
    # with -t, where a pty would never pass the end of the input on.
    forward_stdin = interactive or (not stdin_is_terminal and not tty)
    result = Manager().exec(
        ref,
        argv,
        tty=tty,
        stdin=sys.stdin.buffer if forward_stdin else None,
        env=_parse_env(env),
        workdir=workdir,
        stream=True,
    )
    return result.exit_code


@click.command("shell")
@click.argument("ref", shell_complete=complete_active_refs)
def shell_command(ref: str) -> int:
    """Open an interactive login shell in a running container."""
    from lk_core.manager import Manager
    from lk_core.ssh import interactive_shell

    manager = Manager()
    return interactive_shell(manager.get(ref), plugins=manager.plugins)


@click.command("cp")
@click.argument("source", shell_complete=complete_cp_path)
@click.argument("destination", shell_complete=complete_cp_path)
def cp_command(source: str, destination: str) -> None:
    """Copy a file into or out of a container: lk cp ./f REF:/path, lk cp REF:/path ./f."""
    from lk_core.errors import UsageError
    from lk_core.manager import Manager
    from lk_core.ssh import copy_from, copy_to

    def split(spec: str) -> tuple[str, str] | None:
        ref, sep, path = spec.partition(":")
        return (ref, path) if sep and ref and "/" not in ref else None

    src, dst = split(source), split(destination)
    if (src is None) == (dst is None):
        raise UsageError("lk cp needs exactly one side as REF:PATH, e.g. lk cp ./f web:/tmp/f")
    manager = Manager()
    if dst is not None:
        copy_to(manager.get(dst[0]), source, dst[1], plugins=manager.plugins)
    elif src is not None:
        copy_from(manager.get(src[0]), src[1], destination, plugins=manager.plugins)


@click.command("port-forward")
@click.argument("ref", shell_complete=complete_active_refs)
@click.argument("ports", metavar="[LOCAL:]GUEST")
def port_forward_command(ref: str, ports: str) -> None:
    """Forward 127.0.0.1:LOCAL here to port GUEST inside a container, until Ctrl-C.

    Works for a container on any host: the connection goes through the
    guest's SSH server (and the host's SSH tunnel for a remote libvirt host).
    LOCAL 0 or omitted picks a free port; the address is printed.
    """
    from lk_core.errors import UsageError
    from lk_core.manager import Manager
    from lk_core.ssh import forward_port

    local_text, _, guest_text = ports.rpartition(":")
    try:
        local = int(local_text) if local_text else 0
        guest = int(guest_text)
    except ValueError:
        raise UsageError(f"invalid port spec {ports!r}: use [LOCAL:]GUEST, e.g. 8080:80") from None
    if not (0 <= local <= 65535 and 1 <= guest <= 65535):
        raise UsageError(f"invalid port spec {ports!r}: ports are 1 to 65535")

    def ready(port: int) -> None:
        click.echo(f"127.0.0.1:{port} -> {ref}:{guest}", err=False)
        sys.stdout.flush()

    manager = Manager()
    forward_port(manager.get(ref), local, guest, ready, plugins=manager.plugins)
