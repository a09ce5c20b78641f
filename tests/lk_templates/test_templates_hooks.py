"""lk-templates' hooks called directly: register_options, prepare_run, container_removed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest
from lk_core.errors import LkError, TemplateError, UsageError
from lk_core.hypervisor import Hypervisor
from lk_core.model import Availability, Container, RunOptions, RunRequest
from lk_core.plugins import Plugins, new_plugins

from lk_core import hookimpl

KEY = "ssh-ed25519 AAAA... me@host"


class IsoFirst(Hypervisor):
    """Boots ISOs and kernel+initrd; no preference: lk picks (iso-bios)."""

    name: ClassVar[str] = "isofirst"
    description: ClassVar[str] = "test"
    formats = frozenset({"iso", "kernel+initrd"})
    priority = 10

    def availability(self) -> Availability:
        return Availability(True)


class KernelFirst(IsoFirst):
    """Prefers kernel+initrd (as Hyperkit does): lk must not name it to get it."""

    name: ClassVar[str] = "kernelfirst"
    preferred_formats = ("kernel+initrd", "iso")
    priority = 5


class Hypervisors:
    @hookimpl
    def register_hypervisors(self) -> list[Hypervisor]:
        return [IsoFirst(), KernelFirst()]


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


def request(image: str = "", **values: Any) -> RunRequest:
    return RunRequest(image=image, options=RunOptions(), plugin_options={"templates": values})


def calls(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_register_options(plugins: Plugins) -> None:
    options = plugins.options()
    assert {name: option.owners for name, option in options.items()} == {
        "template": ("templates",),
        "var": ("templates",),
        "var_file": ("templates",),
    }
    assert options["var"].spec.kind == "multiple"
    assert options["var"].spec.metavar == "NAME=VALUE"
    assert options["var_file"].spec.flag == "--var-file"
    assert all(o.spec.commands == ("run",) for o in options.values())


def test_no_template_leaves_the_run_alone(plugins: Plugins) -> None:
    original = RunRequest(image="x.iso")
    assert plugins.prepare_run(original) is original


def test_template_builds_and_sets_the_vm_defaults(plugins: Plugins, fake_linuxkit: Path) -> None:
    prepared = plugins.prepare_run(request(template="core-dev", var=[f"SSH_KEY={KEY}"]))
    assert prepared.image.endswith(".iso") and Path(prepared.image).is_file()
    assert (prepared.options.memory, prepared.options.cpus) == (2048, 2)
    assert [argv[argv.index("--format") + 1] for argv in calls(fake_linuxkit)] == ["iso-bios"]


def test_the_users_memory_and_cpus_win(plugins: Plugins, fake_linuxkit: Path) -> None:
    given = request(template="core-dev", var=[f"SSH_KEY={KEY}"])
    given = attrs.evolve(given, options=RunOptions(memory=4096, cpus=0))
    prepared = plugins.prepare_run(given)
    assert (prepared.options.memory, prepared.options.cpus) == (4096, 0)


def test_a_template_without_defaults_leaves_them_to_lk(
    plugins: Plugins, fake_linuxkit: Path, user_templates: Path
) -> None:
    (user_templates / "bare.yml").write_text("kernel:\n  image: k\ninit:\n  - i\n")
    prepared = plugins.prepare_run(request(template="bare"))
    assert (prepared.options.memory, prepared.options.cpus) == (None, None)


def test_the_hypervisors_preferred_format_is_built(plugins: Plugins, fake_linuxkit: Path) -> None:
    given = request(template="core-dev", var=[f"SSH_KEY={KEY}"])
    given = attrs.evolve(given, options=RunOptions(hypervisor="kernelfirst"))
    prepared = plugins.prepare_run(given)
    assert Path(prepared.image + "-kernel").is_file()
    assert [argv[argv.index("--format") + 1] for argv in calls(fake_linuxkit)] == ["kernel+initrd"]


def test_var_file_and_var(plugins: Plugins, fake_linuxkit: Path, workspace: Path) -> None:
    (workspace / "vars.env").write_text(f"SSH_KEY={KEY}\nMEMORY=1024\n")
    prepared = plugins.prepare_run(
        request(template="core-dev", var_file="vars.env", var=["CPUS=3"])
    )
    assert (prepared.options.memory, prepared.options.cpus) == (1024, 3)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (request("x.iso", template="core-dev"), "give an IMAGE or --template NAME, not both"),
        (request("x.iso", var=["A=1"]), "--var and --var-file need --template"),
        (request(var_file="vars.env"), "--var and --var-file need --template"),
    ],
)
def test_refusals(plugins: Plugins, given: RunRequest, message: str) -> None:
    with pytest.raises(UsageError) as info:
        plugins.prepare_run(given)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("var", "error", "message"),
    [
        ([f"SSH_KEY={KEY}", "MEMORY=abc"], UsageError, "invalid memory size 'abc'"),
        ([f"SSH_KEY={KEY}", "CPUS=0"], UsageError, "invalid CPU count '0'"),
        (["SSH_KEY="], TemplateError, "SSH_KEY is required and cannot be empty"),
        (["SSH_KEY=k", "TYPO=1"], TemplateError, "has no variable TYPO"),
    ],
)
def test_bad_values_are_refused_before_linuxkit_runs(
    plugins: Plugins, fake_linuxkit: Path, var: list[str], error: type[LkError], message: str
) -> None:
    with pytest.raises(error) as info:
        plugins.prepare_run(request(template="core-dev", var=var))
    assert message in str(info.value) and "\n" not in str(info.value)
    assert calls(fake_linuxkit) == []


def test_the_values_are_keyed_by_the_plugins_registered_name(
    workspace: Path, fake_linuxkit: Path
) -> None:
    import lk_templates.plugin

    plugins = new_plugins(
        extra=[("tmpl", lk_templates.plugin), ("hv", Hypervisors())], entry_points=False
    )
    assert plugins.options()["template"].owners == ("tmpl",)
    given = RunRequest("", plugin_options={"tmpl": {"template": "core-dev", "var": ["SSH_KEY=k"]}})
    assert plugins.prepare_run(given).image.endswith(".iso")


def test_container_removed_prunes_unused_builds(
    plugins: Plugins, fake_linuxkit: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lk_templates import linuxkit

    kept = plugins.prepare_run(request(template="core-dev", var=[f"SSH_KEY={KEY}"])).image
    gone = plugins.prepare_run(request(template="core-dev", var=["SSH_KEY=other"])).image
    plugins.store().add(Container(id="abcd1234", image=kept))
    monkeypatch.setattr(linuxkit, "prune_unused_builds", _no_min_age(linuxkit.prune_unused_builds))
    plugins.notify("removed", Container(id="ffff0000", image=gone))
    assert Path(kept).is_file()
    assert not Path(gone).exists()


def _no_min_age(prune: Any) -> Any:
    """The hook keeps builds younger than a minute; these tests cannot wait that long."""

    def without_min_age(images: set[str], cache_dir: Any = None, *, min_age: float = 0) -> Any:
        assert min_age == 60.0
        return prune(images, cache_dir, min_age=0.0)

    return without_min_age
