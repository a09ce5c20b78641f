"""Tests for lk_core.plugins: hook dispatch, discovery, validation and the CLI around them."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from lk_core.builtins import image_formats, json_state
from lk_core.errors import HypervisorError, NotFoundError, PluginError
from lk_core.hypervisor import Hypervisor, LegacyProcessHypervisor, ProcessHypervisor
from lk_core.json_store import JsonStateStore
from lk_core.model import Availability, Container, HypervisorOptions
from lk_core.plugins import new_plugins

from lk_core import hookimpl

BUILTINS = {
    "json-state": ["open_state_store"],
    "image-formats": ["detect_image_format"],
    "core-commands": ["register_commands"],
}


# -- in-test plugins ----------------------------------------------------------------


class FakeHV(ProcessHypervisor):
    description = "a test hypervisor"
    formats = frozenset({"iso"})

    def __init__(self, name: str, priority: int = 0, available: bool = True) -> None:
        self.name = name  # type: ignore[misc]
        self.priority = priority
        self._available = available

    def availability(self) -> Availability:
        if self._available:
            return Availability(True)
        return Availability(False, f"{self.name} is not installed")

    def build_command(self, options: HypervisorOptions) -> list[str]:
        return ["true"]

    def request_shutdown(self, container: Container, runtime_dir: Path) -> None:
        pass


class HVPlugin:
    def __init__(self, *hypervisors: FakeHV) -> None:
        self.hypervisors = list(hypervisors)

    @hookimpl
    def register_hypervisors(self) -> list[FakeHV]:
        return self.hypervisors


class MemoryStore:
    def __init__(self) -> None:
        self.location = "memory://test"
        self.records: dict[str, Container] = {}

    def load(self) -> dict[str, Container]:
        return dict(self.records)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[dict[str, Container]]:
        yield self.records


class MemoryStorePlugin:
    def __init__(self) -> None:
        self.store = MemoryStore()
        self.paths: list[Path] = []

    @hookimpl
    def open_state_store(self, path: Path) -> MemoryStore:
        self.paths.append(path)
        return self.store


class FormatPlugin:
    def __init__(self, answer: str | None) -> None:
        self.answer = answer
        self.asked: list[Path] = []

    @hookimpl
    def detect_image_format(self, path: Path) -> str | None:
        self.asked.append(path)
        return self.answer


class MisspelledHook:
    @hookimpl
    def register_hypervisor(self) -> list[FakeHV]:  # missing the final "s"
        return []


class WrongArgument:
    @hookimpl
    def detect_image_format(self, filename: Path) -> str | None:
        return None


def iso_file(path: Path) -> Path:
    data = bytearray(0x8001 + 0x800)
    data[0x8000] = 1
    data[0x8001:0x8006] = b"CD001"
    path.write_bytes(bytes(data))
    return path


# -- overriding the built-ins ----------------------------------------------------------


def test_builtin_json_store_by_default(builtin_plugins_only: None, tmp_path: Path) -> None:
    plugins = new_plugins()
    store = plugins.state_store(tmp_path / "containers.json")
    assert isinstance(store, JsonStateStore)
    assert store.path == tmp_path / "containers.json"


def test_third_party_state_store_overrides_json_store(
    builtin_plugins_only: None, tmp_path: Path
) -> None:
    plugin = MemoryStorePlugin()
    plugins = new_plugins(extra=[("memory-store", plugin)])
    assert "json-state" in plugins.infos
    store = plugins.state_store(tmp_path / "containers.json")
    assert store is plugin.store
    assert plugin.paths == [tmp_path / "containers.json"]


def test_builtin_store_answers_last_whatever_the_registration_order(tmp_path: Path) -> None:
    plugins = new_plugins(entry_points=False)
    plugin = MemoryStorePlugin()
    plugins.register(plugin, "memory-store")
    plugins.register(json_state, "json-state")  # registered later, still asked last
    assert plugins.state_store(tmp_path / "c.json") is plugin.store


def test_no_state_store_plugin(tmp_path: Path) -> None:
    plugins = new_plugins(entry_points=False)
    with pytest.raises(PluginError, match="no state store plugin"):
        plugins.state_store(tmp_path / "c.json")


def test_third_party_format_detector_answers_first(
    builtin_plugins_only: None, tmp_path: Path
) -> None:
    image = iso_file(tmp_path / "disk.iso")
    assert new_plugins().detect_image_format(image) == "iso"
    detector = FormatPlugin("myformat")
    plugins = new_plugins(extra=[("my-format", detector)])
    assert plugins.detect_image_format(image) == "myformat"
    assert detector.asked == [image]


def test_format_detector_that_passes_falls_through(tmp_path: Path) -> None:
    image = iso_file(tmp_path / "disk.img")
    plugins = new_plugins(entry_points=False)
    detector = FormatPlugin(None)
    plugins.register(detector, "passing")
    plugins.register(image_formats, "image-formats")
    assert plugins.detect_image_format(image) == "iso"
    assert detector.asked == [image]


def test_registered_hypervisor_is_listed_and_found_case_insensitively() -> None:
    hv = FakeHV("TestHV", priority=5)
    plugins = new_plugins(extra=[("test-hv", HVPlugin(hv))], entry_points=False)
    assert plugins.hypervisors() == {"testhv": hv}
    assert isinstance(hv, Hypervisor)
    assert plugins.get_hypervisor("testhv") is hv
    assert plugins.get_hypervisor("TESTHV") is hv
    assert plugins.get_hypervisor("TestHv") is hv
    assert plugins.infos["test-hv"].hooks == ("register_hypervisors",)


def test_unknown_hypervisor_lists_known_ones() -> None:
    plugins = new_plugins(
        extra=[("a", HVPlugin(FakeHV("alpha"))), ("b", HVPlugin(FakeHV("beta")))],
        entry_points=False,
    )
    with pytest.raises(NotFoundError) as excinfo:
        plugins.get_hypervisor("gamma")
    message = str(excinfo.value)
    assert "'gamma'" in message
    assert "alpha, beta" in message


def test_unknown_hypervisor_when_none_are_installed() -> None:
    with pytest.raises(NotFoundError, match="known: none"):
        new_plugins(entry_points=False).get_hypervisor("qemu")


def test_detect_hypervisor_picks_highest_priority_available() -> None:
    low = FakeHV("low", priority=1)
    high_unavailable = FakeHV("high", priority=100, available=False)
    mid = FakeHV("mid", priority=50)
    plugins = new_plugins(
        extra=[("p1", HVPlugin(low, high_unavailable)), ("p2", HVPlugin(mid))],
        entry_points=False,
    )
    assert plugins.detect_hypervisor() is mid


def test_detect_hypervisor_ties_broken_by_name() -> None:
    b, a = FakeHV("bbb", priority=3), FakeHV("aaa", priority=3)
    plugins = new_plugins(extra=[("p", HVPlugin(b, a))], entry_points=False)
    assert plugins.detect_hypervisor() is a


def test_detect_hypervisor_none_available() -> None:
    plugins = new_plugins(
        extra=[("p", HVPlugin(FakeHV("one", available=False), FakeHV("two", available=False)))],
        entry_points=False,
    )
    with pytest.raises(HypervisorError) as excinfo:
        plugins.detect_hypervisor()
    message = str(excinfo.value)
    assert message.startswith("no hypervisor available: install qemu or hyperkit (macOS)")
    assert "one: one is not installed" in message
    assert "two: two is not installed" in message


def test_detect_hypervisor_none_registered() -> None:
    with pytest.raises(
        HypervisorError, match=r"^no hypervisor available: install qemu or hyperkit \(macOS\)"
    ):
        new_plugins(entry_points=False).detect_hypervisor()


@pytest.mark.parametrize("second", ["dup", "DUP"])
def test_duplicate_hypervisor_names(second: str) -> None:
    plugins = new_plugins(
        extra=[("p1", HVPlugin(FakeHV("dup"))), ("p2", HVPlugin(FakeHV(second)))],
        entry_points=False,
    )
    with pytest.raises(PluginError, match="'dup'"):
        plugins.hypervisors()


def test_hypervisor_cache_is_refreshed_by_register() -> None:
    plugins = new_plugins(extra=[("p1", HVPlugin(FakeHV("one")))], entry_points=False)
    assert set(plugins.hypervisors()) == {"one"}
    plugins.register(HVPlugin(FakeHV("two")), "p2")
    assert set(plugins.hypervisors()) == {"one", "two"}


# -- validation ----------------------------------------------------------------------


def test_misspelled_hook_is_a_plugin_error_naming_the_plugin() -> None:
    plugins = new_plugins(entry_points=False)
    with pytest.raises(PluginError) as excinfo:
        plugins.register(MisspelledHook(), "typo-plugin")
    message = str(excinfo.value)
    assert "typo-plugin" in message
    assert "register_hypervisor" in message
    assert "\n" not in message
    # it was not left half-registered
    assert "typo-plugin" not in plugins.infos
    assert not plugins.manager.has_plugin("typo-plugin")
    plugins.register(HVPlugin(FakeHV("ok")), "ok-plugin")
    assert set(plugins.hypervisors()) == {"ok"}


def test_misspelled_hook_via_extra() -> None:
    with pytest.raises(PluginError, match="typo-plugin"):
        new_plugins(extra=[("typo-plugin", MisspelledHook())], entry_points=False)


def test_wrong_argument_name_is_a_plugin_error() -> None:
    with pytest.raises(PluginError) as excinfo:
        new_plugins(extra=[("bad-args", WrongArgument())], entry_points=False)
    message = str(excinfo.value)
    assert "bad-args" in message
    assert "filename" in message
    assert "\n" not in message


def test_duplicate_plugin_name_is_a_plugin_error() -> None:
    plugins = new_plugins(extra=[("same", HVPlugin(FakeHV("a")))], entry_points=False)
    with pytest.raises(PluginError, match="same"):
        plugins.register(HVPlugin(FakeHV("b")), "same")


# -- entry points and environment variables -----------------------------------------------


def test_installed_builtins_are_entry_points(builtin_plugins_only: None) -> None:
    modules = {
        "json-state": "lk_core.builtins.json_state",
        "image-formats": "lk_core.builtins.image_formats",
        "core-commands": "lk_core.builtins.commands",
    }
    plugins = new_plugins()
    assert set(plugins.infos) == set(BUILTINS)
    assert plugins.failures == []
    for name, hooks in BUILTINS.items():
        info = plugins.infos[name]
        assert info.distribution == "lk-core"
        assert info.version
        assert list(info.hooks) == hooks
        assert info.module == modules[name]


def make_distribution(folder: Path, entry_points: dict[str, str], modules: dict[str, str]) -> str:
    """Install a tiny distribution into ``folder`` (a sys.path entry) by hand: a dist-info."""
    dist = f"lk_test_dist_{uuid.uuid4().hex[:8]}"
    info = folder / f"{dist}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[lk]\n{lines}")
    for module, source in modules.items():
        (folder / f"{module}.py").write_text(textwrap.dedent(source))
    return dist


def test_third_party_entry_points_load_and_failures_are_recorded(
    clean_plugin_env: None, module_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suffix = uuid.uuid4().hex[:8]
    good, bad = f"ep_good_{suffix}", f"ep_bad_{suffix}"
    dist = make_distribution(
        module_dir,
        {f"good-{suffix}": good, f"bad-{suffix}": bad},
        {good: HV_MODULE, bad: "import lk_core\nraise ImportError('no libvirt here')\n"},
    )
    monkeypatch.setenv("LK_PLUGINS", f"json-state,good-{suffix},bad-{suffix}")
    plugins = new_plugins()
    info = plugins.infos[f"good-{suffix}"]
    assert (info.distribution, info.version, info.module) == (dist, "1.2.3", good)
    assert plugins.get_hypervisor("modhv").name == "modhv"
    assert [(f.name, f.distribution) for f in plugins.failures] == [(f"bad-{suffix}", dist)]
    assert "no libvirt here" in plugins.failures[0].error
    assert set(plugins.infos) == {"json-state", f"good-{suffix}"}


def test_lk_plugins_allow_list(clean_plugin_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LK_PLUGINS", "json-state")
    plugins = new_plugins()
    assert set(plugins.infos) == {"json-state"}
    assert plugins.failures == []


def test_lk_plugins_allow_list_with_spaces(
    clean_plugin_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LK_PLUGINS", " json-state , image-formats ,")
    assert set(new_plugins().infos) == {"json-state", "image-formats"}


def test_lk_disable_plugins(builtin_plugins_only: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LK_DISABLE_PLUGINS", "image-formats")
    plugins = new_plugins()
    assert "image-formats" not in plugins.infos
    assert {"json-state", "core-commands"} <= set(plugins.infos)


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "plugin-modules"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    return folder


def write_module(folder: Path, source: str, stem: str = "lkplug") -> str:
    name = f"{stem}_{uuid.uuid4().hex[:8]}"
    (folder / f"{name}.py").write_text(textwrap.dedent(source))
    return name


HV_MODULE = """
    from lk_core import hookimpl
    from lk_core.model import Availability

    class ModHV:
        name = "modhv"
        description = "from a module"
        formats = frozenset({"iso"})
        priority = 1
        def availability(self):
            return Availability(True)
        def build_command(self, options):
            return ["true"]
        def request_shutdown(self, container, runtime_dir):
            pass

    @hookimpl
    def register_hypervisors():
        return [ModHV()]
