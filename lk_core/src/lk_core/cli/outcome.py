"""What a command that acts on several containers reports when some of them fail."""

from __future__ import annotations

import click

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lk_core.errors import LkError


def report_errors(errors: list[LkError]) -> int:
    """Print one ``lk: error:`` line per error; return the highest exit code (0 if none)."""
    for error in errors:
        click.echo(f"lk: error: {error.message}", err=True)
    return max((error.exit_code for error in errors), default=0)
