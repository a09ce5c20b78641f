"""Disk commands: ``lk commit`` and ``lk disk create|ls|rm`` (named disks).

See :mod:`lk_core.disks` for what a container's disks are.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from lk_core.cli.completion import complete_hypervisors, complete_refs
from lk_core.cli.options import format_options

if TYPE_CHECKING:
    from lk_core.hypervisor import Hypervisor
    from lk_core.plugins import Plugins


@click.command("commit")
@click.argument("ref", shell_complete=complete_refs)
@click.argument("image")
@click.option("-f", "--force", is_flag=True, help="Replace IMAGE if it exists.")
def commit_command(ref: str, image: str, force: bool) -> None:
    """Write a stopped container's disk as a new standalone qcow2 IMAGE.

    The container's overlay and the image it was started from are flattened
    into one file that 'lk run' boots like any image (the original image is
    unchanged). Containers of an ISO or kernel+initrd image, or run with
    --in-place, have no disk of their own to commit.
    """
    from lk_core.manager import Manager

    path = Manager().commit(ref, image, force=force)
    click.echo(str(path))


@click.group("disk")
def disk_group() -> None:
    """Manage named disks: data disks that outlive containers.

    \b
    Attach one with 'lk run --disk NAME ...' (or --disk NAME:SIZE, which
    creates it if needed); it is attached to one running container at a
    time, and the guest finds it by its serial (lk-NAME, at most 20 bytes)
    in /sys/block/vdX/serial.
    """


def _disk_hypervisor(plugins: Plugins, name: str) -> Hypervisor:
    """The hypervisor named ``name``, or the best available one that can create disks."""
    from lk_core.errors import HypervisorError
    from lk_core.hypervisor import Capability

    if name:
        return plugins.get_hypervisor(name)
    ranked = sorted(plugins.hypervisors().values(), key=lambda h: (-h.priority, h.name))
    for hv in ranked:
        if Capability.DISKS in hv.capabilities and hv.availability().available:
            return hv
    raise HypervisorError("no available hypervisor can create disks (see 'lk hypervisors')")


@disk_group.command("create")
@click.argument("name")
@click.argument("size")
@click.option(
    "--hypervisor",
    default="",
    help="Hypervisor whose disk tool creates it (default: the best available).",
    shell_complete=complete_hypervisors,
)
def disk_create_command(name: str, size: str, hypervisor: str) -> None:
    """Create the named disk NAME of SIZE (e.g. 10G): empty and sparse."""
    from lk_core.disks import check_disk_name, create_named_disk, parse_disk_size
    from lk_core.plugins import get_plugins

    check_disk_name(name)
    size_bytes = parse_disk_size(size)
    path = create_named_disk(_disk_hypervisor(get_plugins(), hypervisor), name, size_bytes)
    click.echo(str(path))


@disk_group.command("ls")
@format_options
def disk_ls_command(fmt: str, as_json: bool) -> None:
    """List named disks: size, space used on the host, the container using it."""
    from lk_core.disks import format_size, list_named_disks
    from lk_core.manager import Manager

    disks = list_named_disks(Manager().list(all=True))
    if as_json or fmt == "json":
        rows = [
            {
                "name": d.name,
                "path": str(d.path),
                "format": d.format,
                "size": d.size,
                "used": d.used,
                "attached_to": list(d.users),
            }
            for d in disks
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    from lk_core.table import render_table

    click.echo(
        render_table(
            ["NAME", "SIZE", "USED", "FORMAT", "ATTACHED TO"],
            [
                [
                    d.name,
                    format_size(d.size),
                    format_size(d.used),
                    d.format,
                    ", ".join(d.users) or "-",
                ]
                for d in disks
            ],
        )
    )


@disk_group.command("rm")
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
def disk_rm_command(names: tuple[str, ...]) -> None:
    """Delete named disks and their data (refused while attached to a running container)."""
    from lk_core.disks import check_disk_name, disk_users, find_named_disk, remove_named_disk
    from lk_core.errors import NotFoundError, UsageError
    from lk_core.manager import Manager

    records = Manager().list(all=True)
    for name in names:  # check them all before deleting any
        check_disk_name(name)
        if find_named_disk(name) is None:
            raise NotFoundError(f"no disk named {name!r} (see 'lk disk ls')")
        users = disk_users(name, records)
        if users:
            raise UsageError(
                f"disk {name} is attached to container {users[0]}: stop it first "
                f"('lk stop {users[0]}')"
            )
    for name in names:
        remove_named_disk(name, records)
        click.echo(name)
