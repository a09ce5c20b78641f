"""Finding an image's format and the hypervisor to run it, through the plugins."""

from __future__ import annotations

from pathlib import Path

from lk_core.hypervisor import Hypervisor
from lk_core.plugins import Plugins, get_plugins


def detect_image_format(path: str | Path, plugins: Plugins | None = None) -> str:
    """The format of the image at ``path``, asking every detector plugin.

    Raises :class:`lk_core.errors.NotFoundError` if nothing is there and
    :class:`lk_core.errors.ImageFormatError` if no detector knows it (the
    message says what the file holds, e.g. "x.iso is not an ISO image: it is
    empty").
    """
    from lk_core.formats import require_format, resolve_image

    resolved = resolve_image(path)
    found = (plugins or get_plugins()).detect_image_format(resolved)
    return require_format(Path(path), found, examine=resolved)


def get_hypervisor(name: str, plugins: Plugins | None = None) -> Hypervisor:
    """The hypervisor called ``name`` (case-insensitive), available or not."""
    return (plugins or get_plugins()).get_hypervisor(name)


def detect_hypervisor(plugins: Plugins | None = None) -> Hypervisor:
    """The best hypervisor available on this machine."""
    return (plugins or get_plugins()).detect_hypervisor()
