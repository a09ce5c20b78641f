"""The interface a template source implements.

A template source is a named place templates come from: lk-templates offers
``embedded``, ``user`` and ``workspace``; a plugin can add its own (a git
repository, a company catalogue...). Sources are consulted in order of
``priority`` (highest first): the first source that has a name provides it,
and the same name in a lower source is shown as shadowed.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from lk_core.model import Template


@runtime_checkable
class TemplateSource(Protocol):
    """A collection of LinuxKit YAML templates."""

    #: Short name shown by ``lk templates list`` (``embedded``, ``user``...).
    name: str
    #: Higher wins when two sources offer the same template name.
    priority: int

    def list_templates(self) -> list[Template]:
        """Every template this source offers, sorted by name."""
        ...

    def read_template(self, name: str) -> str | None:
        """The YAML text of template ``name``, or None if this source lacks it."""
        ...
