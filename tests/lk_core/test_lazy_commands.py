"""Commands added lazily: imported when used, replaced like any command, errors in one line."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from lk_core.builtins.commands import CORE_COMMANDS
from lk_core.cli.root import LkGroup
from lk_core.errors import PluginError

MODULES = ("containers", "disks", "ssh", "info", "completion", "everyday", "checkpoints")


def test_the_table_names_every_command_the_modules_define() -> None:
    """Each name leads to a command of that name (or an alias of one in the table), and
    every top-level command of lk_core.cli's modules is in the table."""
    listed = {}
    for name, target in CORE_COMMANDS.items():
        module_name, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        assert isinstance(command, click.Command), name
        assert command.name in CORE_COMMANDS, f"{name} leads to {command.name}"
        listed[id(command)] = command
    defined: dict[int, click.Command] = {}
    for short in MODULES:
        for value in vars(importlib.import_module(f"lk_core.cli.{short}")).values():
            if isinstance(value, click.Command):
                defined[id(value)] = value
    subcommands = {
        id(sub)
        for c in defined.values()
        if isinstance(c, click.Group)
        for sub in c.commands.values()
    }
    top_level = {key: c.name for key, c in defined.items() if key not in subcommands}
    assert sorted(top_level.values()) == sorted(c.name for c in listed.values())


def _group() -> LkGroup:
    @click.group(cls=LkGroup)
    def root() -> None:
        """Root."""

    return root  # type: ignore[return-value]


def test_a_lazy_command_is_imported_only_when_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "lazy_hello.py").write_text(
        "import click\n\n@click.command('hello')\ndef hello():\n    '''Greet.'''\n"
        "    click.echo('hi')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    group = _group()
    group.add_lazy_command("hello", "lazy_hello:hello")
    assert "lazy_hello" not in sys.modules
    assert group.list_commands(click.Context(group)) == ["hello"]
    assert "lazy_hello" not in sys.modules
    result = CliRunner().invoke(group, ["hello"])
    assert result.output == "hi\n"
    assert "lazy_hello" in sys.modules


def test_later_commands_replace_earlier_ones_lazy_or_not() -> None:
    group = _group()
    group.add_lazy_command("ps", CORE_COMMANDS["ps"])

    @click.command("ps")
    def mine() -> None:
        click.echo("mine")

    group.add_command(mine)
    assert CliRunner().invoke(group, ["ps"]).output == "mine\n"
    group.add_lazy_command("ps", "lk_core.cli.containers:ps_command")
    assert (
        group.get_command(click.Context(group), "ps")
        is importlib.import_module("lk_core.cli.containers").ps_command
    )


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_such_module_lk:cmd", "ModuleNotFoundError"),
        ("lk_core.cli.containers:no_such_command", "AttributeError"),
        ("lk_core.cli.containers:_manager", "is not a Click command"),
    ],
)
def test_a_broken_lazy_command_is_one_plugin_error(target: str, message: str) -> None:
    group = _group()
    group.add_lazy_command("broken", target)
    command = group.get_command(click.Context(group), "broken")
    assert command is not None
    assert "cannot be loaded" in command.get_short_help_str(200)
    with pytest.raises(PluginError, match=message) as caught:
        group.main(["broken", "--any", "arg"], standalone_mode=False)
    assert "\n" not in str(caught.value) and "broken" in str(caught.value)


def test_a_broken_lazy_command_through_lk_is_one_line(
    run_lk: object, sandbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "lazy_broken_plugin.py").write_text(
        "from lk_core import hookimpl\n\n@hookimpl\ndef register_commands(cli):\n"
        "    cli.add_lazy_command('oops', 'lazy_missing_module:oops')\n"
    )
    env = {
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ['PYTHONPATH']}",
        "LK_PLUGIN_MODULES": "fake_hypervisor,lazy_broken_plugin",
    }
    result = run_lk("oops", env=env)  # type: ignore[operator]
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "lk: error: command 'oops' cannot be loaded from lazy_missing_module:oops: "
        "ModuleNotFoundError: No module named 'lazy_missing_module'"
    ]
    listing = run_lk("--help", env=env)  # type: ignore[operator]
    assert listing.returncode == 0
    assert "oops" in listing.stdout and "cannot be loaded" in listing.stdout
