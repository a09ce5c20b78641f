"""``lk run --template``: render a template, build it with linuxkit, and pick VM defaults."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import attrs

from lk_core.plugins import Plugins


@attrs.frozen
class TemplateImage:
    """A template built into a bootable image, with the VM sizes it asks for."""

    image: Path
    memory: int | None
    cpus: int | None


def build_template_image(
    plugins: Plugins,
    name: str,
    variables: Mapping[str, str],
    hypervisor: str = "",
) -> TemplateImage:
    """Render template ``name`` with ``variables`` and build it for the chosen hypervisor.

    The build is cached by its rendered content: an unchanged template is not
    rebuilt. Hyperkit gets LinuxKit's kernel+initrd output (it cannot boot a
    BIOS ISO); other hypervisors get a BIOS ISO when they can boot one.
    """
    from lk_core.linuxkit import build_image, template_run_defaults
    from lk_core.templates import apply_template

    hv = plugins.get_hypervisor(hypervisor) if hypervisor else plugins.detect_hypervisor()
    rendered = apply_template(name, variables)
    output = "kernel+initrd" if hv.name == "hyperkit" else None
    image = build_image(rendered, hv.formats, output_format=output)
    defaults = template_run_defaults(name, variables)
    return TemplateImage(image=image, memory=defaults.get("memory"), cpus=defaults.get("cpus"))


def template_variables_from_cli(
    name: str, var_file: str, assignments: tuple[str, ...]
) -> dict[str, str]:
    """Variables from ``--var-file`` then ``--var K=V`` on top (a ``--var`` wins).

    A ``--var`` the template does not use is refused (a var file may be shared
    by several templates, so its extra names are allowed).
    """
    from lk_core.templates import check_known_variables, load_var_file
    from lk_core.templating import parse_assignments

    variables: dict[str, str] = dict(load_var_file(var_file)) if var_file else {}
    given = parse_assignments(assignments)
    check_known_variables(name, given)
    variables.update(given)
    return variables
