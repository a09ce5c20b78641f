"""Templates honour ``disk=`` / ``DATA_SIZE``: prepare_run adds a data disk (issue 12)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest
from lk_core.disks import DiskRequest
from lk_core.hypervisor import Capability, Hypervisor
from lk_core.model import Availability, RunOptions, RunRequest
from lk_core.plugins import Plugins, new_plugins

from lk_core import hookimpl

KEY = "ssh-ed25519 AAAA... me@host"
GiB = 1024**3


class WithDisks(Hypervisor):
    name: ClassVar[str] = "withdisks"
    description: ClassVar[str] = "test"
    formats = frozenset({"iso", "kernel+initrd"})
    priority = 10
    capabilities = frozenset({Capability.DISKS})

    def availability(self) -> Availability:
        return Availability(True)


class WithoutDisks(WithDisks):
    name: ClassVar[str] = "nodisks"
    capabilities = frozenset()
    priority = 5


class Hypervisors:
    @hookimpl
    def register_hypervisors(self) -> list[Hypervisor]:
        return [WithDisks(), WithoutDisks()]


@pytest.fixture
def plugins(workspace: Path) -> Plugins:
    import lk_core.builtins.json_state
    import lk_templates.plugin

    return new_plugins(
        extra=[
            ("json-state", lk_core.builtins.json_state),
            ("templates", lk_templates.plugin),
            ("hv", Hypervisors()),
        ],
        entry_points=False,
    )


def request(options: RunOptions | None = None, **values: Any) -> RunRequest:
    return RunRequest(
        image="", options=options or RunOptions(), plugin_options={"templates": values}
    )


def test_core_dev_gets_its_data_disk(plugins: Plugins, fake_linuxkit: Path) -> None:
    prepared = plugins.prepare_run(request(template="core-dev", var=[f"SSH_KEY={KEY}"]))
    assert prepared.options.disks == (DiskRequest(size=10 * GiB),)


def test_data_size_variable(plugins: Plugins, fake_linuxkit: Path) -> None:
    var = [f"SSH_KEY={KEY}", "DATA_SIZE=2G"]
    prepared = plugins.prepare_run(request(template="core-dev", var=var))
    assert prepared.options.disks == (DiskRequest(size=2 * GiB),)


def test_disk_on_the_command_line_wins(plugins: Plugins, fake_linuxkit: Path) -> None:
    given = RunOptions(disks=(DiskRequest(name="docker"),))
    prepared = plugins.prepare_run(request(given, template="core-dev", var=[f"SSH_KEY={KEY}"]))
    assert prepared.options.disks == (DiskRequest(name="docker"),)


def test_a_hypervisor_without_disks_gets_none(plugins: Plugins, fake_linuxkit: Path) -> None:
    given = RunOptions(hypervisor="nodisks")
    prepared = plugins.prepare_run(request(given, template="core-dev", var=[f"SSH_KEY={KEY}"]))
    assert prepared.options.disks == ()


def test_a_template_without_disk_has_none(
    plugins: Plugins, fake_linuxkit: Path, user_templates: Path
) -> None:
    (user_templates / "bare.yml").write_text("kernel:\n  image: k\ninit:\n  - i\n")
    prepared = plugins.prepare_run(request(template="bare"))
    assert attrs.evolve(prepared.options).disks == ()
