"""The lk plugin (entry point ``templates``): registers the template sources.

Kept tiny: it is imported by every ``lk`` command.
"""

from __future__ import annotations

from lk_core.template_source import TemplateSource

from lk_core import hookimpl


@hookimpl(trylast=True)
def register_template_sources() -> list[TemplateSource]:
    """Return lk's own template sources, highest priority first."""
    from lk_templates.sources import default_sources

    return default_sources()
