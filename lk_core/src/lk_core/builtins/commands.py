"""Built-in plugin: lk's own commands (run, ps, stop, logs, rm, inspect, plugins...)."""

from __future__ import annotations

import click

from lk_core.hookspecs import hookimpl


@hookimpl(tryfirst=True)  # added first, so a plugin's command of the same name replaces it
def register_commands(cli: click.Group) -> None:
    """Add lk's core commands to the root group."""
    from lk_core.cli import completion, containers, disks, info, ssh

    for command in (
        *containers.COMMANDS,
        *disks.COMMANDS,
        *ssh.COMMANDS,
        *info.COMMANDS,
        *completion.COMMANDS,
    ):
        cli.add_command(command)
    from lk_core.cli import everyday  # attach (console), start, restart, prune, stats

    for command in everyday.COMMANDS:
        cli.add_command(command)
    for alias, command in everyday.ALIASES.items():
        cli.add_command(command, alias)
    from lk_core.cli import checkpoints  # lk checkpoint create|ls|inspect|rm|prune

    for command in checkpoints.COMMANDS:
        cli.add_command(command)
