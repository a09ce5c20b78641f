"""``lk templates``: list, show, inspect and render LinuxKit YAML templates.

Added to ``lk`` by lk-templates' ``register_commands`` hook. Only click is
imported here; the template machinery (and PyYAML) is imported
when a command runs, so ``lk --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import click
from lk_core.cli.options import format_options

from lk_templates.completion import complete_templates


@click.group("templates")
def templates_group() -> None:
    """List, show and render LinuxKit YAML templates.

    \b
    Templates come from several sources; the first one (highest precedence)
    that has a name provides it: ./.lk/templates, the user templates folder,
    .core/linuxkit folders, then the templates built into lk-templates.

    \b
    Examples:
      lk templates list
      lk templates vars core-dev
      lk templates render core-dev --var SSH_KEY="$(cat ~/.ssh/id_ed25519.pub)"
      lk templates render server-php --var-file vars.env -o server.yml
    """


def _sources() -> list[Any]:
    """The installed plugins' template sources, highest precedence first."""
    from lk_core.plugins import get_plugins

    return get_plugins().template_sources()


def _note_shadowing(info: Any) -> None:
    """Say on standard error when the template used hides another of the same name."""
    if info.shadows:
        click.echo(
            f"lk: note: template {info.name} comes from {info.source} ({info.path}), "
            f"not from {info.shadows}",
            err=True,
        )


def _source_location(source: object) -> str:
    directory = getattr(source, "directory", None)
    if callable(directory):
        try:
            value = directory()
        except Exception:
            return ""
        return "" if value is None else str(value)
    return ""


@templates_group.command("list")
@format_options
def list_command(fmt: str, as_json: bool) -> None:
    """List every template, its source and description; shadowed ones are marked."""
    as_json = as_json or fmt == "json"
    from lk_core.errors import TemplateError

    from lk_templates.registry import NO_SOURCES, list_templates

    sources = _sources()
    if not sources:
        raise TemplateError(NO_SOURCES)
    infos = list_templates(sources, include_shadowed=True)
    if as_json:
        click.echo(json.dumps([info.to_dict() for info in infos], indent=2))
        return
    from lk_core.table import render_table

    if infos:
        rows = []
        for info in infos:
            origin = info.source + (f" (shadowed by {info.shadowed_by})" if info.shadowed else "")
            rows.append([info.name, origin, info.description])
        click.echo(render_table(["NAME", "SOURCE", "DESCRIPTION"], rows))
        click.echo("")
        # A template on disk that replaces a built-in one is worth a line of its own:
        # a cloned repository's .lk/templates/core-dev.yml is used instead of lk's.
        builtin = {i.name: i for i in infos if i.shadowed and i.source == "embedded"}
        for info in infos:
            if not info.shadowed and info.name in builtin:
                click.echo(
                    f"Note: {info.name} from {info.source} ({info.path}) replaces the "
                    f"built-in {info.name}."
                )
        if builtin:
            click.echo("")
    else:
        click.echo("No templates found.")
    click.echo("Sources, highest precedence first:")
    table = [[s.name, str(s.priority), _source_location(s)] for s in sources]
    for line in render_table(["SOURCE", "PRIORITY", "FOLDER"], table).splitlines():
        click.echo("  " + line)


@templates_group.command("show")
@click.argument("name", shell_complete=complete_templates)
def show_command(name: str) -> None:
    """Print the YAML text of template NAME (unrendered)."""
    from lk_templates.registry import find_template

    info, content = find_template(_sources(), name)
    _note_shadowing(info)
    click.echo(content, nl=not content.endswith("\n"))


@templates_group.command("vars")
@click.argument("name", shell_complete=complete_templates)
@format_options
def vars_command(name: str, fmt: str, as_json: bool) -> None:
    """List the variables of template NAME: required ones, and optional ones with defaults."""
    as_json = as_json or fmt == "json"
    from lk_core.templating import extract_variables

    from lk_templates.registry import find_template

    info, content = find_template(_sources(), name)
    _note_shadowing(info)
    required, optional = extract_variables(content)
    if as_json:
        document: dict[str, Any] = {
            "name": info.name,
            "source": info.source,
            "required": required,
            "optional": optional,
        }
        click.echo(json.dumps(document, indent=2))
        return
    if not required and not optional:
        click.echo(f"{name} has no variables.")
        return
    from lk_core.table import render_table

    rows = [[variable, "yes", ""] for variable in required]
    rows += [[variable, "no", default] for variable, default in optional.items()]
    click.echo(render_table(["VARIABLE", "REQUIRED", "DEFAULT"], rows))


@templates_group.command("render")
@click.argument("name", shell_complete=complete_templates)
@click.option(
    "--var",
    "assignments",
    multiple=True,
    metavar="NAME=VALUE",
    help="Set a variable (repeatable); wins over --var-file.",
)
@click.option(
    "--var-file",
    "var_file",
    metavar="FILE",
    help="Read variables: NAME=VALUE lines (# comments), or a .json/.yaml/.yml mapping; "
    "'-' reads NAME=VALUE lines from stdin.",
)
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    help="Write the YAML to FILE (atomically) instead of standard output.",
)
def render_command(
    name: str, assignments: tuple[str, ...], var_file: str | None, output: str | None
) -> None:
    """Render template NAME with its variables and print valid LinuxKit YAML.

    Values are escaped for the place they land in, so quotes, colons, '#' or
    line breaks in a value never change the document's structure.
    """
    from lk_templates.registry import check_required_values, find_template
    from lk_templates.render import render_yaml
    from lk_templates.run_defaults import run_defaults
    from lk_templates.varfile import variables_from_cli

    info, content = find_template(_sources(), name)
    _note_shadowing(info)
    variables = variables_from_cli(name, content, var_file, assignments)
    check_required_values(name, content, variables)
    rendered = render_yaml(content, variables, name=name)
    run_defaults(content, variables, name=name)  # '# lk:' values: refused now, not after a build
    if not rendered.endswith("\n"):
        rendered += "\n"
    if output is None:
        click.echo(rendered, nl=False)
        return
    _write_atomic(Path(output), rendered)


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file renamed into place."""
    import tempfile

    from lk_core.errors import LkError

    path = path.expanduser()
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as error:
        raise LkError(f"cannot write {path}: {error.strerror or error}") from error
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise LkError(f"cannot write {path}: {error.strerror or error}") from error
