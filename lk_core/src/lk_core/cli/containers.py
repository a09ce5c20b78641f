"""Container commands: run, ps, stop, logs, rm, inspect.

Each command parses its options, calls one method of
:class:`lk_core.manager.Manager`, and formats the result.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from lk_core.cli.completion import (
    complete_active_refs,
    complete_hypervisors,
    complete_refs,
)
from lk_core.cli.options import stop_timeout_option
from lk_core.cli.outcome import report_errors

if TYPE_CHECKING:
    from lk_core.manager import Manager
    from lk_core.model import Container


def _manager() -> Manager:
    from lk_core.manager import Manager

    return Manager()


@click.command("run")
@click.argument("image", required=False, default="")
@click.option("--name", default="", help="A unique name for the container.")
@click.option("-d", "--detach", is_flag=True, help="Run in the background and print the ID.")
@click.option("-m", "--memory", default=None, help="Memory: MB or 512M, 2G.  [default: 1024]")
@click.option("-c", "--cpus", default=None, type=int, help="Number of CPUs.  [default: 1]")
@click.option(
    "-p",
    "--publish",
    "ports",
    multiple=True,
    metavar="[IP:]HOST:GUEST[/PROTO]",
    help="Publish a guest port on the host (127.0.0.1 unless IP is given). Repeatable.",
)
@click.option(
    "-v",
    "--volume",
    "volumes",
    multiple=True,
    metavar="HOST_DIR:GUEST_PATH[:ro]",
    help="Share a host directory with the guest over 9p. Repeatable.",
)
@click.option(
    "--hypervisor",
    default="",
    help="Hypervisor to use (see 'lk hypervisors').",
    shell_complete=complete_hypervisors,
)
@click.option(
    "--ssh-port",
    default=0,
    type=click.IntRange(0, 65535),
    help="Host port for SSH (default: a free one).",
)
@click.option("--ssh-key", default="", help="Private key the VM trusts (default: lk's own).")
@click.option(
    "--disk",
    "disks",
    multiple=True,
    metavar="SIZE|NAME:SIZE|NAME",
    help="Attach a data disk: an empty one of SIZE (e.g. 10G) deleted with the container, "
    "or the named disk NAME that outlives it (created with SIZE if new; see 'lk disk'). "
    "Repeatable.",
)
@click.option(
    "--in-place",
    is_flag=True,
    help="Run a disk image itself, writing it (one container at a time), not on an overlay.",
)
@click.option("--no-metadata", is_flag=True, help="Do not attach the LinuxKit metadata CD.")
@click.option("--metadata-file", default="", help="Your own LinuxKit user data for the CD.")
@click.option("--wait", is_flag=True, help="With -d: return once SSH answers.")
@click.option(
    "--wait-timeout",
    default=120.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds for --wait.",
)
@click.option(
    "--rm",
    "auto_remove",
    is_flag=True,
    help="Remove the container (record, log, runtime files) when the VM exits.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress line (--wait, template builds).")
@click.option(
    "--from-checkpoint",
    default="",
    metavar="NAME",
    help="Resume checkpoint NAME as a new container (no IMAGE; see 'lk checkpoint').",
)
@click.option(
    "--warm",
    is_flag=True,
    help="Resume this run's warm checkpoint if one exists; else boot, and save one once "
    "SSH answers (see 'lk checkpoint').",
)
def run_command(
    image: str,
    name: str,
    detach: bool,
    memory: str | None,
    cpus: int | None,
    ports: tuple[str, ...],
    volumes: tuple[str, ...],
    hypervisor: str,
    ssh_port: int,
    ssh_key: str,
    disks: tuple[str, ...],
    in_place: bool,
    no_metadata: bool,
    metadata_file: str,
    wait: bool,
    wait_timeout: float,
    auto_remove: bool,
    quiet: bool,
    from_checkpoint: str = "",
    warm: bool = False,
    **plugin_options: Any,
) -> int:
    """Boot IMAGE (ISO, qcow2, vmdk, raw, or LinuxKit kernel+initrd) as a container.

    Installed plugins add options (see below): a hypervisor's own settings,
    or another way to name the image (a LinuxKit template, with lk-templates).
    """
    from lk_core.disks import parse_disk_option
    from lk_core.errors import UsageError
    from lk_core.model import RunOptions, RunRequest
    from lk_core.options import plugin_values
    from lk_core.ports import parse_port
    from lk_core.units import parse_memory
    from lk_core.volumes import parse_volume

    if no_metadata and metadata_file:
        raise UsageError("--metadata-file needs the metadata CD: drop --no-metadata")
    manager = _manager()
    declared = manager.plugins.options()
    options = RunOptions(
        name=name,
        detach=detach,
        auto_remove=auto_remove,
        memory=parse_memory(memory) if memory is not None else None,
        cpus=cpus,
        ports=tuple(parse_port(p) for p in ports),
        volumes=tuple(parse_volume(v) for v in volumes),
        ssh_port=ssh_port,
        ssh_key=ssh_key,
        hypervisor=hypervisor,
        hypervisor_options={
            key: value
            for key, value in plugin_options.items()
            if key in declared and declared[key].for_hypervisors
        },
        metadata=not no_metadata,
        metadata_file=metadata_file,
        disks=tuple(parse_disk_option(d) for d in disks),
        in_place=in_place,
        progress=not quiet,
    )
    request = RunRequest(image, options, plugin_values(declared, plugin_options))
    if from_checkpoint or warm:  # see lk_core.checkpoints
        from lk_core.cli.checkpoints import run_checkpointed

        hv_values = {k: v for k, v in options.hypervisor_options.items() if v is not None}
        return run_checkpointed(
            manager, request, from_checkpoint, hv_values, wait, wait_timeout, quiet
        )
    if detach:
        container = manager.run_request(request)
        click.echo(container.id)
        if wait:
            from lk_core.cli.progress import wait_with_progress

            wait_with_progress(manager, container, wait_timeout, quiet=quiet)
        return 0
    from lk_core.cli.foreground import run_attached

    return run_attached(manager, request)


def _ps_row(c: Container, no_trunc: bool = False) -> list[str]:
    from lk_core.timeutil import human_since

    ports = ", ".join(str(p) for p in c.ports)
    status = str(c.status)
    if c.status.value == "stopped" and c.status_reason.startswith("forced"):
        status += " (forced)"  # lk stop had to power it off: see lk inspect
    elif c.exit_code is not None and c.status.value in ("stopped", "error"):
        status += f" ({c.exit_code})"
    return [
        c.id,
        c.name or "-",
        c.image if no_trunc else _short_image(c.image),
        status,
        human_since(c.started_at),
        # a stopped container's port may belong to another VM now
        f"127.0.0.1:{c.ssh_port}" if c.ssh_port and c.is_active else "-",
        ports or "-",
    ]


def _short_image(image: str, width: int = 30) -> str:
    import os.path

    base = os.path.basename(image)
    return base if len(base) <= width else "..." + base[-(width - 3) :]


@click.command("ps")
@click.option("-a", "--all", "show_all", is_flag=True, help="Show stopped containers too.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "yaml"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("-q", "--quiet", is_flag=True, help="Print only IDs.")
@click.option("--no-trunc", is_flag=True, help="Show whole image paths.")
@click.option(
    "-f",
    "--filter",
    "filters",
    multiple=True,
    metavar="KEY=VALUE",
    help="Only matching containers; keys: status, name, image, hypervisor. Repeatable: "
    "values of one key are ORed, different keys ANDed. A status filter implies -a.",
)
def ps_command(
    show_all: bool,
    fmt: str,
    as_json: bool,
    quiet: bool,
    no_trunc: bool = False,
    filters: tuple[str, ...] = (),
) -> None:
    """List containers (running ones unless -a); liveness is checked every time."""
    fmt = "json" if as_json else fmt
    manager = _manager()
    from lk_core.filters import apply_filters, parse_filters

    wanted = parse_filters(filters)
    containers = apply_filters(manager.list(all=show_all or "status" in wanted), wanted)
    for reason in manager.unreachable.values():
        click.echo(f"lk: warning: {reason}", err=True)
    if quiet:
        for c in containers:
            click.echo(c.id)
        return
    if fmt != "table":
        from lk_core.serialize import container_to_dict

        _emit([container_to_dict(c) for c in containers], fmt)
        return
    from lk_core.table import render_table

    headers = ["ID", "NAME", "IMAGE", "STATUS", "STARTED", "SSH", "PORTS"]
    rows = [_ps_row(c, no_trunc) for c in containers]
    if any(c.host for c in containers):  # containers on other hosts: say where each runs
        headers.insert(4, "HOST")
        for row, c in zip(rows, containers, strict=True):
            row.insert(4, c.host or "-")
    click.echo(render_table(headers, rows))
    for c in containers:
        if c.status_reason and c.status.value in ("broken", "error"):
            click.echo(f"{c.display_name}: {c.status_reason}", err=True)


def _emit(data: Any, fmt: str) -> None:
    if fmt == "yaml":
        import yaml

        click.echo(yaml.safe_dump(data, sort_keys=False), nl=False)
    else:
        click.echo(json.dumps(data, indent=2))


@click.command("stop")
@click.argument(
    "refs", nargs=-1, required=True, metavar="REF...", shell_complete=complete_active_refs
)
@stop_timeout_option
@click.option("-f", "--force", is_flag=True, help="Power off at once, without ACPI shutdown.")
def stop_command(refs: tuple[str, ...], timeout: float, force: bool) -> int:
    """Stop containers: ACPI power-off, then force after --time seconds."""
    from concurrent.futures import ThreadPoolExecutor

    from lk_core.errors import LkError

    manager = _manager()
    errors: list[LkError] = []
    targets: dict[str, Container] = {}
    for ref in refs:  # an unknown ref is reported; the others are still stopped
        try:
            container = manager.get(ref)
        except LkError as error:
            errors.append(error)
            continue
        targets.setdefault(container.id, container)

    def stop_one(container: Container) -> Container:
        return _manager().stop(container.id, timeout=timeout, force=force)

    if targets:  # in parallel: two guests that ignore ACPI cost one timeout, not two
        with ThreadPoolExecutor(max_workers=min(16, len(targets))) as pool:
            futures = [pool.submit(stop_one, c) for c in targets.values()]
        for future in futures:
            try:
                click.echo(future.result().display_name)
            except LkError as error:
                errors.append(error)
    return report_errors(errors)


@click.command("logs")
@click.argument("ref", shell_complete=complete_refs)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new output until the VM exits.")
@click.option(
    "-n", "--tail", default=None, type=click.IntRange(min=0), help="Only the last N lines."
)
def logs_command(ref: str, follow: bool, tail: int | None) -> None:
    """Print a container's serial console log."""
    if follow:
        from lk_core.logs import interrupt_on_sigint

        interrupt_on_sigint()  # Ctrl-C stops it even if SIGINT was inherited ignored
    out = sys.stdout.buffer
    for chunk in _manager().logs(ref, follow=follow, tail=tail):
        out.write(chunk)
        if follow:
            out.flush()
    out.flush()


@click.command("rm")
@click.argument("refs", nargs=-1, required=True, metavar="REF...", shell_complete=complete_refs)
@click.option("-f", "--force", is_flag=True, help="Stop running containers first.")
def rm_command(refs: tuple[str, ...], force: bool) -> None:
    """Remove containers: record, console log and runtime files."""
    for container in _manager().remove(refs, force=force):
        click.echo(container.display_name)


@click.command("inspect")
@click.argument("ref", shell_complete=complete_refs)
def inspect_command(ref: str) -> None:
    """Show everything lk knows about a container, as JSON."""
    click.echo(json.dumps(_manager().inspect(ref), indent=2))
