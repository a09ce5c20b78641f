"""``lk --help`` from the command catalog: the same text, and rebuilt whenever it may differ."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cli_support import run_lk_recording


def lk_help(
    env: dict[str, str], *args: str, modules_file: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``lk --help`` (or ``args``) as users do; optionally record the modules it loaded."""
    return run_lk_recording(args or ("--help",), env, modules_file)


@pytest.fixture
def env(sandbox: Path) -> dict[str, str]:
    return {**os.environ, "COLUMNS": "80"}


def cache_file(sandbox: Path) -> Path:
    return sandbox / "cache" / "commands.json"


@pytest.mark.parametrize("columns", ["40", "80", "200"])
def test_cached_help_is_the_same_text(env: dict[str, str], sandbox: Path, columns: str) -> None:
    env = {**env, "COLUMNS": columns}
    first = lk_help(env)
    assert first.returncode == 0, first.stderr
    assert cache_file(sandbox).is_file()
    second = lk_help(env)
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    assert "ps " in second.stdout and "run " in second.stdout
    assert lk_help(env, "-h").stdout == first.stdout
    # Click's own --help (--debug keeps the catalog out) prints the same text.
    assert lk_help(env, "--debug", "--help").stdout == first.stdout


def test_a_new_width_is_rendered_from_the_catalog(env: dict[str, str], sandbox: Path) -> None:
    lk_help({**env, "COLUMNS": "120"})
    narrow = {**env, "COLUMNS": "45"}
    expected = lk_help(narrow, "--debug", "--help").stdout
    assert lk_help(narrow).stdout == expected  # rendered from stand-ins, then kept
    assert set(json.loads(cache_file(sandbox).read_text())["texts"]) == {"120", "45"}
    assert lk_help(narrow).stdout == expected


def test_cached_help_loads_no_plugin(env: dict[str, str], sandbox: Path, tmp_path: Path) -> None:
    lk_help(env)
    modules = tmp_path / "modules.txt"
    result = lk_help(env, modules_file=modules)
    assert result.returncode == 0, result.stderr
    loaded = set(modules.read_text().split())
    for heavy in ("click", "pluggy", "attrs", "lk_core.plugins", "lk_core.hookspecs"):
        assert heavy not in loaded, f"{heavy} was imported by a cached lk --help"
    plugins = ("lk_qemu", "lk_templates", "lk_libvirt", "lk_hyperkit", "fake_hypervisor")
    assert not any(name.startswith(plugins) for name in loaded)


def _plugin(folder: Path, help_line: str) -> None:
    """A plugin module ``catalog_plugin`` adding command ``hello`` with ``help_line``."""
    path = folder / "catalog_plugin.py"
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(
        textwrap.dedent(
            f'''
            import click
            from lk_core import hookimpl

            @click.command("hello")
            def hello() -> None:
                """{help_line}"""

            @hookimpl
            def register_commands(cli):
                cli.add_command(hello)
            '''
        )
    )
    if path.stat().st_mtime_ns == before:  # a coarse clock: make the edit visible
        os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


def test_a_plugin_selected_later_is_listed(
    env: dict[str, str], sandbox: Path, tmp_path: Path
) -> None:
    _plugin(tmp_path, "Say hello.")
    env = {**env, "PYTHONPATH": f"{tmp_path}{os.pathsep}{env['PYTHONPATH']}"}
    assert "hello" not in lk_help(env).stdout
    with_plugin = {**env, "LK_PLUGIN_MODULES": f"{env['LK_PLUGIN_MODULES']},catalog_plugin"}
    assert "Say hello." in lk_help(with_plugin).stdout
    assert "Say hello." in lk_help(with_plugin).stdout  # from the cache now
    assert "hello" not in lk_help(env).stdout


def test_an_edited_command_is_shown_as_edited(
    env: dict[str, str], sandbox: Path, tmp_path: Path
) -> None:
    env = {
        **env,
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{env['PYTHONPATH']}",
        "LK_PLUGIN_MODULES": f"{env['LK_PLUGIN_MODULES']},catalog_plugin",
    }
    _plugin(tmp_path, "Say hello.")
    assert "Say hello." in lk_help(env).stdout
    _plugin(tmp_path, "Say goodbye.")
    out = lk_help(env).stdout
    assert "Say goodbye." in out and "Say hello." not in out


def test_a_broken_plugin_is_reported_every_time_and_not_cached(
    env: dict[str, str], sandbox: Path, tmp_path: Path
) -> None:
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('boom')\n")
    env = {
        **env,
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{env['PYTHONPATH']}",
        "LK_PLUGIN_MODULES": f"{env['LK_PLUGIN_MODULES']},broken_plugin",
    }
    for _ in range(2):
        result = lk_help(env)
        assert result.returncode == 0
        assert "plugin 'broken_plugin'" in result.stderr and "boom" in result.stderr
    assert not cache_file(sandbox).exists()


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{",
        "[]",
        '{"key": 1, "commands": []}',
        "COMMANDS=[[1]]",
        'COMMANDS=[{"name": "ps", "help": 5}]',
        'COMMANDS=[{"name": 5}]',
        'COMMANDS=[{"name": "ps", "deprecated": {"a": 1}}]',
        "TEXTS=[]",
    ],
)
def test_a_damaged_cache_is_ignored_and_replaced(
    env: dict[str, str], sandbox: Path, content: str
) -> None:
    expected = lk_help(env).stdout
    if content.startswith(("COMMANDS=", "TEXTS=")):  # a valid key, a damaged body
        data = json.loads(cache_file(sandbox).read_text())
        field, _, value = content.partition("=")
        data[field.lower()] = json.loads(value)
        if field == "COMMANDS":
            data["texts"] = {}  # so that lk must render from the entries
        content = json.dumps(data)
    cache_file(sandbox).write_text(content)
    result = lk_help(env)
    assert result.returncode == 0 and result.stdout == expected
    assert json.loads(cache_file(sandbox).read_text())["commands"]


def test_only_the_root_listing_uses_the_cache(env: dict[str, str], sandbox: Path) -> None:
    lk_help(env)
    data = json.loads(cache_file(sandbox).read_text())
    data["texts"] = {
        width: text.replace("List containers", "Listed from the cache.")
        for width, text in data["texts"].items()
    }
    cache_file(sandbox).write_text(json.dumps(data))
    assert "Listed from the cache." in lk_help(env).stdout  # proves the cache is read
    ps_help = lk_help(env, "ps", "--help")
    assert ps_help.returncode == 0 and "Listed from the cache." not in ps_help.stdout


def test_cached_help_into_a_closed_or_abandoned_stdout_is_quiet(
    env: dict[str, str], sandbox: Path
) -> None:
    lk_help(env)
    code = "import sys; from lk_core.cli import main; raise SystemExit(main(['--help']))"
    closed = subprocess.run(  # lk --help >&-
        [sys.executable, "-c", code],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        preexec_fn=lambda: os.close(1),
    )
    assert closed.returncode == 0 and closed.stderr == b""
    # a reader that went away before lk wrote (lk --help | true): Click's answer, no traceback
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    assert proc.wait(timeout=60) == 1
    assert proc.stderr.read() == b""


def test_the_root_groups_own_file_is_part_of_the_key(env: dict[str, str], sandbox: Path) -> None:
    """The cached text holds the root group's help and options: editing them must show."""
    import lk_core.cli.root

    lk_help(env)
    files = [name for name, _mtime in json.loads(cache_file(sandbox).read_text())["key"]["files"]]
    assert lk_core.cli.root.__file__ in files
