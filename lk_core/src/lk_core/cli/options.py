"""Options shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

_F = TypeVar("_F", bound=Callable[..., Any])


def format_options(function: _F) -> _F:
    """Add ``--format table|json`` and its alias ``--json`` to a listing command."""
    function = click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Same as --format json.",
    )(function)
    function = click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="Output format.",
    )(function)
    return function


def stop_timeout_option(function: _F) -> _F:
    """Add ``-t/--time SECONDS``: how long a graceful (ACPI) stop may take before forcing."""
    return click.option(
        "-t",
        "--time",
        "timeout",
        default=10.0,
        show_default=True,
        type=click.FloatRange(min=0),
        help="Seconds to wait for a graceful shutdown before forcing.",
    )(function)
