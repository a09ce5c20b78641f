"""Generate the CLI reference (docs/reference/cli.md) from lk's Click commands.

:func:`build_group` assembles ``lk`` the way the real program does
(:func:`lk_core.cli.build_cli`), with the plugins of lk's own distributions
only, so a third-party plugin installed in the docs environment does not leak
into the reference. :func:`render` walks every command and group and writes
its usage, help and options as Markdown. The mkdocs hook ``lk_docs.py`` calls
both on every build, so the page never goes stale and is never committed.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import re
from collections.abc import Iterator

import click

#: The entry points of lk's own distributions (lk-core, lk-qemu, lk-hyperkit, lk-templates).
REPOSITORY_PLUGINS = (
    "json-state",
    "image-formats",
    "core-commands",
    "qemu",
    "hyperkit",
    "templates",
)
_PLUGIN_VARIABLES = ("LK_PLUGINS", "LK_DISABLE_PLUGINS", "LK_PLUGIN_MODULES")


@contextlib.contextmanager
def _repository_plugins_only() -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in _PLUGIN_VARIABLES}
    for name in _PLUGIN_VARIABLES:
        os.environ.pop(name, None)
    os.environ["LK_PLUGINS"] = ",".join(REPOSITORY_PLUGINS)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def build_group() -> click.Group:
    """``lk``'s root group with every command of lk-core and this repository's plugins."""
    from lk_core.cli import build_cli
    from lk_core.plugins import new_plugins, set_plugins

    with _repository_plugins_only():
        plugins = new_plugins()
    if plugins.failures:
        failed = ", ".join(f"{f.name} ({f.error})" for f in plugins.failures)
        raise RuntimeError(f"plugins failed to load while generating the CLI reference: {failed}")
    set_plugins(plugins)
    try:
        return build_cli(all_options=True)
    finally:
        set_plugins(None)


def _escape(text: str) -> str:
    """Make plain help text safe as Markdown (no accidental emphasis, links or HTML)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;")
    return re.sub(r"([\\`*_\[\]])", r"\\\1", text)


def help_markdown(text: str) -> str:
    """Click help text as Markdown: paragraphs, and ``\\b`` blocks kept verbatim."""
    text = inspect.cleandoc(text.split("\f", 1)[0])
    parts = []
    for paragraph in re.split(r"\n\s*\n", text):
        if paragraph.startswith("\b"):
            parts.append("```text\n" + paragraph[1:].strip("\n") + "\n```")
        elif paragraph.strip():
            parts.append(_escape(" ".join(paragraph.split())))
    return "\n\n".join(parts)


def _context(command: click.Command, name: str, parent: click.Context | None) -> click.Context:
    """The context Click would make for ``command`` (with its context_settings)."""
    return click.Context(command, info_name=name, parent=parent, **command.context_settings)


def _anchor(path: str) -> str:
    return path.replace(" ", "-")


def _option_lines(command: click.Command, ctx: click.Context) -> list[str]:
    lines = []
    for param in command.get_params(ctx):
        if not isinstance(param, click.Option) or param.hidden:
            continue
        if set(param.opts) & set(ctx.help_option_names):
            continue  # every command has -h/--help; the page says so once
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, help_text = record
        lines.append(f"- `{names}`" + (f": {_escape(help_text)}" if help_text else ""))
    return lines


def _commands(group: click.Group, ctx: click.Context) -> list[tuple[str, click.Command]]:
    found = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is not None and not command.hidden:
            found.append((name, command))
    return found


def _section(
    command: click.Command, ctx: click.Context, level: int, subcommands_too: bool = True
) -> list[str]:
    path = ctx.command_path
    usage = f"{path} {' '.join(command.collect_usage_pieces(ctx))}".strip()
    lines = [f"{'#' * level} {path} {{#{_anchor(path)}}}", "", "```text", usage, "```", ""]
    if command.help:
        lines += [help_markdown(command.help), ""]
    options = _option_lines(command, ctx)
    if options:
        lines += ["**Options**", "", *options, ""]
    if isinstance(command, click.Group) and subcommands_too:
        subcommands = _commands(command, ctx)
        if subcommands:
            lines += ["**Commands**", ""]
            for name, sub in subcommands:
                sub_path = f"{path} {name}"
                short = _escape(sub.get_short_help_str(limit=100))
                lines.append(f"- [`{sub_path}`](#{_anchor(sub_path)}): {short}")
            lines.append("")
        for name, sub in subcommands:
            with _context(sub, name, ctx) as sub_ctx:
                lines += _section(sub, sub_ctx, min(level + 1, 6))
    return lines


def render(group: click.Group, prog_name: str = "lk") -> str:
    """The whole CLI reference page for ``group``, as Markdown."""
    lines = [
        "# CLI reference",
        "",
        "<!-- Generated at build time by docs/_hooks/cli_reference.py from the Click commands."
        " Do not edit. -->",
        "",
        f"Every command of `{prog_name}` with its usage, help and options, generated from the"
        " commands themselves when this site is built (lk-core and the plugins in lk's"
        " repository). `lk COMMAND --help` prints the same; every command also takes"
        " `-h`/`--help`. Commands that plugins add appear in `lk --help` once the plugin"
        " is installed.",
        "",
    ]
    with _context(group, prog_name, None) as ctx:
        lines += ["| Command | What it does |", "|---|---|"]
        for name, command in _commands(group, ctx):
            path = f"{prog_name} {name}"
            short = _escape(command.get_short_help_str(limit=120)).replace("|", "\\|")
            lines.append(f"| [`{path}`](#{_anchor(path)}) | {short} |")
        lines.append("")
        lines += _section(group, ctx, 2, subcommands_too=False)  # the table lists them
        for name, command in _commands(group, ctx):
            with _context(command, name, ctx) as sub_ctx:
                lines += _section(command, sub_ctx, 2)
    return "\n".join(lines).rstrip() + "\n"
