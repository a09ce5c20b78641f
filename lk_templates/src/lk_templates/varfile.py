"""Template variables from the command line: ``--var NAME=VALUE`` and ``--var-file FILE``."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from lk_core.assignments import is_variable_name, parse_assignment
from lk_core.errors import TemplateError

__all__ = ["load_var_file", "parse_var_file", "variables_from_cli"]

_MAPPING_SUFFIXES = (".json", ".yaml", ".yml")


def parse_var_file(
    text: str, mapping: bool = False, *, origin: str = "variables file"
) -> dict[str, str]:
    """Parse the text of a ``--var-file`` into ``{NAME: VALUE}``.

    Two formats:

    * ``mapping=False``: one ``NAME=VALUE`` per line; the value is the rest of
      the line, verbatim (no quote removal, no escapes; a trailing ``\\r`` is
      dropped). Blank lines and lines whose first non-blank character is
      ``#`` are skipped. A line without ``=`` is an error.
    * ``mapping=True``: a YAML or JSON mapping of names to scalars. Every
      value is read as the text written (``MEMORY: 0600`` gives ``"0600"``,
      ``ON: yes`` gives ``"yes"``); a multi-line string is a block scalar or
      a quoted string with ``\\n``. Lists and mappings as values are errors.

    Names must match ``[A-Za-z_][A-Za-z0-9_]*``. Raises :class:`TemplateError`
    naming ``origin`` and the line.
    """
    result: dict[str, str] = {}
    if not mapping:
        for number, raw in enumerate(text.split("\n"), start=1):
            line = raw[:-1] if raw.endswith("\r") else raw
            stripped = line.lstrip()
            if not stripped or stripped.startswith("#"):
                continue
            name, value = parse_assignment(stripped, f"{origin}, line {number}", TemplateError)
            result[name] = value
        return result
    import yaml

    try:
        loaded = yaml.load(text, Loader=yaml.BaseLoader)  # BaseLoader: all scalars stay text
    except yaml.YAMLError as error:
        from lk_templates.render import yaml_error_location, yaml_problem

        location = yaml_error_location(error)
        where = f", line {location[0]}, column {location[1]}" if location else ""
        raise TemplateError(f"{origin}{where}: {yaml_problem(error)}") from None
    if loaded is None or loaded == "":
        return result
    if not isinstance(loaded, dict):
        raise TemplateError(f"{origin}: expected a mapping of NAME: VALUE")
    for name, value in loaded.items():
        if not isinstance(name, str) or not is_variable_name(name):
            raise TemplateError(
                f"{origin}: invalid variable name {name!r} "
                "(names must match [A-Za-z_][A-Za-z0-9_]*)"
            )
        if not isinstance(value, str):
            raise TemplateError(
                f"{origin}: the value of {name} must be text, not a list or mapping"
            )
        result[name] = value
    return result


def load_var_file(path: str | Path) -> dict[str, str]:
    """Read a ``--var-file`` into ``{NAME: VALUE}``.

    ``.json``, ``.yaml`` and ``.yml`` files are mappings, anything else is
    ``NAME=VALUE`` lines; ``-`` reads ``NAME=VALUE`` lines from standard input. See
    :func:`parse_var_file`. Raises :class:`TemplateError` for an unreadable
    or malformed file.
    """
    if str(path) == "-":
        import sys

        return parse_var_file(sys.stdin.read(), origin="standard input")
    file = Path(path).expanduser()
    try:
        text = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise TemplateError(f"variables file {path} is not UTF-8 text") from None
    except OSError as error:
        raise TemplateError(
            f"cannot read variables file {path}: {error.strerror or error}"
        ) from None
    mapping = file.suffix.lower() in _MAPPING_SUFFIXES
    return parse_var_file(text, mapping, origin=f"variables file {path}")


def variables_from_cli(
    name: str, content: str, var_file: str | None, assignments: Iterable[str]
) -> dict[str, str]:
    """Variables from ``--var-file`` then ``--var K=V`` on top (a ``--var`` wins).

    A ``--var`` template ``name`` (text ``content``) does not use is refused
    (a var file may be shared by several templates, so its extra names are
    allowed).
    """
    from lk_core.templating import parse_assignments

    from lk_templates.registry import check_known_variables

    variables: dict[str, str] = dict(load_var_file(var_file)) if var_file else {}
    given = parse_assignments(assignments)
    check_known_variables(name, content, given)
    variables.update(given)
    return variables
