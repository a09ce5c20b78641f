"""The example plugin tested the quick ways the plugin author guide recommends.

No install: the example's ``src`` folder is put on ``sys.path`` and its
modules are registered with ``lk_core.plugins.new_plugins(extra=...)``, or
named in ``LK_PLUGIN_MODULES`` for a real ``lk`` subprocess. (The full
install into a fresh virtualenv is tests/plugins/test_example_plugin.py.)
Sections between ``--8<--`` markers are shown in docs/plugins/guide.md.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from lk_core.builtins import json_state
from lk_core.errors import HypervisorError, LkError
from lk_core.model import (
    Container,
    HypervisorOptions,
    PortMapping,
    Protocol,
    RunOptions,
    VolumeMapping,
)
from lk_core.plugins import Plugins, new_plugins
from lk_core.state import StoreOperations

SRC = Path(__file__).parent / "lk-example-hypervisor" / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

from lk_example_hypervisor import plugin as example_plugin  # noqa: E402
from lk_example_hypervisor.hypervisor import ExampleHypervisor  # noqa: E402
from lk_example_hypervisor.sqlite_store import SqliteStateStore  # noqa: E402


# --8<-- [start:new-plugins]
@pytest.fixture
def plugins() -> Plugins:
    """lk's built-in format detector plus the plugin under test, and nothing installed."""
    from lk_core.builtins import image_formats

    return new_plugins(
        extra=[("image-formats", image_formats), ("example", example_plugin)],
        entry_points=False,  # ignore whatever else is installed in this environment
    )


def test_contributes_an_available_hypervisor(plugins: Plugins) -> None:
    hv = plugins.get_hypervisor("EXAMPLE")  # names are case-insensitive
    assert hv.availability().available
    assert plugins.detect_hypervisor() is hv  # the only one here


def test_detects_its_own_format_and_passes_on_others(plugins: Plugins, tmp_path: Path) -> None:
    mine = tmp_path / "hello.img"
    mine.write_bytes(b"#!lk-example\nhello\n")
    other = tmp_path / "disk.img"
    other.write_bytes(bytes(510) + b"\x55\xaa")  # a raw disk: a boot sector
    assert plugins.detect_image_format(mine) == "example"
    assert plugins.detect_image_format(other) == "raw"  # lk's detector answered
    assert plugins.detect_image_format(tmp_path / "missing-kernel") is None


# --8<-- [end:new-plugins]


def options(tmp_path: Path, **changes: object) -> HypervisorOptions:
    values: dict[str, object] = {
        "id": "0123abcd",
        "image": tmp_path / "image.iso",
        "format": "iso",
        "console_log": tmp_path / "console.log",
        "runtime_dir": tmp_path / "run",
        **changes,
    }
    return HypervisorOptions(**values)  # type: ignore[arg-type]


# --8<-- [start:argv]
def test_the_command_line_is_data(tmp_path: Path) -> None:
    argv = ExampleHypervisor().build_command(
        options(tmp_path, ports=(PortMapping(8080, 80),), memory=256)
    )
    assert argv[0] == sys.executable and argv[1].endswith("vm.py")
    assert f"--console={tmp_path / 'console.log'}" in argv
    assert f"--control={tmp_path / 'run' / 'control.sock'}" in argv
    assert "--echo=127.0.0.1:8080:80" in argv and "--memory=256" in argv


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ports": (PortMapping(53, 53, protocol=Protocol.UDP),)}, "TCP ports only"),
        ({"runtime_dir": Path("/tmp/" + "x" * 100)}, "too long for a unix socket"),
    ],
)
def test_refuses_options_it_cannot_honour(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(HypervisorError, match=message):
        ExampleHypervisor().build_command(options(tmp_path, **changes))


# --8<-- [end:argv]


def test_declares_what_it_can_do() -> None:
    from lk_core.hypervisor import Capability, ProcessHypervisor

    hv = ExampleHypervisor()
    assert isinstance(hv, ProcessHypervisor)
    assert hv.capabilities == {Capability.PORTS, Capability.METADATA, Capability.RESTART}
    assert hv.options() == []


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        (
            {"volumes": (VolumeMapping("/srv", "/srv"),)},
            "HypervisorError",
            r"hypervisor example cannot share folders \(-v\)",
        ),
        (
            {"hypervisor_options": {"accel": "kvm"}},
            "UsageError",
            "hypervisor example does not take --accel",
        ),
    ],
)
def test_lk_refuses_what_it_did_not_declare(
    plugins: Plugins, sandbox: Path, iso_image: Path, changes: dict, error: str, message: str
) -> None:
    """No Capability.VOLUMES, no options: lk refuses -v and --accel before anything starts."""
    from lk_core.manager import Manager

    plugins.register(json_state, "json-state")
    manager = Manager(plugins)
    with pytest.raises(LkError, match=message) as refused:
        manager.run(str(iso_image), RunOptions(hypervisor="example", **changes))
    assert type(refused.value).__name__ == error
    assert manager.list(all=True) == []


