"""Helpers shared by the lk_qemu tests: building options and reading QEMU option strings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lk_core.model import HypervisorOptions


def make_options(**overrides: Any) -> HypervisorOptions:
    """HypervisorOptions for an ISO with short absolute paths, overridable per field."""
    fields: dict[str, Any] = {
        "id": "abcd1234",
        "image": Path("/images/test.iso"),
        "format": "iso",
        "console_log": Path("/lk/logs/abcd1234.log"),
        "runtime_dir": Path("/lk/run/abcd1234"),
    }
    fields.update(overrides)
    return HypervisorOptions(**fields)


def split_option(value: str) -> list[str]:
    """Split a QEMU option string on single commas; a doubled comma is a literal comma."""
    parts: list[str] = []
    current: list[str] = []
    index = 0
    while index < len(value):
        char = value[index]
        if char == ",":
            if value[index + 1 : index + 2] == ",":
                current.append(",")
                index += 2
                continue
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    parts.append("".join(current))
    return parts


def parse_option(value: str) -> dict[str, str]:
    """Parse ``a,k=v,k2=v2`` into a dict; a bare first part is stored under ``""``."""
    result: dict[str, str] = {}
    for part in split_option(value):
        key, sep, val = part.partition("=")
        if sep:
            assert key not in result, f"duplicate key {key!r} in {value!r}"
            result[key] = val
        else:
            result.setdefault("", part)
    return result


def values_of(argv: list[str], flag: str) -> list[str]:
    """Every value that follows ``flag`` in ``argv``."""
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == flag]


def pairs(argv: list[str]) -> list[tuple[str, str]]:
    """The argv after the binary as (flag, value) pairs; flags without a value get ``""``."""
    no_value = {"-nodefaults", "-no-user-config"}
    result: list[tuple[str, str]] = []
    index = 1
    while index < len(argv):
        flag = argv[index]
        if flag in no_value:
            result.append((flag, ""))
            index += 1
        else:
            result.append((flag, argv[index + 1]))
            index += 2
    return result
