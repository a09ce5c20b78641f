"""The plugin module lk loads through the entry point ``example`` (group ``lk``).

lk imports this module on every start, so it stays small: the hook functions
import the real work when they are called.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lk_core import hookimpl

if TYPE_CHECKING:
    import click
    from lk_core.hypervisor import Hypervisor
    from lk_core.template_source import TemplateSource


@hookimpl
def register_hypervisors() -> list[Hypervisor]:
    """Contribute the ``example`` hypervisor."""
    from lk_example_hypervisor.hypervisor import ExampleHypervisor

    return [ExampleHypervisor()]


@hookimpl
def detect_image_format(path: Path) -> str | None:
    """Name ``example`` images (text files starting with ``#!lk-example``); pass on others."""
    from lk_example_hypervisor.hypervisor import EXAMPLE_FORMAT, EXAMPLE_MAGIC

    try:
        with open(path, "rb") as handle:
            head = handle.read(len(EXAMPLE_MAGIC))
    except OSError:  # not a file (e.g. a kernel+initrd prefix): let others decide
        return None
    return EXAMPLE_FORMAT if head == EXAMPLE_MAGIC else None


@hookimpl
def register_template_sources() -> list[TemplateSource]:
    """Contribute the ``example`` template source."""
    from lk_example_hypervisor.templates import ExampleTemplates

    return [ExampleTemplates()]


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add ``lk example-status``."""
    from lk_example_hypervisor.commands import example_status

    cli.add_command(example_status)
