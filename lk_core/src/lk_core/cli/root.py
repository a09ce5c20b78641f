"""The root ``lk`` Click group, assembled from the loaded plugins, and its runner.

This module stays light (click only): each command imports what it needs when
it runs, so ``lk ps`` starts fast. :func:`lk_core.cli.main` comes here for
everything but a cached ``lk --help``.
"""

from __future__ import annotations

import os
import sys

import click

from lk_core.errors import LkError

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
    """The root group: a command gets its plugin options only when it is invoked.

    Declaring options asks every hypervisor for its own, which ``lk --help``
    and commands that take none should not pay for.
    """

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """Find the subcommand, then add the options plugins give it."""
        name, command, rest = super().resolve_command(ctx, args)
        if name and command is not None:
            install_plugin_options({name: command})
        return name, command, rest


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
        install_plugin_options(dict(cli.commands))
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


def plugins_given() -> bool:
    """Whether this process already has its plugins (loaded earlier or set by hand)."""
    plugins_module = sys.modules.get("lk_core.plugins")
    return getattr(plugins_module, "_current", None) is not None


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
