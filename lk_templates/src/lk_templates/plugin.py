"""The lk plugin (entry point ``templates``): lk-templates' hook implementations.

Kept tiny, it is imported by every ``lk`` command (``lk --help`` too): the
work is imported inside the hooks.

- ``register_template_sources``: workspace, user, legacy and embedded folders;
- ``register_commands``: ``lk templates list|show|vars|render``;
- ``register_options``: ``lk run --template NAME --var K=V --var-file FILE``;
- ``prepare_run``: renders and builds the template (cached), sets memory/CPUs;
- ``container_removed``: prunes cached builds no container uses.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from lk_core import hookimpl

if TYPE_CHECKING:
    import click
    from lk_core.model import Container, RunRequest
    from lk_core.options import OptionSpec
    from lk_core.plugins import Plugins
    from lk_core.template_source import TemplateSource

#: The entry point's name, used when pluggy has no name for this module.
PLUGIN_NAME = "templates"


def _own_name(plugins: Plugins) -> str:
    """The name this module is registered under (option values are keyed by it)."""
    return plugins.manager.get_name(sys.modules[__name__]) or PLUGIN_NAME


@hookimpl(trylast=True)
def register_template_sources() -> list[TemplateSource]:
    """Return lk's own template sources, highest priority first."""
    from lk_templates.sources import default_sources

    return default_sources()


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add ``lk templates`` (imported when used)."""
    from lk_core.cli.root import add_lazy_command

    add_lazy_command(cli, "templates", "lk_templates.cli:templates_group")


@hookimpl
def register_options() -> list[OptionSpec]:
    """``lk run --template NAME [--var NAME=VALUE]... [--var-file FILE]``."""
    from lk_core.options import OptionSpec

    return [
        OptionSpec(
            "template",
            "Build and run this LinuxKit template.",
            metavar="NAME",
            complete="lk_templates.completion:complete_templates",
        ),
        OptionSpec("var", "Template variable (repeatable).", kind="multiple", metavar="NAME=VALUE"),
        OptionSpec(
            "var_file", "Template variables from a file (NAME=VALUE lines).", metavar="FILE"
        ),
    ]


@hookimpl
def prepare_run(plugins: Plugins, request: RunRequest) -> RunRequest | None:
    """With ``--template``: build the template and run the image, with its memory/CPUs."""
    from lk_templates.run import prepare_run as prepare

    return prepare(plugins, request, _own_name(plugins))


@hookimpl
def container_removed(plugins: Plugins, container: Container) -> None:
    """Delete cached template builds that no container uses any more."""
    from lk_templates.run import prune_builds

    prune_builds(plugins)
