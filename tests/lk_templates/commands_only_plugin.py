"""A plugin with lk-templates' commands but none of its sources (LK_PLUGIN_MODULES)."""

from __future__ import annotations

from typing import Any

from lk_core import hookimpl


@hookimpl
def register_commands(cli: Any) -> None:
    from lk_templates.cli import templates_group

    cli.add_command(templates_group)
