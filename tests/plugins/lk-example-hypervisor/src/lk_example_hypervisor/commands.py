"""``lk example-status REF``: ask an example VM how it is doing, through its control socket."""

from __future__ import annotations

import click
from lk_core.cli.completion import complete_active_refs


# --8<-- [start:command]
@click.command("example-status")
@click.argument("ref", shell_complete=complete_active_refs)
def example_status(ref: str) -> None:
    """Ask the example VM REF for its status (it answers over its control socket)."""
    from lk_core.errors import ContainerStateError, HypervisorError
    from lk_core.manager import Manager
    from lk_core.paths import runtime_dir

    from lk_example_hypervisor.hypervisor import send_control

    container = Manager().get(ref)  # an ID, a name or a unique prefix; raises if unknown
    if container.hypervisor != "example":
        raise ContainerStateError(f"{container.display_name} runs on {container.hypervisor}")
    try:
        answer = send_control(runtime_dir(container.id), "status")
    except OSError as exc:
        raise HypervisorError(f"{container.display_name} does not answer: {exc}") from exc
    click.echo(f"{container.display_name}: {answer}")


# --8<-- [end:command]
