"""The lk plugin (entry point ``templates``): registers the template sources.

Kept tiny: it is imported by every ``lk`` command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lk_core import hookimpl

if TYPE_CHECKING:
    from lk_core.template_source import TemplateSource


@hookimpl(trylast=True)
def register_template_sources() -> list[TemplateSource]:
    """Return lk's own template sources, highest priority first."""
    from lk_templates.sources import default_sources

    return default_sources()
