"""The documentation site: the generated CLI reference, and the strict mkdocs build.

The build tests need mkdocs and mkdocs-material (``nox -s docs`` installs
them); they are skipped where mkdocs is not installed.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import cli_reference
import click
import pytest

ROOT = Path(__file__).resolve().parents[2]
NEEDS_MKDOCS = pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None,
    reason="mkdocs and mkdocs-material are not installed (nox -s docs installs them)",
)


@pytest.fixture(scope="module")
def group() -> click.Group:
    return cli_reference.build_group()


@pytest.fixture(scope="module")
def reference(group: click.Group) -> str:
    return cli_reference.render(group)


def walk(group: click.Group, path: str, ctx: click.Context):
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        sub_ctx = click.Context(command, info_name=name, parent=ctx)
        yield f"{path} {name}", command, sub_ctx
        if isinstance(command, click.Group):
            yield from walk(command, f"{path} {name}", sub_ctx)


def test_the_reference_covers_every_command_and_option(group: click.Group, reference: str) -> None:
    ctx = click.Context(group, info_name="lk", **group.context_settings)
    seen = 0
    for path, command, sub_ctx in walk(group, "lk", ctx):
        seen += 1
        anchor = path.replace(" ", "-")
        assert f" {path} {{#{anchor}}}\n" in reference, path
        usage = f"{path} {' '.join(command.collect_usage_pieces(sub_ctx))}"
        assert f"```text\n{usage}\n```" in reference, usage
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                for opt in param.opts:
                    assert opt in reference, (path, opt)
    assert seen >= 15  # run, ps, stop, logs, rm, inspect, wait, exec, shell, cp, ...


def test_the_reference_is_built_from_the_real_commands(reference: str) -> None:
    for path in ("lk run", "lk ps", "lk exec", "lk version", "lk completion", "lk plugins"):
        assert f"## {path} {{#" in reference
    assert "`-p, --publish [IP:]HOST:GUEST[/PROTO]`" in reference
    assert "`--format [table|json]`: Output format." in reference
    assert "example-status" not in reference  # plugins outside the repository stay out


def test_help_text_becomes_markdown() -> None:
    text = "Boot IMAGE.\n\n\b\nExamples:\n  lk run -d x.iso\n\nSee *this* <now>_ok.\f hidden"
    assert cli_reference.help_markdown(text) == (
        "Boot IMAGE.\n\n```text\nExamples:\n  lk run -d x.iso\n```\n\nSee \\*this\\* &lt;now>\\_ok."
    )


def mkdocs_build(config_dir: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=config_dir,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(site.parent), "NO_MKDOCS_2_WARNING": "1"},
    )


@NEEDS_MKDOCS
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    result = mkdocs_build(ROOT, tmp_path / "site")
    assert result.returncode == 0, result.stderr
    cli_page = (tmp_path / "site" / "reference" / "cli" / "index.html").read_text()
    assert "lk run [OPTIONS]" in cli_page and "lk templates render [OPTIONS] NAME" in cli_page
    guide = (tmp_path / "site" / "plugins" / "guide" / "index.html").read_text()
    assert "ExampleHypervisor" in guide and "request_shutdown" in guide
    assert "--8&lt;--" not in guide  # every snippet was found and included


@NEEDS_MKDOCS
def test_a_stale_hook_reference_fails_the_strict_build(tmp_path: Path) -> None:
    """A copy of the repository's docs whose hook reference lost a section."""
    copy = tmp_path / "repo"
    copy.mkdir()
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", copy / "docs")
    for name in ("lk_core", "tests"):  # what the snippets include
        (copy / name).symlink_to(ROOT / name)
    hooks = copy / "docs" / "plugins" / "hooks.md"
    text = hooks.read_text()
    start = text.index("## `open_state_store`")
    end = text.index("## `register_commands`")
    hooks.write_text(text[:start] + text[end:])

    result = mkdocs_build(copy, tmp_path / "site")
    assert result.returncode != 0
    assert "open_state_store: not documented" in result.stderr
