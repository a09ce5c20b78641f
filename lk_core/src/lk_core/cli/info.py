"""``lk plugins``, ``lk hypervisors``, ``lk version``: what is installed and what can run here."""

from __future__ import annotations

import json
from typing import Any

import click

from lk_core.cli.options import format_options


@click.command("plugins")
@format_options
def plugins_command(fmt: str, as_json: bool) -> None:
    """List loaded plugins, their distribution, version and hooks.

    Plugins that failed to load are listed too (in JSON under "failed").
    """
    from lk_core.plugins import get_plugins

    plugins = get_plugins()
    rows: list[dict[str, Any]] = [
        {
            "name": info.name,
            "distribution": info.distribution,
            "version": info.version,
            "hooks": list(info.hooks),
        }
        for info in sorted(plugins.infos.values(), key=lambda i: i.name)
    ]
    failed = [
        {"name": f.name, "distribution": f.distribution, "error": f.error} for f in plugins.failures
    ]
    if as_json or fmt == "json":
        click.echo(json.dumps({"plugins": rows, "failed": failed}, indent=2))
        return
    from lk_core.table import render_table

    click.echo(
        render_table(
            ["NAME", "DISTRIBUTION", "VERSION", "HOOKS"],
            [[r["name"], r["distribution"], r["version"], ", ".join(r["hooks"])] for r in rows],
        )
    )
    for f in failed:
        click.echo(f"{f['name']} ({f['distribution']}): FAILED to load: {f['error']}")


@click.command("hypervisors")
@format_options
def hypervisors_command(fmt: str, as_json: bool) -> None:
    """List every hypervisor plugins provide, and whether it can run here."""
    from lk_core.plugins import get_plugins

    plugins = get_plugins()
    default = ""
    try:
        default = plugins.detect_hypervisor().name
    except Exception:
        default = ""
    rows: list[dict[str, Any]] = []
    for hv in sorted(plugins.hypervisors().values(), key=lambda h: (-h.priority, h.name)):
        availability = hv.availability()
        rows.append(
            {
                "name": hv.name,
                "available": availability.available,
                "default": hv.name == default,
                "reason": availability.reason,
                "formats": sorted(hv.formats),
                "details": dict(availability.details),
                "description": hv.description,
            }
        )
    if as_json or fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    from lk_core.table import render_table

    table = []
    for r in rows:
        state = "yes" if r["available"] else "no"
        note = r["reason"]
        if r["details"]:
            note = "; ".join([note] * bool(note) + [f"{k}: {v}" for k, v in r["details"].items()])
        table.append([r["name"] + (" *" if r["default"] else ""), state, note])
    click.echo(render_table(["NAME", "AVAILABLE", "DETAILS"], table))
    if default:
        click.echo("* used when --hypervisor is not given")


@click.command("version")
def version_command() -> None:
    """Show the version of lk and of every plugin distribution (same as lk --version)."""
    from lk_core.plugins import get_plugins
    from lk_core.version import version_lines

    for line in version_lines(get_plugins()):
        click.echo(line)
