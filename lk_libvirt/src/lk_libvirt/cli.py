"""``lk host add|ls|rm``: the libvirt hosts lk runs containers on."""

from __future__ import annotations

import click


@click.group("host")
def host_group() -> None:
    """Manage libvirt hosts (lk run --host NAME runs a container there)."""


@host_group.command("add")
@click.argument("name")
@click.argument("uri")
@click.option("--pool", default="", help="Storage pool for images (default: 'lk', created).")
@click.option(
    "--timeout", default=10.0, show_default=True, type=float, help="Seconds to reach the host."
)
@click.option("--no-check", is_flag=True, help="Add it without connecting (host down now).")
def host_add(name: str, uri: str, pool: str, timeout: float, no_check: bool) -> None:
    """Add host NAME reached at libvirt URI (qemu+ssh://user@host/system...)."""
    from lk_libvirt.hosts import HostEntry, add_host
    from lk_libvirt.remote_ssh import SSH_TRANSPORTS
    from lk_libvirt.uri import parse_uri

    parsed = parse_uri(uri)
    if parsed.transport == "tcp":
        click.echo(
            f"warning: {uri} is plain TCP: unless that libvirtd requires SASL (auth_tcp), "
            f"anyone who reaches {parsed.host or 'localhost'}:{parsed.port or 16509} controls "
            "that host (prefer qemu+ssh://); lk exec, cp and port-forward need an SSH host",
            err=True,
        )
    host_key = ""
    if parsed.transport in SSH_TRANSPORTS and not no_check:
        from lk_libvirt.remote_ssh import fetch_host_key

        host_key = fetch_host_key(uri, timeout)
    if not no_check:
        from lk_libvirt.connection import close_connection, open_connection

        close_connection(open_connection(parsed, timeout=timeout))
    add_host(HostEntry(name, uri, pool, host_key))
    click.echo(name)


@host_group.command("ls")
def host_ls() -> None:
    """List the hosts (local is this machine's qemu:///system)."""
    from lk_core.table import render_table

    from lk_libvirt.hosts import known_hosts

    rows = [
        [h.name, h.uri, h.pool or "lk", "pinned" if h.host_key else "-"]
        for h in known_hosts().values()
    ]
    click.echo(render_table(["NAME", "URI", "POOL", "SSH KEY"], rows))


@host_group.command("rm")
@click.argument("name")
def host_rm(name: str) -> None:
    """Forget host NAME (its containers keep running there)."""
    from lk_libvirt.hosts import remove_host

    remove_host(name)
    click.echo(name)