"""


def test_lk_plugin_modules_loads_a_module(
    builtin_plugins_only: None, module_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = write_module(module_dir, HV_MODULE)
    monkeypatch.setenv("LK_PLUGIN_MODULES", name)
    plugins = new_plugins()
    assert plugins.infos[name].hooks == ("register_hypervisors",)
    assert plugins.infos[name].module == name
    assert plugins.get_hypervisor("MODHV").description == "from a module"
    assert set(BUILTINS) <= set(plugins.infos)


def test_module_failing_at_import_is_recorded(
    builtin_plugins_only: None, module_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = write_module(module_dir, HV_MODULE)
    broken = write_module(module_dir, "raise RuntimeError('kaboom at import')\n", "broken")
    monkeypatch.setenv("LK_PLUGIN_MODULES", f"{broken},{good},does_not_exist_{uuid.uuid4().hex}")
    plugins = new_plugins()
    failures = {f.name: f for f in plugins.failures}
    assert broken in failures
    assert "RuntimeError" in failures[broken].error
    assert "kaboom at import" in failures[broken].error
    missing = [n for n in failures if n.startswith("does_not_exist_")]
    assert len(missing) == 1 and "ModuleNotFoundError" in failures[missing[0]].error
    assert len(plugins.failures) == 2
    # everything else still loaded
    assert good in plugins.infos
    assert set(BUILTINS) <= set(plugins.infos)
    assert broken not in plugins.infos


def test_module_with_misspelled_hook_is_a_hard_error(
    builtin_plugins_only: None, module_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = write_module(
        module_dir,
        """
        from lk_core import hookimpl

        @hookimpl
        def register_hypervisor():
            return []
        """,
    )
    monkeypatch.setenv("LK_PLUGIN_MODULES", name)
    with pytest.raises(PluginError, match=name):
        new_plugins()


# -- the command line --------------------------------------------------------------------


def run_lk(
    *args: str, env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lk_core", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def builtin_cli_env(cli_env: dict[str, str]) -> dict[str, str]:
    return dict(cli_env, LK_PLUGINS=",".join(BUILTINS))


def test_cli_plugins_json_lists_builtins(builtin_cli_env: dict[str, str]) -> None:
    result = run_lk("plugins", "--json", env=builtin_cli_env)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    by_name = {p["name"]: p for p in document["plugins"]}
    assert set(by_name) == set(BUILTINS)
    for name, hooks in BUILTINS.items():
        assert by_name[name]["hooks"] == hooks
        assert by_name[name]["distribution"] == "lk-core"
    assert document["failed"] == []
    assert result.stderr == ""


def test_cli_plugins_lists_installed_ones_without_filter(cli_env: dict[str, str]) -> None:
    result = run_lk("plugins", "--json", env=cli_env)
    assert result.returncode == 0, result.stderr
    names = {p["name"] for p in json.loads(result.stdout)["plugins"]}
    assert set(BUILTINS) <= names


def test_cli_broken_module_is_a_warning(builtin_cli_env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "mods"
    folder.mkdir()
    (folder / "broken_mod.py").write_text("raise ImportError('needs libfoo')\n")
    env = dict(builtin_cli_env, LK_PLUGIN_MODULES="broken_mod", PYTHONPATH=str(folder))
    result = run_lk("plugins", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "warning" in lines[0]
    assert "broken_mod" in lines[0]
    assert "needs libfoo" in lines[0]
    assert "Traceback" not in result.stderr
    assert "json-state" in result.stdout
    assert "broken_mod" in result.stdout  # listed as failed


def test_cli_misspelled_hook_is_a_one_line_error(
    builtin_cli_env: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "mods"
    folder.mkdir()
    (folder / "typo_plugin.py").write_text(
        "from lk_core import hookimpl\n\n@hookimpl\ndef register_hypervisor():\n    return []\n"
    )
    env = dict(builtin_cli_env, LK_PLUGIN_MODULES="typo_plugin", PYTHONPATH=str(folder))
    result = run_lk("plugins", env=env)
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "typo_plugin" in lines[0]
    assert lines[0].startswith("lk: error:")
    assert "Traceback" not in result.stderr


def test_cli_version(builtin_cli_env: dict[str, str]) -> None:
    result = run_lk("--version", env=builtin_cli_env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("lk ")
    assert "lk-core" in result.stdout
    assert "json-state" in result.stdout


def test_cli_hypervisors_json(builtin_cli_env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "mods"
    folder.mkdir()
    (folder / "hv_mod.py").write_text(textwrap.dedent(HV_MODULE))
    env = dict(builtin_cli_env, LK_PLUGIN_MODULES="hv_mod", PYTHONPATH=str(folder))
    result = run_lk("hypervisors", "--json", env=env)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert isinstance(rows, list)
    assert [r["name"] for r in rows] == ["modhv"]
    assert rows[0]["available"] is True
    assert rows[0]["default"] is True
    assert rows[0]["formats"] == ["iso"]


def test_cli_hypervisors_json_with_installed_plugins(cli_env: dict[str, str]) -> None:
    result = run_lk("hypervisors", "--json", env=cli_env)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert isinstance(rows, list)
    assert all({"name", "available", "default", "reason"} <= set(r) for r in rows)


def test_cli_unknown_command_is_a_usage_error(builtin_cli_env: dict[str, str]) -> None:
    result = run_lk("no-such-command", env=builtin_cli_env)
    assert result.returncode == 2
    assert "no-such-command" in result.stderr
    assert "Usage" in result.stderr
    assert "Traceback" not in result.stderr


class LegacyHV:
    """A hypervisor written against lk 0.1's protocol: no base class."""

    name = "Legacy"
    description = "an lk 0.1 hypervisor"
    formats = frozenset({"iso"})
    priority = 3

    def availability(self) -> Availability:
        return Availability(True)

    def build_command(self, options: HypervisorOptions) -> list[str]:
        return ["true", options.id]

    def request_shutdown(self, container: Container, runtime_dir: Path) -> None:
        pass


def test_a_hypervisor_written_for_lk_0_1_is_wrapped_as_a_process_hypervisor() -> None:
    legacy = LegacyHV()
    plugins = new_plugins(extra=[("legacy", HVPlugin(legacy))], entry_points=False)  # type: ignore[arg-type]
    hv = plugins.get_hypervisor("legacy")
    assert isinstance(hv, LegacyProcessHypervisor)
    assert hv.wrapped is legacy
    assert (hv.name, hv.priority, hv.formats) == ("Legacy", 3, frozenset({"iso"}))
    assert hv.explain_format("qcow2") is None
