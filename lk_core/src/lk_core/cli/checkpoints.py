"""Checkpoint commands: ``lk checkpoint create|ls|inspect|rm|prune``, and ``lk run``'s
``--from-checkpoint`` and ``--warm``.

See :mod:`lk_core.checkpoints` for what a checkpoint is.
"""

from __future__ import annotations

import json
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from lk_core.cli.completion import complete_active_refs
from lk_core.cli.options import format_options
from lk_core.threads import HANDLED_SIGNALS, start_helper_thread

if TYPE_CHECKING:
    from lk_core.manager import Manager
    from lk_core.model import Container, RunRequest


def _manager() -> Manager:
    from lk_core.manager import Manager

    return Manager()


@click.group("checkpoint")
def checkpoint_group() -> None:
    """Save running containers and start new ones from them in well under a second.

    \b
    A checkpoint holds a container's RAM, device state and disks as they
    were at one instant. 'lk run --from-checkpoint NAME' starts a new
    container from it (new ID, ports and console log; the same guest: its
    files in RAM, host keys and clock). 'lk run --warm IMAGE' does it by
    itself: the first run boots and saves a checkpoint, the next ones
    resume it. See docs/checkpoints.md.
    """


@checkpoint_group.command("create")
@click.argument("ref", shell_complete=complete_active_refs)
@click.argument("name")
@click.option("--stop", is_flag=True, help="Power the container off once saved (else it resumes).")
@click.option("-q", "--quiet", is_flag=True, help="No progress line while saving.")
def checkpoint_create_command(ref: str, name: str, stop: bool, quiet: bool) -> None:
    """Save running container REF as checkpoint NAME.

    The guest is paused while its RAM, devices and own disks (boot overlay,
    --disk data disks) are saved, then resumes (or is powered off with
    --stop). Containers with -v volumes, named disks or --in-place are
    refused. Prints NAME.
    """
    from lk_core.checkpoints import create_checkpoint

    data = create_checkpoint(_manager(), ref, name, stop=stop, progress=not quiet)
    click.echo(data["name"])


@checkpoint_group.command("ls")
@format_options
def checkpoint_ls_command(fmt: str, as_json: bool) -> None:
    """List checkpoints: source image, size on disk, age, memory/CPUs, warm or not, users."""
    from lk_core.checkpoints import list_checkpoints

    entries = list_checkpoints(_manager().list(all=True))
    if as_json or fmt == "json":
        click.echo(json.dumps(entries, indent=2))
        return
    import os.path

    from lk_core.disks import format_size
    from lk_core.table import render_table
    from lk_core.timeutil import human_since

    rows = []
    for e in entries:
        if "error" in e:
            rows.append([e["name"], "-", "-", "-", "-", "-", "-", e["error"]])
            continue
        rows.append(
            [
                e["name"],
                os.path.basename(e["image"]),
                format_size(e["size"]),
                human_since(e["created"]),
                f"{e['memory']}M/{e['cpus']}",
                "warm" if e["warm"] else "-",
                str(len(e["users"])),
                "",
            ]
        )
    headers = ["NAME", "IMAGE", "SIZE", "CREATED", "MEM/CPUS", "KIND", "USED BY", ""]
    click.echo(render_table(headers, rows).rstrip())


@checkpoint_group.command("inspect")
@click.argument("name")
def checkpoint_inspect_command(name: str) -> None:
    """Show checkpoint NAME's sidecar as JSON (what was saved, from which container)."""
    from lk_core.checkpoints import checkpoint_users, load_checkpoint

    data = load_checkpoint(name)
    data["used_by"] = checkpoint_users(name, _manager().list(all=True))
    click.echo(json.dumps(data, indent=2))


@checkpoint_group.command("rm")
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
def checkpoint_rm_command(names: tuple[str, ...]) -> None:
    """Delete checkpoints (refused while a container resumed from one exists)."""
    from lk_core.checkpoints import remove_checkpoint

    records = _manager().list(all=True)
    for name in names:
        remove_checkpoint(name, records)
        click.echo(name)


@checkpoint_group.command("prune")
def checkpoint_prune_command() -> None:
    """Delete the warm checkpoints ('lk run --warm') no container was resumed from."""
    from lk_core.checkpoints import prune_checkpoints

    for name in prune_checkpoints(_manager().list(all=True)):
        click.echo(name)


def run_checkpointed(
    manager: Manager,
    request: RunRequest,
    from_checkpoint: str,
    hv_values: dict[str, Any],
    wait: bool,
    wait_timeout: float,
    quiet: bool,
) -> int:
    """``lk run --from-checkpoint NAME`` or ``lk run --warm IMAGE``, detached or attached."""
    from lk_core.checkpoints import resume_checkpoint, run_warm
    from lk_core.errors import UsageError

    options = request.options
    if from_checkpoint:
        if request.image:
            raise UsageError(
                f"--from-checkpoint resumes {from_checkpoint}'s own image: drop {request.image}"
            )
        container = resume_checkpoint(manager, from_checkpoint, options, hv_values)
    else:

        def warn(message: str) -> None:
            click.echo(f"lk: warning: {message}", err=True)

        container = run_warm(manager, request, wait_timeout, warn)
    if options.detach:
        click.echo(container.id)
        if wait:
            from lk_core.cli.progress import wait_with_progress

            wait_with_progress(manager, container, wait_timeout, quiet=quiet)
        return 0
    return _follow(manager, container)


def _follow(manager: Manager, container: Container) -> int:
    """Stream a running container's console until it exits; Ctrl-C stops it (twice: forced)."""
    interrupts = [0]

    def on_interrupt(_signum: int, _frame: FrameType | None) -> None:
        interrupts[0] += 1
        force = interrupts[0] > 1
        message = "forcing power-off" if force else "stopping (Ctrl-C again to force)"
        click.echo(f"\nlk: {message}...", err=True)
        start_helper_thread(manager.stop, container.id, force=force, name="lk-stop")

    previous = {sig: signal.signal(sig, on_interrupt) for sig in HANDLED_SIGNALS}
    try:
        out = sys.stdout.buffer
        for chunk in manager.logs(container.id, follow=True):
            out.write(chunk)
            out.flush()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    final = manager.get(container.id)
    if final.auto_remove:
        manager.remove([final.id], force=True)
    if final.status.value == "error":
        click.echo(f"lk: {final.display_name}: {final.status_reason}", err=True)
        return final.exit_code or 1
    return 0
