"""Shell completion: container references and hypervisor names; ``lk completion``.

Click drives completion: the shell runs ``lk`` with ``_LK_COMPLETE`` set
(``bash_complete``, ``zsh_complete``, ``fish_complete``) and the words typed so
far; Click finds the parameter being completed and calls its
``shell_complete=`` function from this module. ``lk completion SHELL`` prints
the script that wires this up (the same as ``_LK_COMPLETE=SHELL_source lk``).

Completing must be quick and must never fail: the functions here read the
state store as it is (no liveness checks, no processes signalled, nothing
written), swallow every error, and return nothing rather than a traceback in
the middle of the user's command line. Only click is imported at module level
(``click.shell_completion`` only when completing).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

    from lk_core.model import Container

#: The shells ``lk completion`` knows (Click's own completion classes).
SHELLS = ("bash", "zsh", "fish")
#: Statuses (as stored, without liveness checks) of containers that may be running.
_ACTIVE = frozenset({"starting", "running", "broken"})


def _records() -> list[Container]:
    """Every stored container record, oldest first; [] if the store cannot be read."""
    try:
        from lk_core.paths import default_state_path
        from lk_core.plugins import get_plugins

        records = get_plugins().state_store(default_state_path()).load()
    except Exception:
        return []
    return sorted(records.values(), key=lambda c: (c.started_at, c.id))


def _describe(container: Container) -> str:
    """Help shown next to a candidate (zsh and fish show it): status and image."""
    image = os.path.basename(container.image) if container.image else ""
    return " ".join(part for part in (str(container.status), image) if part)


def ref_candidates(incomplete: str, active_only: bool = False) -> list[CompletionItem]:
    """Container names and IDs that start with ``incomplete``.

    With nothing typed yet, each container is offered once (its name, or its
    ID if it has none); once something is typed, names and IDs that start
    with it are both offered. ``active_only`` keeps the containers stored as
    starting or running (for ``stop``, ``exec``, ``shell``, ``wait``).
    """
    from click.shell_completion import CompletionItem

    items: list[CompletionItem] = []
    seen: set[str] = set()
    for container in _records():
        if active_only and str(container.status) not in _ACTIVE:
            continue
        help_text = _describe(container)
        values = [container.name] if container.name else []
        if incomplete or not container.name:
            values.append(container.id)
        for value in values:
            if value and value.startswith(incomplete) and value not in seen:
                seen.add(value)
                items.append(CompletionItem(value, help=help_text))
    return items


def complete_refs(
    _ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """``shell_complete=`` for REF arguments that accept any container (logs, rm, inspect)."""
    return ref_candidates(incomplete)


def complete_active_refs(
    _ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """``shell_complete=`` for REF arguments that need a running container (stop, exec...)."""
    return ref_candidates(incomplete, active_only=True)


def _is_remote(spec: str) -> bool:
    """True for ``REF:PATH`` (what ``lk cp`` takes for the container side)."""
    ref, sep, _path = spec.partition(":")
    return bool(sep and ref and "/" not in ref)


def complete_cp_path(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """``shell_complete=`` for ``lk cp`` arguments: ``REF:`` prefixes, or local files.

    Exactly one side of ``lk cp`` is ``REF:PATH``: once the source is remote
    the destination completes as a local file, and once it is local the
    destination completes as ``NAME:``. Something that already looks like a
    local path (``./x``, ``/x``, ``~``) completes as a file; ``REF:PATH`` is
    left alone (the remote side is not listed). Otherwise running containers
    are offered as ``NAME:`` and the shell's file completion is asked for too
    (bash uses it only when no container matches).
    """
    from click.shell_completion import CompletionItem

    source = ctx.params.get("source") if param.name == "destination" else None
    if isinstance(source, str) and source:
        if _is_remote(source):
            return [CompletionItem(incomplete, type="file")]
        offer_files = False
    else:
        offer_files = True
    if incomplete.startswith((".", "/", "~")):
        return [CompletionItem(incomplete, type="file")] if offer_files else []
    if _is_remote(incomplete):
        return []
    items = [CompletionItem(incomplete, type="file")] if offer_files else []
    for item in ref_candidates(incomplete, active_only=True):
        items.append(CompletionItem(f"{item.value}:", help=item.help))
    return items


def complete_hypervisors(
    _ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """``shell_complete=`` for ``--hypervisor``: names from the loaded plugins."""
    from click.shell_completion import CompletionItem

    try:
        from lk_core.plugins import get_plugins

        hypervisors = get_plugins().hypervisors()
    except Exception:
        return []
    wanted = incomplete.lower()
    return [
        CompletionItem(name, help=getattr(hv, "description", "") or None)
        for name, hv in sorted(hypervisors.items())
        if name.startswith(wanted)
    ]


def completion_script(shell: str, prog_name: str = "lk") -> str:
    """The script that enables completion of ``prog_name`` in ``shell`` (bash, zsh, fish)."""
    from click.shell_completion import get_completion_class

    from lk_core.cli import cli

    complete_class = get_completion_class(shell)
    if complete_class is None:
        raise click.BadParameter(f"unsupported shell {shell!r}; choose from {', '.join(SHELLS)}")
    complete_var = f"_{prog_name.replace('-', '_').replace('.', '_')}_COMPLETE".upper()
    return complete_class(cli, {}, prog_name, complete_var).source()


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion_command(shell: str) -> None:
    """Print the script that enables tab completion for SHELL.

    \b
    bash:  eval "$(lk completion bash)"            (in ~/.bashrc)
    zsh:   eval "$(lk completion zsh)"             (in ~/.zshrc, after compinit)
    fish:  lk completion fish > ~/.config/fish/completions/lk.fish

    Container names and IDs and hypervisor names complete (plugins add more,
    such as lk-templates' template names).
    """
    click.echo(completion_script(shell), nl=False)
