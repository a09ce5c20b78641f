"""Test plugin: lk-hyperkit's real hypervisor with the platform forced to macOS.

Load with ``LK_PLUGIN_MODULES=hyperkit_on_darwin`` and
``LK_DISABLE_PLUGINS=hyperkit`` so this one replaces the installed plugin;
put a fake ``hyperkit`` first on PATH (or set LK_HYPERKIT).
"""

from __future__ import annotations

from lk_hyperkit.hypervisor import HyperkitHypervisor

from lk_core import hookimpl


@hookimpl
def register_hypervisors() -> list[HyperkitHypervisor]:
    return [HyperkitHypervisor(platform="darwin", machine="x86_64")]