def test_shutdown_of_a_vm_that_is_not_listening_is_a_hypervisor_error(tmp_path: Path) -> None:
    container = Container(id="0123abcd", image="x", name="web")
    with pytest.raises(HypervisorError, match="cannot reach the example VM of web"):
        ExampleHypervisor().request_shutdown(container, tmp_path)


def test_template_source(plugins: Plugins) -> None:
    from lk_core.templating import apply_template, list_templates

    sources = plugins.template_sources()
    assert [s.name for s in sources] == ["example"]
    (info,) = list_templates(plugins)
    assert (info.name, info.source) == ("example-hello", "example")
    rendered = apply_template(plugins, "example-hello", {"GREETING": "a: b # c"})
    assert 'command: ["echo", "a: b # c"]' in rendered
    assert sources[0].read_template("nope") is None


def test_adds_its_command(plugins: Plugins) -> None:
    group = click.Group("lk")
    plugins.add_commands(group)
    assert list(group.commands) == ["example-status"]


# -- the SQLite state store ---------------------------------------------------------


@pytest.fixture
def sqlite_ops(tmp_path: Path) -> StoreOperations:
    return StoreOperations(SqliteStateStore(tmp_path / "state" / "containers.sqlite"))


def test_sqlite_store_round_trips_records(sqlite_ops: StoreOperations) -> None:
    web = Container(id="0123abcd", image="/img.iso", name="web", ports=[PortMapping(8080, 80)])
    sqlite_ops.add(web)
    assert sqlite_ops.get("0123abcd") == web
    with pytest.raises(LkError, match="already in use"):
        sqlite_ops.add(Container(id="99999999", image="/x", name="web"))
    changed = sqlite_ops.update("0123abcd", lambda c: setattr(c, "memory", 2048))
    assert changed.memory == 2048 and sqlite_ops.get("0123abcd") == changed
    assert sqlite_ops.remove("0123abcd") and sqlite_ops.all() == []
    path = Path(sqlite_ops.store.location)
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_sqlite_store_saves_nothing_when_the_block_fails(sqlite_ops: StoreOperations) -> None:
    sqlite_ops.add(Container(id="0123abcd", image="/img.iso"))
    with pytest.raises(RuntimeError), sqlite_ops.store.transaction() as records:
        records.clear()
        raise RuntimeError("boom")
    assert [c.id for c in sqlite_ops.all()] == ["0123abcd"]


def _increment(path: str, times: int) -> None:
    ops = StoreOperations(SqliteStateStore(Path(path)))
    for _ in range(times):

        def bump(record: Container) -> None:
            time.sleep(0.001)  # widen the read-modify-write window
            record.cpus += 1

        ops.update("0123abcd", bump)


def test_sqlite_store_transactions_exclude_each_other(tmp_path: Path) -> None:
    path = tmp_path / "containers.sqlite"
    StoreOperations(SqliteStateStore(path)).add(Container(id="0123abcd", image="/x", cpus=0))
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_increment, args=(str(path), 10)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    assert StoreOperations(SqliteStateStore(path)).get("0123abcd").cpus == 40  # type: ignore[union-attr]


# -- a real lk process with LK_PLUGIN_MODULES ------------------------------------------


# --8<-- [start:plugin-modules]
def test_a_real_lk_loads_the_plugin_from_lk_plugin_modules(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LK_")}
    env["LK_HOME"] = str(tmp_path / "home")
    env["LK_PLUGIN_MODULES"] = "lk_example_hypervisor.plugin"
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-m", "lk_core", "hypervisors", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "example" in [row["name"] for row in json.loads(out)]


# --8<-- [end:plugin-modules]


def test_lifecycle_with_lk_plugin_modules(
    run_lk, sandbox: Path, iso_image: Path, monkeypatch
) -> None:
    """The shared ``sandbox`` fixture's LK_HOME, with the example instead of the fake hypervisor."""
    monkeypatch.setenv("LK_PLUGIN_MODULES", "lk_example_hypervisor.plugin")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))
    cid = run_lk("run", "-d", "--hypervisor", "example", str(iso_image), check=True).stdout.strip()
    deadline = time.monotonic() + 20
    while "example-vm: ready" not in run_lk("logs", cid).stdout:
        assert time.monotonic() < deadline, run_lk("logs", cid).stdout
        time.sleep(0.1)
    assert run_lk("stop", cid, check=True).stdout.strip() == cid
    record = json.loads((sandbox / "containers.json").read_text())["containers"][cid]
    assert record["status"] == "stopped" and record["exit_code"] == 0
    run_lk("rm", cid, check=True)
