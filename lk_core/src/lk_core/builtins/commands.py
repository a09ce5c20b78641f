"""Built-in plugin: lk's own commands (run, ps, stop, logs, rm, inspect, plugins...).

They are added lazily (:func:`lk_core.cli.root.add_lazy_command`):
``lk ps`` imports the module of ``ps`` and no other. ``CORE_COMMANDS`` says
where each name lives; a test checks that it names every command the
``lk_core.cli`` modules define.
"""

from __future__ import annotations

import click

from lk_core.hookspecs import hookimpl

_CLI = "lk_core.cli."

#: lk's own commands: name -> ``"module:attribute"`` of the Click command.
CORE_COMMANDS = {
    "run": _CLI + "containers:run_command",
    "ps": _CLI + "containers:ps_command",
    "stop": _CLI + "containers:stop_command",
    "logs": _CLI + "containers:logs_command",
    "rm": _CLI + "containers:rm_command",
    "inspect": _CLI + "containers:inspect_command",
    "commit": _CLI + "disks:commit_command",
    "disk": _CLI + "disks:disk_group",
    "wait": _CLI + "ssh:wait_command",
    "exec": _CLI + "ssh:exec_command",
    "shell": _CLI + "ssh:shell_command",
    "cp": _CLI + "ssh:cp_command",
    "port-forward": _CLI + "ssh:port_forward_command",
    "plugins": _CLI + "info:plugins_command",
    "hypervisors": _CLI + "info:hypervisors_command",
    "version": _CLI + "info:version_command",
    "completion": _CLI + "completion:completion_command",
    "attach": _CLI + "everyday:attach_command",
    "console": _CLI + "everyday:attach_command",  # lk console is lk attach
    "start": _CLI + "everyday:start_command",
    "restart": _CLI + "everyday:restart_command",
    "prune": _CLI + "everyday:prune_command",
    "stats": _CLI + "everyday:stats_command",
    "checkpoint": _CLI + "checkpoints:checkpoint_group",
}


@hookimpl(tryfirst=True)  # added first, so a plugin's command of the same name replaces it
def register_commands(cli: click.Group) -> None:
    """Add lk's core commands to the root group (imported when used, on lk's own group)."""
    from lk_core.cli.root import add_lazy_command

    for name, target in CORE_COMMANDS.items():
        add_lazy_command(cli, name, target)
