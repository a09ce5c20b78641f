"""The root ``lk`` Click group, assembled from the loaded plugins, and its runner.

This module stays light (click only): each command imports what it needs when
it runs, so ``lk ps`` starts fast. :func:`lk_core.cli.main` comes here for
everything but a cached ``lk --help``.
"""

from __future__ import annotations

import os
from typing import Any

import click

from lk_core.errors import LkError, PluginError

_debug = False


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from lk_core.plugins import get_plugins
    from lk_core.version import version_lines

    for line in version_lines(get_plugins()):
        click.echo(line)
    ctx.exit(0)


def _set_debug(_ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    global _debug
    _debug = _debug or value


class LkGroup(click.Group):
    """The root group: commands imported when used, given their plugin options when invoked.

    :meth:`add_lazy_command` adds a command by where it is defined, so that
    ``lk ps`` imports only the module of ``ps``. Declaring options asks every
    hypervisor for its own, which ``lk --help`` and commands that take none
    should not pay for.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Commands not imported yet: name -> ``"module:attribute"``.
        self.lazy_commands: dict[str, str] = {}

    def add_lazy_command(self, name: str, target: str) -> None:
        """Add command ``name``: the Click command ``target`` (``"module:attribute"``).

        The module is imported only when the command is used (or listed with
        its help). Like :meth:`add_command`, it replaces a command of that name.
        """
        self.commands.pop(name, None)
        self.lazy_commands[name] = target

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        """Add ``cmd`` (under ``name``), replacing a command of that name, lazy or not."""
        super().add_command(cmd, name)
        self.lazy_commands.pop(name or cmd.name or "", None)

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command's name, imported or not."""
        return sorted({*self.commands, *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command ``cmd_name``, imported now if it was added lazily.

        A command that cannot be imported is listed with the reason, and
        running it fails with that reason in one line.
        """
        target = self.lazy_commands.pop(cmd_name, None)
        if target is not None:
            try:
                self.commands[cmd_name] = _import_command(cmd_name, target)
            except PluginError as exc:
                self.commands[cmd_name] = _broken_command(cmd_name, exc)
        return self.commands.get(cmd_name)

    def all_commands(self) -> dict[str, click.Command]:
        """Every command by name, importing those added lazily."""
        for name in list(self.lazy_commands):
            self.get_command(click.Context(self), name)
        return dict(self.commands)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """Find the subcommand, then add the options plugins give it."""
        name, command, rest = super().resolve_command(ctx, args)
        if name and command is not None:
            install_plugin_options({name: command})
        return name, command, rest


def add_lazy_command(cli: click.Group, name: str, target: str) -> None:
    """Add command ``name``, the Click command at ``target`` (``"module:attribute"``), to ``cli``.

    On lk's root group (what ``register_commands`` receives) the module is
    imported only when the command is used; on any other Click group, now.
    """
    if isinstance(cli, LkGroup):
        cli.add_lazy_command(name, target)
    else:
        cli.add_command(_import_command(name, target), name)


def _broken_command(name: str, error: PluginError) -> click.Command:
    """A stand-in for command ``name``, which could not be imported: it fails with ``error``."""

    def fail() -> None:
        raise error

    return click.Command(
        name,
        callback=fail,
        help=f"(cannot be loaded: {error})",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )


def _import_command(name: str, target: str) -> click.Command:
    """Import the Click command at ``target`` (``"module:attribute"``) for command ``name``."""
    import importlib

    module_name, _, attribute = target.partition(":")
    try:
        command = getattr(importlib.import_module(module_name), attribute)
    except Exception as exc:
        text = " ".join(str(exc).split())
        raise PluginError(
            f"command {name!r} cannot be loaded from {target}: {type(exc).__name__}: {text}"
        ) from exc
    if not isinstance(command, click.Command):
        raise PluginError(f"command {name!r}: {target} is not a Click command")
    return command


def install_plugin_options(commands: dict[str, click.Command]) -> None:
    """Add the loaded plugins' options to each of ``commands`` (by command name)."""
    from lk_core.options import install_options
    from lk_core.plugins import get_plugins

    declared = get_plugins().options()
    for name, command in commands.items():
        install_options(name, command, declared)


@click.group(
    name="lk",
    cls=LkGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version of lk and of every plugin, then exit.",
)
@click.option(
    "--debug",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_set_debug,
    help="Show full tracebacks on errors (also: LK_DEBUG=1).",
)
def cli() -> None:
    """Run LinuxKit VM images as lightweight containers.

    \b
    Examples:
      lk run -d --name web image.iso -p 8080:80
      lk ps
      lk logs -f web
      lk exec web -- uname -a
      lk stop web && lk rm web
    """


def build_cli(all_options: bool = False) -> click.Group:
    """Return the root group with every plugin's commands added.

    Plugin options are added to a command when it is invoked; with
    ``all_options`` (documentation, introspection) to every command now.
    """
    from lk_core.plugins import get_plugins, report_failures

    plugins = get_plugins()
    if "_LK_COMPLETE" not in os.environ:  # no warnings in the middle of a Tab completion
        report_failures(plugins)
    plugins.add_commands(cli)
    if all_options:
        install_plugin_options(cli.all_commands())
    return cli


def root_help(save: bool) -> str:
    """What ``lk --help`` prints, rendered now; with ``save``, kept in the command catalog.

    Only a process that loaded its plugins itself may save: plugins set by
    hand (tests, embedding) are not what ``lk`` would load.
    """
    from lk_core.cli import catalog
    from lk_core.plugins import get_plugins

    group = build_cli()
    text = help_text(group)
    if save:
        catalog.save(group, get_plugins(), text)
    return text


def help_text(group: click.Group) -> str:
    """The help ``group`` prints for ``--help`` (with its final newline)."""
    ctx = click.Context(group, info_name=group.name, **group.context_settings)
    return ctx.get_help() + "\n"


def _fail(error: LkError) -> int:
    click.echo(f"lk: error: {error}", err=True)
    return error.exit_code


def run_command_line(args: list[str]) -> int:
    """Run the ``lk`` command line with ``args`` and return its exit status."""
    global _debug
    _debug = os.environ.get("LK_DEBUG", "") not in ("", "0")
    try:
        if args in (["--help"], ["-h"]):
            from lk_core.cli import plugins_given

            click.echo(root_help(save=not plugins_given()), nl=False)
            return 0
        group = build_cli()
        result = group.main(args=args, prog_name="lk", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort as exc:
        if isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt):
            return 130  # interrupted (Ctrl-C), like a shell
        click.echo("Aborted.", err=True)
        return 1
    except LkError as exc:
        if _debug:
            raise
        return _fail(exc)
    except KeyboardInterrupt:
        return 130
    return result if isinstance(result, int) else 0
