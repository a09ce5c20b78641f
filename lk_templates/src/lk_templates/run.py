"""``lk run --template``: render a template, build it with linuxkit, and pick VM defaults.

:func:`prepare_run` is lk-templates' ``prepare_run`` hook: it turns the
``--template``/``--var``/``--var-file`` values into the built image and the
memory and CPUs the template asks for. :func:`prune_builds` is its
``container_removed`` hook: cached builds no container uses are deleted.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
from lk_core.errors import UsageError

if TYPE_CHECKING:
    from pathlib import Path

    from lk_core.hypervisor import Hypervisor
    from lk_core.model import RunRequest
    from lk_core.plugins import Plugins

    from lk_templates.run_defaults import RunDefaults

__all__ = ["TemplateBuild", "build_template", "prepare_run", "prune_builds"]


@attrs.frozen
class TemplateBuild:
    """A template built into a bootable image, with the VM settings it asks for."""

    image: Path
    defaults: RunDefaults


def build_template(
    plugins: Plugins,
    hypervisor: Hypervisor,
    name: str,
    var_file: str | None = None,
    assignments: tuple[str, ...] | list[str] = (),
    progress: bool = False,
) -> TemplateBuild:
    """Render template ``name`` with its variables and build it for ``hypervisor``.

    The template is looked up once; its ``# lk:`` values are checked before
    linuxkit runs. The build is cached by its rendered content: an unchanged
    template is not rebuilt. The output format follows the hypervisor's
    ``preferred_formats``, else its ``formats``. With ``progress``, a build
    shows linuxkit's last output line on stderr when it is a terminal.
    """
    from lk_templates.linuxkit import build_image
    from lk_templates.registry import check_required_values, find_template
    from lk_templates.render import render_yaml
    from lk_templates.run_defaults import run_defaults
    from lk_templates.varfile import variables_from_cli

    info, content = find_template(plugins.template_sources(), name)
    if info.shadows:
        print(
            f"lk: note: template {name} comes from {info.source} ({info.path}), "
            f"not from {info.shadows}",
            file=sys.stderr,
        )
    variables = variables_from_cli(name, content, var_file, tuple(assignments))
    check_required_values(name, content, variables)
    rendered = render_yaml(content, variables, name=name)
    defaults = run_defaults(content, variables, name=name)
    image = build_image(
        rendered,
        frozenset(hypervisor.formats),
        preferred_formats=hypervisor.preferred_formats,
        progress=progress,
    )
    return TemplateBuild(image=image, defaults=defaults)


def prepare_run(plugins: Plugins, request: RunRequest, owner: str) -> RunRequest | None:
    """The run with the template built, when ``--template`` was given (values of ``owner``)."""
    values: Mapping[str, Any] = request.plugin_options.get(owner, {})
    template = str(values.get("template") or "")
    assignments = list(values.get("var") or ())
    var_file = str(values.get("var_file") or "")
    if not template:
        if assignments or var_file:
            raise UsageError("--var and --var-file need --template")
        return None
    if request.image:
        raise UsageError("give an IMAGE or --template NAME, not both")
    options = request.options
    hypervisor = (
        plugins.get_hypervisor(options.hypervisor)
        if options.hypervisor
        else plugins.detect_hypervisor()
    )
    built = build_template(
        plugins, hypervisor, template, var_file or None, assignments, options.progress
    )
    # None: not given, and lk's own default applies.
    memory = options.memory or built.defaults.get("memory")
    cpus = options.cpus if options.cpus is not None else built.defaults.get("cpus")
    return attrs.evolve(
        request,
        image=str(built.image),
        options=attrs.evolve(
            options, memory=memory, cpus=cpus, disks=_data_disks(options, built, hypervisor)
        ),
    )


def _data_disks(options: Any, built: TemplateBuild, hypervisor: Hypervisor) -> tuple[Any, ...]:
    """``--disk`` if given, else the data disk of the template's ``disk=`` / ``DATA_SIZE``.

    A hypervisor that cannot attach disks gets none from the template (the
    template then runs without its data disk, as before).
    """
    from lk_core.hypervisor import Capability

    size = built.defaults.get("disk_size")
    if options.disks or not size or Capability.DISKS not in hypervisor.capabilities:
        return tuple(options.disks)
    from lk_core.disks import DiskRequest, parse_disk_size

    return (DiskRequest(size=parse_disk_size(size)),)


def prune_builds(plugins: Plugins) -> list[Path]:
    """Delete cached builds no stored container uses any more; return what was deleted.

    Builds made in the last minute are kept (their container may not be
    recorded yet).
    """
    from lk_templates.linuxkit import default_build_cache_dir, prune_unused_builds

    if not default_build_cache_dir().is_dir():
        return []
    images = {container.image for container in plugins.store().all()}
    return prune_unused_builds(images, min_age=60.0)
