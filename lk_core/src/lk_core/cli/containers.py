"""Container commands: run, ps, stop, logs, rm, inspect."""

from __future__ import annotations

import click

COMMANDS: tuple[click.Command, ...] = ()
