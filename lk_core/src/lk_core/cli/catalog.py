"""The list of lk's commands with their help, cached so ``lk --help`` loads no plugin.

Every command, lk's own included, comes from a plugin (``register_commands``),
and loading them all costs most of ``lk --help``. Yet the list changes only
when the installed plugins change, when the plugin selection variables
(``LK_PLUGINS``, ``LK_DISABLE_PLUGINS``, ``LK_PLUGIN_MODULES``) change, or when
a file that defines a command or a plugin is edited. The cache is keyed by
exactly those: ``sys.path`` with its folders' modification times (as
:mod:`lk_core.entry_points` does), the variables, and the modification time of
each defining file. Checking it costs a few ``stat`` calls; on any difference
``lk --help`` loads the plugins as before and writes the cache again.

Only the root listing (``lk --help``, ``lk -h``) uses it; every other command
loads the plugins. A set of plugins where one failed to load is never cached,
so its warning is printed every time.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from lk_core.plugins import Plugins

CACHE_FILE = "commands.json"
#: Bump when the layout of the cache changes.
CACHE_FORMAT = 1
#: The variables that choose which plugins load.
SELECTION_VARIABLES = ("LK_PLUGINS", "LK_DISABLE_PLUGINS", "LK_PLUGIN_MODULES")


def cache_path() -> Path:
    """Where the cache lives: beside the entry-point cache."""
    from lk_core.entry_points import cache_path as entry_points_cache

    return entry_points_cache().with_name(CACHE_FILE)


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _key(files: list[str]) -> dict[str, Any]:
    from lk_core.entry_points import path_key

    return {
        "format": CACHE_FORMAT,
        "path": path_key(),
        "variables": {name: os.environ.get(name, "") for name in SELECTION_VARIABLES},
        "files": [[name, _mtime(name)] for name in files],
    }


def cached_commands(path: Path | None = None) -> list[dict[str, Any]] | None:
    """The commands recorded by :func:`save` if nothing they depend on changed, else None."""
    try:
        data = json.loads((path or cache_path()).read_text(encoding="utf-8"))
        files = [str(name) for name, _mtime in data["key"]["files"]]
        if data["key"] != _key(files):
            return None
        commands = data["commands"]
        if not isinstance(commands, list) or not commands:
            return None
        return [dict(entry) for entry in commands]
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _defining_file(command: click.Command) -> str | None:
    """The source file of the function behind ``command`` (None for built-in Click objects)."""
    target = command.callback or type(command)
    module = sys.modules.get(getattr(target, "__module__", "") or "")
    return getattr(module, "__file__", None)


def _plugin_files(plugins: Plugins) -> set[str]:
    files = set()
    for info in plugins.infos.values():
        module_file = getattr(sys.modules.get(info.module), "__file__", None)
        if module_file:
            files.add(module_file)
    return files


def save(group: click.Group, plugins: Plugins, path: Path | None = None) -> None:
    """Record ``group``'s visible commands, unless a plugin failed to load."""
    if plugins.failures:
        return
    files = _plugin_files(plugins)
    commands = []
    for name in sorted(group.commands):
        command = group.commands[name]
        if command.hidden:
            continue
        defined_in = _defining_file(command)
        if defined_in:
            files.add(defined_in)
        commands.append(
            {
                "name": name,
                "help": command.help,
                "short_help": command.short_help,
                "deprecated": command.deprecated,
            }
        )
    from lk_core.entry_points import write_cache

    write_cache(path or cache_path(), {"key": _key(sorted(files)), "commands": commands})


def listing_group(root: click.Group, commands: list[dict[str, Any]]) -> click.Group:
    """A copy of ``root`` whose subcommands are stand-ins that only know their help.

    Its ``--help`` prints what ``root`` with the real commands prints.
    """
    group = click.Group(
        name=root.name,
        help=root.help,
        params=list(root.params),
        context_settings=dict(root.context_settings),
    )
    for entry in commands:
        stand_in = click.Command(str(entry["name"]))
        stand_in.help = entry.get("help")
        stand_in.short_help = entry.get("short_help")
        stand_in.deprecated = entry.get("deprecated") or False
        group.add_command(stand_in)
    return group
