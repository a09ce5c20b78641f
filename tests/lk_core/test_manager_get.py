"""``Manager.get``: an exact ID of this machine is answered from lk's store alone.

Engines that own their records (libvirt, on this machine or other hosts) are
asked only when the reference needs them: a name, a prefix, or an ID lk's
store does not hold. Asking costs ``import libvirt`` and a round trip per host.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lk_core.errors import AmbiguousReferenceError
from lk_core.hookspecs import hookimpl
from lk_core.hypervisor import Hypervisor
from lk_core.manager import Manager
from lk_core.model import Container, Status
from lk_core.plugins import new_plugins
from lk_core.vm import Listing, VmState


class Engine(Hypervisor):
    """An engine that owns its records, and counts how often it is asked for them."""

    name = "engine"
    owns_records = True

    def __init__(self) -> None:
        self.listings = 0
        self.owned: list[Container] = []

    def list_containers(self) -> Listing:
        self.listings += 1
        return Listing(list(self.owned))

    def state(self, container: Container) -> VmState:
        return VmState(Status.RUNNING)


class Local(Hypervisor):
    """A hypervisor of this machine whose VMs are stopped (no liveness to check)."""

    name = "local"

    def state(self, container: Container) -> VmState:
        return VmState(Status.STOPPED)


@pytest.fixture
def setup(sandbox: Path) -> tuple[Manager, Engine]:
    engine = Engine()

    class Plugin:
        @hookimpl
        def register_hypervisors(self) -> list[Hypervisor]:
            return [engine, Local()]

    manager = Manager(new_plugins(extra=[("test-hvs", Plugin())], entry_points=True))
    manager.ops.add(Container(id="11aa22bb", image="i", name="web", hypervisor="local"))
    return manager, engine


def test_an_exact_local_id_does_not_ask_the_engines(setup: tuple[Manager, Engine]) -> None:
    manager, engine = setup
    assert manager.get("11aa22bb").name == "web"
    assert manager.get(" 11aa22bb\n").name == "web"
    assert engine.listings == 0


@pytest.mark.parametrize("ref", ["web", "11aa", "99cc"])
def test_names_prefixes_and_other_ids_still_ask_the_engines(
    setup: tuple[Manager, Engine], ref: str
) -> None:
    manager, engine = setup
    engine.owned = [Container(id="99cc88dd", image="i", name="db", hypervisor="engine")]
    assert manager.get(ref).id == {"web": "11aa22bb", "11aa": "11aa22bb", "99cc": "99cc88dd"}[ref]
    assert engine.listings == 1


def test_a_local_id_wins_over_the_same_id_on_another_host(
    setup: tuple[Manager, Engine],
) -> None:
    manager, engine = setup
    twin = Container(id="11aa22bb", image="i", name="twin", host="lab", hypervisor="engine")
    engine.owned = [twin]
    assert manager.get("11aa22bb").name == "web"
    # A name shared across hosts is still refused, naming the hosts.
    namesake = Container(id="55ee66ff", image="i", name="web", host="lab", hypervisor="engine")
    engine.owned = [namesake]
    with pytest.raises(AmbiguousReferenceError, match="on: lab, this machine"):
        manager.get("web")


def test_a_stored_record_of_an_engine_is_read_from_the_engine(
    setup: tuple[Manager, Engine],
) -> None:
    """An engine owns its records: the copy in lk's store is not the truth."""
    manager, engine = setup
    manager.ops.add(Container(id="77ab77ab", image="i", name="old", hypervisor="engine"))
    engine.owned = [Container(id="77ab77ab", image="i", name="new", hypervisor="engine")]
    manager.get("77ab77ab")
    assert engine.listings == 1
