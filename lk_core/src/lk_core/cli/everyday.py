"""Everyday container commands: attach (console), start, restart, prune, stats."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from lk_core.cli.completion import complete_active_refs, complete_refs
from lk_core.cli.options import stop_timeout_option
from lk_core.cli.outcome import report_errors
from lk_core.errors import LkError

if TYPE_CHECKING:
    from collections.abc import Callable

    from lk_core.manager import Manager
    from lk_core.model import Container


def _manager() -> Manager:
    from lk_core.manager import Manager

    return Manager()


@click.command("attach")
@click.argument("ref", shell_complete=complete_active_refs)
@click.option(
    "--detach-keys",
    default="ctrl-]",
    show_default=True,
    metavar="KEYS",
    help="Keys that detach: comma-separated, each a character or ctrl-<c> (e.g. ctrl-x,q).",
)
def attach_command(ref: str, detach_keys: str) -> int:
    """Attach the terminal to a container's serial console (also: lk console).

    The way into an image without sshd. Everything typed goes to the guest,
    Ctrl-C included, until the detach keys (Ctrl-] by default, as virsh
    console); the VM keeps running. The console is still written to the log
    (lk logs) while attached. One attach at a time per container.
    """
    from lk_core.console import attach, parse_detach_keys
    from lk_core.paths import runtime_dir

    keys = parse_detach_keys(detach_keys)
    manager = _manager()
    container = manager.get(ref)
    hv = manager.hypervisor_of(container)
    sys.stdout.flush()

    def notice(text: str) -> None:
        click.echo(text, err=True)

    how = attach(
        container,
        hv,
        runtime_dir(container.id),
        keys,
        sys.stdin.fileno(),
        sys.stdout.fileno(),
        notice,
    )
    if how == "detached":
        click.echo(f"\nlk: detached from {container.display_name}", err=True)
    else:
        click.echo(
            f"\nlk: the console of {container.display_name} closed (the VM stopped)", err=True
        )
    return 0


@click.command("start")
@click.argument("refs", nargs=-1, required=True, metavar="REF...", shell_complete=complete_refs)
def start_command(refs: tuple[str, ...]) -> int:
    """Boot stopped containers again, cold, with the options they were run with.

    Memory, CPUs, ports, volumes, disks and plugin options are the recorded
    ones; the console log is kept and appended to. A new SSH port is chosen
    if the old one is taken now.
    """
    return _boot_each(refs)


@click.command("restart")
@click.argument("refs", nargs=-1, required=True, metavar="REF...", shell_complete=complete_refs)
@stop_timeout_option
def restart_command(refs: tuple[str, ...], timeout: float) -> int:
    """Stop containers (ACPI, forced after --time) and boot them again with their options."""

    def stop_first(manager: Manager, before: Container) -> None:
        if before.auto_remove:
            raise LkError(
                f"container {before.display_name} was run with --rm: "
                "it would be removed when it stops"
            )
        if before.is_active:
            manager.stop(before.id, timeout=timeout)

    return _boot_each(refs, stop_first)


def _boot_each(
    refs: tuple[str, ...], before_start: Callable[[Manager, Container], None] | None = None
) -> int:
    """Start each container again (after ``before_start``); an error stops only its own."""
    from lk_core.restarting import restart_ports_note

    manager = _manager()
    errors: list[LkError] = []
    for ref in refs:
        try:
            before = manager.get(ref)
            if before_start is not None:
                before_start(manager, before)
            after = manager.start(before.id)
        except LkError as error:
            errors.append(error)
            continue
        note = restart_ports_note(before, after)
        if note:
            click.echo(f"lk: {note}", err=True)
        click.echo(after.display_name)
    return report_errors(errors)


def _disk_usage(path: Path) -> int:
    """Bytes ``path`` (a file or a folder, recursively) occupies on disk."""
    import os

    try:
        info = path.lstat()
    except OSError:
        return 0
    blocks = getattr(info, "st_blocks", None)
    total = blocks * 512 if blocks is not None else info.st_size
    if path.is_dir() and not path.is_symlink():
        for root, dirs, files in os.walk(path):
            for name in [*dirs, *files]:
                try:
                    entry = os.lstat(os.path.join(root, name))
                except OSError:
                    continue
                entry_blocks = getattr(entry, "st_blocks", None)
                total += entry_blocks * 512 if entry_blocks is not None else entry.st_size
    return total


@click.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
def prune_command(force: bool) -> int:
    """Remove every stopped container with its log and runtime files; say what was freed."""
    from lk_core.paths import log_path, runtime_dir
    from lk_core.stats import format_bytes

    manager = _manager()
    stopped = sorted(
        (c for c in manager.list(all=True) if not c.is_active), key=lambda c: c.display_name
    )
    if not stopped:
        click.echo("No stopped containers.")
        return 0
    if not force:
        names = ", ".join(c.display_name for c in stopped)
        plural = "s" if len(stopped) > 1 else ""
        click.confirm(
            f"Remove {len(stopped)} stopped container{plural} ({names}) with their logs and files?",
            abort=True,
            err=True,
        )
    freed = sum(_disk_usage(log_path(c.id)) + _disk_usage(runtime_dir(c.id)) for c in stopped)
    removed = manager.remove([c.id for c in stopped])
    for container in removed:
        click.echo(container.display_name)
    plural = "" if len(removed) == 1 else "s"
    click.echo(f"Removed {len(removed)} container{plural}, freed {format_bytes(freed)}")
    return 0


@click.command("stats")
@click.argument("refs", nargs=-1, metavar="[REF...]", shell_complete=complete_active_refs)
@click.option("--no-stream", is_flag=True, help="Print one table and exit.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format (json implies --no-stream).",
)
def stats_command(refs: tuple[str, ...], no_stream: bool, fmt: str) -> int:
    """CPU, memory and disk I/O of running containers (all of them unless REFs are given).

    On a terminal the table is redrawn every 2 s until Ctrl-C; with
    --no-stream, --format json or output to a pipe it is printed once.
    """
    import json
    import time

    manager = _manager()
    from lk_core.stats import StatsReader, render, to_json

    reader = StatsReader(manager)

    def targets() -> list[Container]:
        if refs:
            return [manager.get(ref) for ref in refs]
        return manager.list()

    stream = fmt == "table" and not no_stream and sys.stdout.isatty()
    reader.prime(targets())
    time.sleep(0.5)
    if not stream:
        samples = reader.sample(targets())
        if fmt == "json":
            click.echo(json.dumps(to_json(samples), indent=2))
        else:
            click.echo(render(samples))
        return 0
    try:
        while True:
            table = render(reader.sample(targets()))
            click.echo("\x1b[H\x1b[2J" + table, nl=True)
            time.sleep(2.0)
    except KeyboardInterrupt:
        return 0
