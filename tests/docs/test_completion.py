"""Shell completion (docs/completion.md): container refs, hypervisors, templates, scripts.

Driven through Click's completion API (``BashComplete(...).get_completions``),
as the shell would, against a state file holding ``web`` (running),
``worker`` (stopped), ``db`` (running) and an unnamed running container; and
once through a real ``lk`` process with ``_LK_COMPLETE`` set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.shell_completion import BashComplete, ZshComplete
from lk_core.model import Template
from lk_core.plugins import new_plugins, set_plugins

from lk_core import hookimpl

RECORDS = {
    "a1b2c3d4": {"name": "web", "status": "running", "image": "/img/web.iso"},
    "b2c3d4e5": {"name": "worker", "status": "stopped", "image": "/img/worker.qcow2"},
    "c3d4e5f6": {"name": "db", "status": "running", "image": "/img/db.iso"},
    "d4e5f6a7": {"name": "", "status": "running", "image": "/img/anon.iso"},
}


class Templates:
    name = "test"
    priority = 1

    def list_templates(self) -> list[Template]:
        return [
            Template("core-dev", "Development environment", self.name),
            Template("server-php", "PHP server", self.name),
        ]

    def read_template(self, name: str) -> str | None:
        return None


class TemplatePlugin:
    @hookimpl
    def register_template_sources(self) -> list[Templates]:
        return [Templates()]


def write_state(home: Path, records: dict[str, dict[str, str]]) -> None:
    containers = {
        cid: {"id": cid, "started_at": f"2026-01-01T00:00:0{i}Z", **data}
        for i, (cid, data) in enumerate(records.items())
    }
    home.mkdir(parents=True, exist_ok=True)
    (home / "containers.json").write_text(json.dumps({"schema": 1, "containers": containers}))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("LK_HOME", str(home))
    write_state(home, RECORDS)
    return home


@pytest.fixture
def cli(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[click.Group]:
    """``lk`` with lk-core's built-ins, the QEMU plugin and a test template source."""
    for variable in ("LK_PLUGINS", "LK_DISABLE_PLUGINS", "LK_PLUGIN_MODULES"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("LK_PLUGINS", "json-state,image-formats,core-commands,qemu,templates")
    set_plugins(new_plugins(extra=[("test-templates", TemplatePlugin())]))
    from lk_core.cli import build_cli

    yield build_cli()
    set_plugins(None)


def complete(cli: click.Group, args: list[str], incomplete: str) -> list[str]:
    items = BashComplete(cli, {}, "lk", "_LK_COMPLETE").get_completions(args, incomplete)
    return [item.value if item.type == "plain" else f"<{item.type}>" for item in items]


def test_refs_of_running_containers_for_stop_exec_shell_wait(cli: click.Group) -> None:
    for command in ("stop", "exec", "shell", "wait"):
        assert complete(cli, [command], "we") == ["web"]
        assert complete(cli, [command], "w") == ["web"]  # worker is stopped
        assert complete(cli, [command], "") == ["web", "db", "d4e5f6a7"]


def test_refs_of_every_container_for_logs_rm_inspect(cli: click.Group) -> None:
    for command in ("logs", "rm", "inspect"):
        assert complete(cli, [command], "w") == ["web", "worker"]
        assert complete(cli, [command], "") == ["web", "worker", "db", "d4e5f6a7"]


def test_ids_complete_once_something_is_typed(cli: click.Group) -> None:
    assert complete(cli, ["logs"], "b2") == ["b2c3d4e5"]
    assert complete(cli, ["logs"], "d") == ["db", "d4e5f6a7"]
    assert complete(cli, ["inspect"], "zz") == []


def test_every_ref_of_a_multi_ref_command_completes(cli: click.Group) -> None:
    assert complete(cli, ["stop", "web"], "d") == ["db", "d4e5f6a7"]
    assert complete(cli, ["rm", "-f", "web"], "wo") == ["worker"]


def test_zsh_shows_status_and_image(cli: click.Group) -> None:
    items = ZshComplete(cli, {}, "lk", "_LK_COMPLETE").get_completions(["rm"], "wor")
    assert [(i.value, i.help) for i in items] == [("worker", "stopped worker.qcow2")]


def test_cp_offers_refs_then_local_files(cli: click.Group) -> None:
    assert complete(cli, ["cp"], "w") == ["<file>", "web:"]
    assert complete(cli, ["cp"], "./") == ["<file>"]
    assert complete(cli, ["cp"], "web:/e") == []
    assert complete(cli, ["cp", "web:/etc/hosts"], "") == ["<file>"]  # the other side is local
    assert complete(cli, ["cp", "./hosts"], "d") == ["db:", "d4e5f6a7:"]  # ... or remote


def test_hypervisor_names(cli: click.Group) -> None:
    assert complete(cli, ["run", "--hypervisor"], "") == ["qemu"]
    assert complete(cli, ["run", "--hypervisor"], "q") == ["qemu"]
    assert complete(cli, ["run", "--hypervisor"], "x") == []


def test_template_names(cli: click.Group) -> None:
    for command in ("show", "vars", "render"):
        assert complete(cli, ["templates", command], "") == ["core-dev", "server-php"]
        assert complete(cli, ["templates", command], "s") == ["server-php"]
    assert complete(cli, ["run", "--template"], "c") == ["core-dev"]


def test_template_completion_survives_a_missing_templates_module(
    cli: click.Group, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "lk_templates.registry", None)  # import now raises ImportError
    assert complete(cli, ["templates", "show"], "") == []


def test_a_corrupt_state_file_completes_nothing_and_raises_nothing(
    cli: click.Group, home: Path
) -> None:
    (home / "containers.json").write_text("{not json")
    assert complete(cli, ["stop"], "") == []
    assert complete(cli, ["cp"], "w") == ["<file>"]


def test_completion_never_checks_liveness(cli: click.Group, home: Path) -> None:
    """The running records name no processes at all, yet stay as they were written."""
    before = (home / "containers.json").read_text()
    complete(cli, ["stop"], "")
    assert (home / "containers.json").read_text() == before


def lk_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LK_")}
    return {**env, "LK_HOME": str(home), **extra}


def test_a_real_lk_answers_the_shell(home: Path) -> None:
    env = lk_env(home, _LK_COMPLETE="bash_complete", COMP_WORDS="lk stop w", COMP_CWORD="2")
    result = subprocess.run(
        [sys.executable, "-m", "lk_core"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["plain,web"]


@pytest.mark.parametrize(
    ("shell", "marker"),
    [("bash", "complete -o nosort -F"), ("zsh", "#compdef lk"), ("fish", "complete --no-files")],
)
def test_lk_completion_prints_the_same_script_as_lk_complete_source(
    home: Path, shell: str, marker: str
) -> None:
    ours = subprocess.run(
        [sys.executable, "-m", "lk_core", "completion", shell],
        env=lk_env(home),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    clicks = subprocess.run(
        [sys.executable, "-m", "lk_core"],
        env=lk_env(home, _LK_COMPLETE=f"{shell}_source"),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert ours == clicks
    assert marker in ours and "_LK_COMPLETE" in ours
