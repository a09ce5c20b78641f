"""Planning a run: every check on user input, before anything is created.

:func:`plan_run` turns a :class:`~lk_core.model.RunRequest` (after the
plugins' ``prepare_run``) into the container record to create and the
hypervisor that will run it, or raises a one-line error. Nothing is written
here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import attrs

from lk_core.disks import Disk
from lk_core.errors import HypervisorError, ImageFormatError, UsageError
from lk_core.hypervisor import Capability, Hypervisor, ProcessHypervisor, require
from lk_core.model import (
    DEFAULT_CPUS,
    DEFAULT_MEMORY_MB,
    Container,
    PortMapping,
    RunRequest,
    Status,
)
from lk_core.plugins import Plugins
from lk_core.timeutil import now_rfc3339

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


@attrs.frozen
class RunPlan:
    """A checked run: the record to create (no ID yet) and its hypervisor."""

    container: Container
    hypervisor: Hypervisor


def check_name(name: str) -> None:
    """Refuse a container name users could not type back (letters, digits, ``._-``)."""
    if name and not _NAME.match(name):
        raise UsageError(
            f"invalid name {name!r}: use letters, digits, '.', '_' or '-' "
            "(at most 63, starting with a letter or digit)"
        )


def choose_hypervisor(plugins: Plugins, name: str, fmt: str) -> Hypervisor:
    """The hypervisor asked for by ``name``, or the best available one for ``fmt``."""
    hv = plugins.get_hypervisor(name) if name else plugins.detect_hypervisor(fmt)
    availability = hv.availability()
    if not availability.available:
        raise HypervisorError(f"hypervisor {hv.name} is not available: {availability.reason}")
    if fmt not in hv.formats:
        supported = ", ".join(sorted(hv.formats))
        default = f"hypervisor {hv.name} cannot boot {fmt} images (it supports: {supported})"
        raise ImageFormatError(hv.explain_format(fmt) or default)
    return hv


def plan_run(plugins: Plugins, request: RunRequest, existing: Sequence[Container]) -> RunPlan:
    """Check everything about ``request`` against the ``existing`` containers.

    Raises before anything is created if the image, hypervisor, options,
    ports, volumes or name are wrong.
    """
    from lk_core.formats import resolve_image
    from lk_core.images import detect_image_format
    from lk_core.ports import check_ports_free, free_port
    from lk_core.ssh_keys import choose_ssh_key
    from lk_core.volumes import assign_tags

    options = request.options
    if not request.image:
        raise UsageError("lk run needs an IMAGE (see 'lk run --help')")
    image_path = resolve_image(request.image)
    fmt = detect_image_format(image_path, plugins)
    hv = choose_hypervisor(plugins, options.hypervisor, fmt)
    from lk_core.options import route_hypervisor_options

    hv_values = route_hypervisor_options(plugins.options(), options.hypervisor_options, hv.name)
    check_name(options.name)
    cpus = DEFAULT_CPUS if options.cpus is None else options.cpus
    memory = options.memory or DEFAULT_MEMORY_MB
    if cpus < 1:
        raise UsageError("--cpus must be at least 1")
    if isinstance(hv, ProcessHypervisor):  # a VM on this machine
        from lk_core.host import check_host_limits

        check_host_limits(memory, cpus)
    if options.ports:
        require(hv, Capability.PORTS)
    if options.volumes:
        require(hv, Capability.VOLUMES)
    if options.metadata and Capability.METADATA not in hv.capabilities:
        options = attrs.evolve(options, metadata=False)
    check_ports_free(options.ports)
    volumes = assign_tags(options.volumes)
    if options.name and any(options.name in (c.name, c.id) for c in existing):
        raise UsageError(
            f"the name {options.name!r} is already in use: choose another, "
            f"or remove the old container with 'lk rm {options.name}'"
        )
    active = [c for c in existing if c.is_active and not c.host]
    if options.ssh_port:
        if any(p.host_port == options.ssh_port and p.protocol == "tcp" for p in options.ports):
            raise UsageError(f"host port {options.ssh_port} is both --ssh-port and published")
        check_ports_free([PortMapping(options.ssh_port, 22)], flag="--ssh-port")
        ssh_port = options.ssh_port
    else:
        taken = {c.ssh_port for c in active} | {p.host_port for c in active for p in c.ports}
        taken |= {p.host_port for p in options.ports}
        ssh_port = free_port(avoid=taken)
    from lk_core.disks import plan_disks

    disks = plan_disks(hv, fmt, options, existing)
    _check_image_not_in_use(image_path, fmt, list(existing), disks)
    container = Container(
        id="",
        image=str(image_path),
        name=options.name,
        format=fmt,
        hypervisor=hv.name,
        status=Status.STARTING,
        started_at=now_rfc3339(),
        ports=list(options.ports),
        volumes=list(volumes),
        memory=memory,
        cpus=cpus,
        ssh_port=ssh_port,
        ssh_key=choose_ssh_key(options.ssh_key, options.metadata),
        auto_remove=options.auto_remove,
        plugin_options=_recorded_options(request, hv.name, hv_values),
        disks=disks,
    )
    return RunPlan(container, hv)


def _recorded_options(
    request: RunRequest, hypervisor: str, hv_values: dict[str, object]
) -> dict[str, dict[str, object]]:
    """Each plugin's option values, and the hypervisor's under its own name."""
    recorded = {owner: dict(values) for owner, values in request.plugin_options.items()}
    if hv_values:
        recorded[hypervisor] = dict(hv_values)
    return recorded


def _check_image_not_in_use(
    image: Path, fmt: str, records: list[Container], disks: Sequence[Disk] = ()
) -> None:
    """Refuse to share a disk image with a container that writes it in place.

    Containers on an overlay (a boot disk in ``disks``) only read the image:
    any number may share it, unless one active container runs it in place
    (``--in-place``, or a hypervisor without ``DISKS``).
    """
    from lk_core.disks import BOOT, writes_image_in_place
    from lk_core.formats import ISO, KERNEL_INITRD

    if fmt in (ISO, KERNEL_INITRD):
        return  # read-only media can be shared
    in_place = not any(d.role == BOOT for d in disks)
    users = [
        c.display_name
        for c in records
        if c.is_active and c.image == str(image) and (in_place or writes_image_in_place(c))
    ]
    if users:
        raise UsageError(
            f"disk image {image} is in use by container {users[0]}, and a container that "
            "runs its image in place (--in-place) writes it: stop it first"
        )
