"""``lk run --template`` end to end: render, build (fake linuxkit), boot under QEMU, exec.

The fake linuxkit (tests/lk_templates/fake_linuxkit.py) checks its arguments
and the rendered YAML like the real tool, then outputs the project's real
test image, so the whole path boots a real VM.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

FAKE_LINUXKIT = Path(__file__).resolve().parents[1] / "lk_templates" / "fake_linuxkit.py"


@pytest.fixture
def linuxkit(tmp_path: Path, test_image_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    wrapper = tmp_path / "bin" / "linuxkit"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_LINUXKIT}" "$@"\n')
    wrapper.chmod(0o755)
    calls = tmp_path / "linuxkit-calls.jsonl"
    monkeypatch.setenv("LK_LINUXKIT", str(wrapper))
    monkeypatch.setenv("FAKE_LINUXKIT_LOG", str(calls))
    monkeypatch.setenv("FAKE_LINUXKIT_IMAGES", str(test_image_dir))
    return calls


def test_run_template_builds_once_boots_and_uses_template_defaults(
    run_lk, qemu_env, linuxkit, tmp_path
):
    key = qemu_env / "config" / "id_ed25519.pub"
    variables = [
        "--var",
        "SSH_KEY=ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample me@host",
        "--var",
        "HOSTNAME=dev-box",
    ]
    first = run_lk("run", "-d", "--wait", "--template", "core-dev", *variables, check=True)
    cid = first.stdout.strip().splitlines()[0]
    record = json.loads(run_lk("inspect", cid, check=True).stdout)
    assert record["format"] == "iso"
    assert (record["memory"], record["cpus"]) == (2048, 2)  # core-dev's MEMORY and CPUS
    assert run_lk("exec", cid, "--", "echo", "booted from a template", check=True).stdout == (
        "booted from a template\n"
    )
    assert key.exists()

    # Same template and variables: built once, reused; -m/-c given by the user win.
    second = run_lk(
        "run", "-d", "-m", "512", "-c", "1", "--template", "core-dev", *variables, check=True
    )
    cid2 = second.stdout.strip().splitlines()[0]
    record2 = json.loads(run_lk("inspect", cid2, check=True).stdout)
    assert record2["image"] == record["image"]
    assert (record2["memory"], record2["cpus"]) == (512, 1)
    calls = [json.loads(line) for line in linuxkit.read_text().splitlines()]
    assert len(calls) == 1 and "iso-bios" in calls[0]

    run_lk("rm", "-f", cid, cid2, check=True)


def test_run_template_errors_are_one_line(run_lk, qemu_env, linuxkit):
    missing = run_lk("run", "-d", "--template", "core-dev")
    assert missing.returncode != 0 and "SSH_KEY" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    both = run_lk("run", "-d", "--template", "core-dev", "image.iso")
    assert both.returncode == 2 and "give an IMAGE or --template NAME, not both" in both.stderr
    orphan = run_lk("run", "-d", "--var", "A=b", "image.iso")
    assert orphan.returncode == 2 and "--var and --var-file need --template" in orphan.stderr
    bad_memory = run_lk(
        "run", "-d", "--template", "core-dev", "--var", "SSH_KEY=k", "--var", "MEMORY=abc"
    )
    assert bad_memory.returncode == 2 and "invalid memory size 'abc'" in bad_memory.stderr
    assert len(bad_memory.stderr.strip().splitlines()) == 1
    empty_key = run_lk("run", "-d", "--template", "core-dev", "--var", "SSH_KEY=")
    assert (
        empty_key.returncode == 1 and "SSH_KEY is required and cannot be empty" in empty_key.stderr
    )
    assert not linuxkit.exists()  # all refused before linuxkit ran
    unknown = run_lk("run", "-d", "--template", "../etc/passwd", "--var", "A=b")
    assert unknown.returncode != 0 and "Traceback" not in unknown.stderr
    no_tool = run_lk(
        "run",
        "-d",
        "--template",
        "core-dev",
        "--var",
        "SSH_KEY=k",
        env={"LK_LINUXKIT": "", "PATH": "/usr/bin:/bin"},
    )
    assert no_tool.returncode != 0 and "linuxkit" in no_tool.stderr
    assert (
        not (qemu_env / "containers.json").exists()
        or json.loads((qemu_env / "containers.json").read_text())["containers"] == {}
    )
