"""``lk templates``: list, show, inspect and render LinuxKit YAML templates.

Only click is imported here; the template machinery (and PyYAML) is imported
when a command runs, so ``lk --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import click

from lk_core.cli.completion import complete_templates
from lk_core.cli.options import format_options


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
    from lk_core.templates import list_templates, template_sources

    sources = template_sources()
    if not sources:
        raise TemplateError(
            "no template sources are installed: install lk-templates (pip install lk-templates)"
        )
    infos = list_templates(include_shadowed=True, sources=sources)
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
    from lk_core.templates import get_template

    content = get_template(name)
    click.echo(content, nl=not content.endswith("\n"))


@templates_group.command("vars")
@click.argument("name", shell_complete=complete_templates)
@format_options
def vars_command(name: str, fmt: str, as_json: bool) -> None:
    """List the variables of template NAME: required ones, and optional ones with defaults."""
    as_json = as_json or fmt == "json"
    from lk_core.templates import find_template
    from lk_core.templating import extract_variables

    info, content = find_template(name)
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
    from lk_core.templates import apply_template, check_known_variables, load_var_file
    from lk_core.templating import parse_assignments

    variables: dict[str, str] = {}
    if var_file is not None:
        variables.update(load_var_file(var_file))
    given = parse_assignments(assignments)
    check_known_variables(name, given)
    variables.update(given)
    rendered = apply_template(name, variables)
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


COMMANDS: tuple[click.Command, ...] = (templates_group,)
