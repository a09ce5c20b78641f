"""The VM settings a template asks for: ``# lk:`` lines and MEMORY / CPUS / DATA_SIZE."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TypedDict

from lk_core.errors import MissingVariablesError, UsageError
from lk_core.templating import extract_variables

__all__ = ["DIRECTIVE_RE", "RunDefaults", "run_defaults", "template_defaults"]


class RunDefaults(TypedDict, total=False):
    """VM settings a template asks for (only the keys it defines are present)."""

    #: Memory in MB.
    memory: int
    #: Number of virtual CPUs.
    cpus: int
    #: Size of the data disk the template formats and mounts (e.g. ``"10G"``).
    disk_size: str


#: A ``# lk: key=value ...`` line.
DIRECTIVE_RE = re.compile(r"#\s*lk:\s*(?P<body>.*)$")
_DISK_SIZE_RE = re.compile(r"\d+(?:\.\d+)?\s*(?:[KMGTkmgt](?:i?[Bb])?)?")
#: Directive key -> (RunDefaults key, fallback variable).
_RUN_KEYS = {
    "memory": ("memory", "MEMORY"),
    "cpus": ("cpus", "CPUS"),
    "disk": ("disk_size", "DATA_SIZE"),
}


def _run_value(key: str, value: str, name: str, origin: str) -> int | str:
    value = value.strip()
    if key == "memory":
        from lk_core.units import parse_memory

        try:
            return parse_memory(value)
        except UsageError as error:
            raise UsageError(f"template {name!r}: {origin}: {error}") from None
    if key == "cpus":
        if not value.isdigit() or not 1 <= int(value) <= 1024:
            raise UsageError(
                f"template {name!r}: {origin}: invalid CPU count {value!r} (expected 1-1024)"
            )
        return int(value)
    if not _DISK_SIZE_RE.fullmatch(value):
        raise UsageError(
            f"template {name!r}: {origin}: invalid disk size {value!r} (e.g. 10G, 512M)"
        )
    return value


def run_defaults(
    content: str, variables: Mapping[str, str], *, name: str = "template"
) -> RunDefaults:
    """Return the VM settings template ``content`` asks for, given ``variables``.

    Two mechanisms, the first that says something wins for each setting:

    1. ``# lk: memory=2048 cpus=2 disk=10G`` comment lines (at column 0,
       anywhere in the template; variables in them are substituted, e.g.
       ``# lk: memory=${MEMORY:-2048}``). Unknown keys are ignored.
    2. The variables ``MEMORY``, ``CPUS`` and ``DATA_SIZE``: the given value,
       else the template's default, if the template uses the variable.

    Memory accepts MB or a K/M/G/T suffix and is returned in MB. Raises
    :class:`UsageError` for a value that is not a size / CPU count.
    """
    content = content.replace("\r\n", "\n")
    found: dict[str, int | str] = {}
    for line in content.split("\n"):
        match = DIRECTIVE_RE.match(line)
        if not match:
            continue
        from lk_core.templating import apply_variables

        body = apply_variables(match.group("body"), variables)
        for item in body.split():
            key, sep, value = item.partition("=")
            if not sep or key not in _RUN_KEYS or _RUN_KEYS[key][0] in found:
                continue
            target = _RUN_KEYS[key][0]
            found[target] = _run_value(key, value, name, f"'# lk: {key}='")
    required, optional = extract_variables(content)
    for key, (target, variable) in _RUN_KEYS.items():
        if target in found:
            continue
        if variable in variables and (variable in required or variable in optional):
            found[target] = _run_value(key, variables[variable], name, variable)
        elif variable in optional:
            found[target] = _run_value(key, optional[variable], name, f"default of {variable}")
    result = RunDefaults()
    if "memory" in found:
        result["memory"] = int(found["memory"])
    if "cpus" in found:
        result["cpus"] = int(found["cpus"])
    if "disk_size" in found:
        result["disk_size"] = str(found["disk_size"])
    return result


def template_defaults(content: str, *, name: str = "template") -> RunDefaults:
    """Return the VM settings template ``content`` asks for when no variable is given.

    See :func:`run_defaults`; directives that need a required variable are
    skipped.
    """
    try:
        return run_defaults(content, {}, name=name)
    except MissingVariablesError:
        kept = "\n".join(
            line
            for line in content.replace("\r\n", "\n").split("\n")
            if not (DIRECTIVE_RE.match(line) and extract_variables(line)[0])
        )
        return run_defaults(kept, {}, name=name)
