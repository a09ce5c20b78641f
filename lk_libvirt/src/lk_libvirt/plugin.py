"""The lk plugin entry point (``lk`` group, name ``libvirt``).

Contributes the ``libvirt`` hypervisor, ``lk host add|ls|rm`` and the
``prepare_run`` rule that ``--host NAME`` (or ``$LK_HOST``) means
``--hypervisor libvirt``. Importing it imports neither ``libvirt`` nor
``paramiko``: ``lk --help`` and ``lk ps`` without libvirt hosts pay nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lk_core.hookspecs import hookimpl

#: The hypervisor's name (``--hypervisor libvirt``); kept here so that loading the
#: plugin does not import the hypervisor module.
HYPERVISOR_NAME = "libvirt"

if TYPE_CHECKING:
    import click
    from lk_core.hypervisor import Hypervisor
    from lk_core.model import RunRequest
    from lk_core.plugins import Plugins


@hookimpl
def register_hypervisors() -> list[Hypervisor]:
    """Contribute :class:`~lk_libvirt.hypervisor.LibvirtHypervisor`."""
    from lk_libvirt.hypervisor import LibvirtHypervisor

    return [LibvirtHypervisor()]


@hookimpl
def prepare_run(plugins: Plugins, request: RunRequest) -> RunRequest | None:
    """``--host NAME`` implies ``--hypervisor libvirt``; refuse it with another hypervisor."""
    host = request.options.hypervisor_options.get("host")
    if not host:
        return None
    import attrs
    from lk_core.errors import UsageError

    named = request.options.hypervisor.lower()
    if named == HYPERVISOR_NAME:
        return None
    if named:
        raise UsageError(
            f"--host {host} runs on a libvirt host: it cannot be combined with "
            f"--hypervisor {request.options.hypervisor} (unset LK_HOST if it came from there)"
        )
    return attrs.evolve(request, options=attrs.evolve(request.options, hypervisor=HYPERVISOR_NAME))


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add ``lk host`` (imported when used)."""
    from lk_core.cli.root import add_lazy_command

    add_lazy_command(cli, "host", "lk_libvirt.cli:host_group")
