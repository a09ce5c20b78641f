"""Shell completion of template names (``lk templates show <TAB>``).

Quick and never failing: any error gives no candidates. Only click is
imported at module level (``click.shell_completion`` when completing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import click
    from click.shell_completion import CompletionItem

__all__ = ["complete_templates"]


def complete_templates(
    _ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """``shell_complete=`` for template NAME arguments: names from every template source."""
    from click.shell_completion import CompletionItem

    try:
        from lk_core.plugins import get_plugins

        from lk_templates.registry import list_templates

        infos = list_templates(get_plugins().template_sources())
    except Exception:
        return []
    return [
        CompletionItem(info.name, help=info.description or None)
        for info in infos
        if info.name.startswith(incomplete)
    ]
