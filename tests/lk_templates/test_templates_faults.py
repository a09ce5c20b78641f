"""Faults found by hostile users (tracker issue 15), through the real command line.

5. A template file that is a symbolic link out of its folder was followed
   (``lk templates show`` printed /etc/passwd, or lk's private key through a
   workspace ``core-dev.yml``); a workspace template silently replaced a
   built-in one.
6. ``--var SSH_KEY=`` rendered an empty ``authorized_keys``; ``MEMORY=abc``
   rendered with exit status 0 and failed only after the build.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

Run = Callable[..., Any]
MINIMAL = "# {title}\nkernel:\n  image: linuxkit/kernel:6.6.13\ninit:\n  - linuxkit/init:v1\n"
SECRET = "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret material\n"


def one_line_error(result: Any, code: int = 1) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("lk: error: ")
    message: str = lines[0]
    return message


# ---------------------------------------------------------------------------
# 5: symbolic links out of the folder; shadowing built-in templates
# ---------------------------------------------------------------------------


def test_a_link_out_of_the_folder_is_refused(lk: Run, workspace_templates: Path) -> None:
    (workspace_templates / "passwd.yml").symlink_to("/etc/passwd")
    result = lk("templates", "show", "passwd")
    message = one_line_error(result)
    assert str(workspace_templates / "passwd.yml") in message
    assert "symbolic link" in message and "outside" in message
    assert "root:" not in result.stdout + result.stderr
    for command in (("vars", "passwd"), ("render", "passwd")):
        assert "symbolic link" in one_line_error(lk("templates", *command))


def test_a_workspace_link_to_lks_private_key_is_refused(
    lk: Run, workspace_templates: Path, tmp_path: Path
) -> None:
    key = tmp_path / "lk-home" / "config" / "id_ed25519"
    key.parent.mkdir(parents=True, exist_ok=True)
    key.write_text(SECRET)
    (workspace_templates / "core-dev.yml").symlink_to(key)
    result = lk("templates", "show", "core-dev")
    message = one_line_error(result)
    assert "core-dev.yml" in message and "symbolic link" in message
    assert "secret material" not in result.stdout + result.stderr
    listing = lk("templates", "list")
    assert listing.returncode == 0, listing.stderr
    assert "secret material" not in listing.stdout and "BEGIN OPENSSH" not in listing.stdout


def test_a_relative_link_that_climbs_out_is_refused(lk: Run, workspace_templates: Path) -> None:
    (workspace_templates.parent / "outside.yml").write_text(MINIMAL.format(title="Outside"))
    (workspace_templates / "sneaky.yml").symlink_to("../outside.yml")
    assert "symbolic link" in one_line_error(lk("templates", "show", "sneaky"))


def test_links_inside_the_folder_still_work(lk: Run, workspace_templates: Path) -> None:
    (workspace_templates / "real.yml").write_text(MINIMAL.format(title="Real"))
    (workspace_templates / "alias.yml").symlink_to("real.yml")
    shown = lk("templates", "show", "alias")
    assert shown.returncode == 0 and shown.stdout.startswith("# Real\n")


def test_a_linked_template_folder_is_fine(lk: Run, workspace: Path, tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles" / "templates"
    dotfiles.mkdir(parents=True)
    (dotfiles / "mine.yml").write_text(MINIMAL.format(title="Mine"))
    (workspace / ".lk").mkdir()
    (workspace / ".lk" / "templates").symlink_to(dotfiles)
    shown = lk("templates", "show", "mine")
    assert shown.returncode == 0 and shown.stdout.startswith("# Mine\n")


def test_list_says_when_a_workspace_template_replaces_a_built_in_one(
    lk: Run, workspace_templates: Path
) -> None:
    (workspace_templates / "core-dev.yml").write_text(MINIMAL.format(title="Not lk's"))
    result = lk("templates", "list")
    assert result.returncode == 0, result.stderr
    path = workspace_templates / "core-dev.yml"
    assert f"Note: core-dev from workspace ({path}) replaces the built-in core-dev." in (
        result.stdout
    )
    assert "server-php from" not in result.stdout
    # Using it says so on standard error, without changing the output.
    shown = lk("templates", "show", "core-dev")
    assert shown.stdout.startswith("# Not lk's\n")
    assert "comes from workspace" in shown.stderr and "not from embedded" in shown.stderr


def test_no_note_without_shadowing(lk: Run) -> None:
    result = lk("templates", "list")
    assert "Note:" not in result.stdout
    assert lk("templates", "show", "core-dev").stderr == ""


# ---------------------------------------------------------------------------
# 6: empty required values; '# lk:' values checked when rendering
# ---------------------------------------------------------------------------


def test_an_empty_required_value_is_refused(lk: Run) -> None:
    result = lk("templates", "render", "core-dev", "--var", "SSH_KEY=")
    message = one_line_error(result)
    assert "SSH_KEY is required and cannot be empty" in message
    assert result.stdout == ""


def test_an_empty_required_value_from_a_var_file_is_refused(lk: Run, workspace: Path) -> None:
    (workspace / "vars.env").write_text("SSH_KEY=\n")
    message = one_line_error(lk("templates", "render", "core-dev", "--var-file", "vars.env"))
    assert "SSH_KEY is required and cannot be empty" in message


def test_an_explicitly_optional_variable_may_be_empty(lk: Run, user_templates: Path) -> None:
    (user_templates / "opt.yml").write_text(
        MINIMAL.format(title="Optional") + 'files:\n  - path: etc/motd\n    contents: "${MOTD:-}"\n'
    )
    for args in ((), ("--var", "MOTD=")):
        result = lk("templates", "render", "opt", *args)
        assert result.returncode == 0, result.stderr
        assert yaml.safe_load(result.stdout)["files"][0]["contents"] == ""


def test_a_name_used_required_somewhere_is_required(lk: Run, user_templates: Path) -> None:
    (user_templates / "both.yml").write_text(
        MINIMAL.format(title="Both") + "files:\n  - path: a\n    contents: ${V:-}\n"
        "  - path: b\n    contents: ${V}\n"
    )
    assert "V is required" in one_line_error(lk("templates", "render", "both", "--var", "V="))


def test_bad_run_values_are_refused_at_render_time(lk: Run) -> None:
    key = "ssh-ed25519 AAAA... me@host"
    for var, expected in (
        ("MEMORY=abc", "invalid memory size 'abc'"),
        ("CPUS=lots", "invalid CPU count 'lots'"),
        ("DATA_SIZE=huge", "invalid disk size 'huge'"),
    ):
        result = lk("templates", "render", "core-dev", "--var", f"SSH_KEY={key}", "--var", var)
        message = one_line_error(result, 2)
        assert expected in message and "template 'core-dev'" in message
        assert result.stdout == ""


def test_bad_lk_directive_is_refused_at_render_time(lk: Run, user_templates: Path) -> None:
    (user_templates / "t.yml").write_text("# lk: memory=${MEM:-1024}\n" + MINIMAL.format(title="T"))
    message = one_line_error(lk("templates", "render", "t", "--var", "MEM=abc"), 2)
    assert "'# lk: memory='" in message and "invalid memory size 'abc'" in message
    assert lk("templates", "render", "t", "--var", "MEM=2G").returncode == 0
