"""lk-hyperkit: the Hyperkit hypervisor plugin for lk (macOS on Intel; deprecated upstream).

The plugin module is :mod:`lk_hyperkit.plugin` (entry point ``hyperkit`` in
group ``lk``); the hypervisor is :class:`lk_hyperkit.hypervisor.HyperkitHypervisor`.
Nothing is imported here, so that loading the plugin at every ``lk`` start-up
stays cheap.
"""

from __future__ import annotations
