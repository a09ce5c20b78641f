"""The plugin is found through its entry point and registers a valid hypervisor."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

from lk_core.hypervisor import Hypervisor
from lk_core.plugins import new_plugins
from lk_hyperkit.hypervisor import HyperkitHypervisor


def test_entry_point_is_installed() -> None:
    found = {ep.name: ep for ep in entry_points(group="lk")}
    assert "hyperkit" in found
    assert found["hyperkit"].value == "lk_hyperkit.plugin"
    dist = found["hyperkit"].dist
    assert dist is not None and dist.metadata["Name"] == "lk-hyperkit"


def test_plugin_registers_the_hypervisor() -> None:
    module = entry_points(group="lk")["hyperkit"].load()
    (hv,) = module.register_hypervisors()
    assert isinstance(hv, HyperkitHypervisor)
    assert isinstance(hv, Hypervisor)
    assert hv.name == "hyperkit"
    assert hv.priority == 20
    assert hv.description


def test_lk_loads_it() -> None:
    plugins = new_plugins()
    assert not [f for f in plugins.failures if f.name == "hyperkit"]
    assert "register_hypervisors" in plugins.infos["hyperkit"].hooks
    assert isinstance(plugins.get_hypervisor("HyperKit"), HyperkitHypervisor)


def test_importing_the_plugin_is_cheap() -> None:
    code = (
        "import sys, lk_hyperkit.plugin\n"
        "heavy = [m for m in ('lk_hyperkit.hypervisor', 'lk_core.formats')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
