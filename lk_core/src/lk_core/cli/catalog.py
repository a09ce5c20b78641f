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

The cache also keeps the rendered text for each terminal width it was asked
for, so a cached ``lk --help`` imports neither Click nor any plugin; for a new
width it is rendered by Click from stand-in commands that know only their help.
Only the root listing (``lk --help``, ``lk -h``) uses it; every other command
loads the plugins. A set of plugins where one failed to load is never cached,
so its warning is printed every time.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing is not imported for a cached ``lk --help``
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    import click

    from lk_core.plugins import Plugins

CACHE_FILE = "commands.json"
#: Bump when the layout of the cache changes.
CACHE_FORMAT = 2
#: The most terminal widths whose text is kept.
MAX_WIDTHS = 8
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


def terminal_columns() -> int:
    """The terminal's width in columns, found as :func:`shutil.get_terminal_size` does.

    (Click renders help at that width; importing shutil here would cost more
    than a cached ``lk --help`` does in all.)
    """
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def _load(path: Path | None = None) -> dict[str, Any] | None:
    """The cache's content if nothing it depends on changed, else None."""
    from lk_core.cache_files import read_cache

    data = read_cache(path or cache_path())
    try:
        files = [str(name) for name, _mtime in data["key"]["files"]]
        if data["key"] != _key(files):
            return None
        commands, texts = data["commands"], data["texts"]
        if not isinstance(commands, list) or not commands or not isinstance(texts, dict):
            return None
        if not all(_well_formed(entry) for entry in commands):
            return None
        return dict(data)
    except (ValueError, TypeError, KeyError):
        return None


def _well_formed(entry: object) -> bool:
    """Whether ``entry`` is a command as :func:`save` writes it."""
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("name"), str)
        and all(isinstance(entry.get(k), (str, type(None))) for k in ("help", "short_help"))
        and isinstance(entry.get("deprecated", False), (bool, str))
    )


def cached_help(path: Path | None = None) -> str | None:
    """What ``lk --help`` prints, from the cache; None when the plugins must be loaded."""
    data = _load(path)
    if data is None:
        return None
    columns = str(terminal_columns())
    text = data["texts"].get(columns)
    if isinstance(text, str):
        return text
    from lk_core.cli.root import cli, help_text

    text = help_text(listing_group(cli, data["commands"]))
    texts = dict(list(data["texts"].items())[-(MAX_WIDTHS - 1) :])
    texts[columns] = text
    _write(path, {**data, "texts": texts})
    return text


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


def save(group: click.Group, plugins: Plugins, text: str, path: Path | None = None) -> None:
    """Record ``group``'s visible commands and its help ``text``, unless a plugin failed.

    ``text`` is what ``lk --help`` printed at the current terminal width.
    """
    from lk_core.cli.root import LkGroup

    if plugins.failures:
        return
    files = _plugin_files(plugins)
    root_file = _defining_file(group)  # the text holds the root group's own help and options
    if root_file:
        files.add(root_file)
    commands = []
    every = group.all_commands() if isinstance(group, LkGroup) else group.commands
    for name in sorted(every):
        command = every[name]
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
    texts = {str(terminal_columns()): text}
    _write(path, {"key": _key(sorted(files)), "commands": commands, "texts": texts})


def _write(path: Path | None, data: dict[str, Any]) -> None:
    from lk_core.cache_files import write_cache

    write_cache(path or cache_path(), data)


def listing_group(root: click.Group, commands: list[dict[str, Any]]) -> click.Group:
    """A copy of ``root`` whose subcommands are stand-ins that only know their help.

    Its ``--help`` prints what ``root`` with the real commands prints.
    """
    import click

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
