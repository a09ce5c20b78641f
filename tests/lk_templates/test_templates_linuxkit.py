"""lk_templates.linuxkit: finding linuxkit, building into the cache, pruning (fake linuxkit)."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from cli_support import FakeTerminal
from lk_core.formats import KERNEL_INITRD, detect_builtin, find_kernel_initrd
from lk_templates.linuxkit import (
    LinuxKitError,
    build_image,
    choose_output_format,
    default_build_cache_dir,
    find_linuxkit,
    prune_unused_builds,
)

from lk_templates import registry


def apply_template(name: str, variables: dict[str, str]) -> str:
    from lk_core.plugins import get_plugins

    return registry.apply_template(get_plugins().template_sources(), name, variables)


QEMU = frozenset({"iso", "qcow2", "vmdk", "raw", "kernel+initrd"})
HYPERKIT = frozenset({"kernel+initrd", "iso", "raw", "qcow2"})
KEY = "ssh-ed25519 AAAA... me@host"

YAML = """\
kernel:
  image: linuxkit/kernel:6.6.13
  cmdline: "console=ttyS0"
init:
  - linuxkit/init:v1
"""


def calls(log: Path) -> list[list[str]]:
    """The argv of every fake linuxkit run so far."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


# ---------------------------------------------------------------------------
# find_linuxkit
# ---------------------------------------------------------------------------


def test_find_linuxkit_from_environment(fake_linuxkit: Path) -> None:
    assert find_linuxkit() == Path(os.environ["LK_LINUXKIT"])


def test_find_linuxkit_on_path(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "pathbin"
    folder.mkdir()
    tool = folder / "linuxkit"
    tool.write_text("#!/bin/sh\nexit 0\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(folder))
    assert find_linuxkit() == tool


def test_lk_linuxkit_may_name_a_command(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "pathbin"
    folder.mkdir()
    tool = folder / "linuxkit-1.5"
    tool.write_text("#!/bin/sh\nexit 0\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(folder))
    monkeypatch.setenv("LK_LINUXKIT", "linuxkit-1.5")
    assert find_linuxkit() == tool


def test_missing_linuxkit_says_how_to_install(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(LinuxKitError) as info:
        find_linuxkit()
    message = str(info.value)
    assert "linuxkit not found" in message
    assert "go install github.com/linuxkit/linuxkit/src/cmd/linuxkit@latest" in message
    assert "brew install linuxkit/linuxkit/linuxkit" in message
    assert "releases" in message and "\n" not in message
    with pytest.raises(LinuxKitError, match="linuxkit not found"):
        build_image(YAML, QEMU, tmp_path / "cache")


def test_bad_lk_linuxkit(workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LK_LINUXKIT", str(tmp_path / "nope"))
    with pytest.raises(LinuxKitError, match="is not an executable file"):
        find_linuxkit()
    plain = tmp_path / "plain"
    plain.write_text("")
    plain.chmod(0o644)
    monkeypatch.setenv("LK_LINUXKIT", str(plain))
    with pytest.raises(LinuxKitError, match="is not an executable file"):
        find_linuxkit()


# ---------------------------------------------------------------------------
# output formats
# ---------------------------------------------------------------------------


def test_choose_output_format() -> None:
    assert choose_output_format(QEMU).name == "iso-bios"
    assert choose_output_format(HYPERKIT, "kernel+initrd").name == "kernel+initrd"
    assert choose_output_format(frozenset({"kernel+initrd", "raw"})).name == "kernel+initrd"
    assert choose_output_format(frozenset({"raw"})).name == "raw-bios"
    assert choose_output_format(frozenset({"qcow2"})).name == "qcow2-bios"
    assert choose_output_format(frozenset({"vmdk"})).name == "vmdk"
    # A preference the hypervisor cannot boot is ignored.
    assert choose_output_format(frozenset({"iso"}), "kernel+initrd").name == "iso-bios"
    with pytest.raises(LinuxKitError, match="boots no format"):
        choose_output_format(frozenset({"exotic"}))
    with pytest.raises(LinuxKitError, match="unknown linuxkit output format"):
        choose_output_format(QEMU, "tar")


# ---------------------------------------------------------------------------
# build_image and its cache
# ---------------------------------------------------------------------------


def test_build_iso_runs_linuxkit_like_the_real_tool(
    fake_linuxkit: Path, tmp_path: Path, test_image_dir: Path | None
) -> None:
    cache = tmp_path / "cache"
    image = build_image(YAML, QEMU, cache)
    assert image.suffix == ".iso" and image.is_file()
    assert detect_builtin(image) == "iso"
    if test_image_dir is not None:  # the project's real, bootable test image
        assert image.read_bytes() == (test_image_dir / "lk-test.iso").read_bytes()
    [argv] = calls(fake_linuxkit)
    assert argv[:2] == ["build", "--format"]
    assert argv[2] == "iso-bios"
    assert argv[3] == "--dir" and argv[5] == "--name"
    name = argv[6]
    assert argv[7] == str(Path(argv[4]) / f"{name}.yml")
    assert image.name == f"{name}.iso"
    assert image.parent.parent == cache
    # The rendered YAML and a record of the build are kept next to the image.
    assert (image.parent / f"{name}.yml").read_text() == YAML
    info = json.loads((image.parent / "build.json").read_text())
    assert info["format"] == "iso-bios"
    assert not [p for p in cache.iterdir() if p.name.startswith(".tmp-")]


def test_cache_hit_does_not_run_linuxkit(fake_linuxkit: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = build_image(YAML, QEMU, cache)
    second = build_image(YAML, QEMU, cache)
    assert first == second
    assert len(calls(fake_linuxkit)) == 1
    # Changed content: a new build. Same content, other format: a new build.
    changed = build_image(YAML + "onboot: []\n", QEMU, cache)
    assert changed != first and len(calls(fake_linuxkit)) == 2
    kernel = build_image(YAML, frozenset({"kernel+initrd"}), cache)
    assert len(calls(fake_linuxkit)) == 3
    assert build_image(YAML + "onboot: []\n", QEMU, cache) == changed
    assert build_image(YAML, frozenset({"kernel+initrd"}), cache) == kernel
    assert len(calls(fake_linuxkit)) == 3


def test_cache_hit_works_without_linuxkit(
    fake_linuxkit: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    image = build_image(YAML, QEMU, cache)
    monkeypatch.setenv("LK_LINUXKIT", str(tmp_path / "gone"))
    assert build_image(YAML, QEMU, cache) == image


def test_build_kernel_initrd_returns_the_prefix(
    fake_linuxkit: Path, tmp_path: Path, test_image_dir: Path | None
) -> None:
    image = build_image(YAML, HYPERKIT, tmp_path / "cache", output_format="kernel+initrd")
    assert not image.exists()  # a prefix, as LinuxKit names it
    found = find_kernel_initrd(image)
    assert found is not None and found.cmdline is not None
    assert detect_builtin(image) == KERNEL_INITRD
    assert calls(fake_linuxkit)[0][2] == "kernel+initrd"
    if test_image_dir is not None:
        assert found.kernel.read_bytes() == (test_image_dir / "lk-test-kernel").read_bytes()
        assert "console=ttyS0" in found.read_cmdline()


def test_default_cache_is_under_lk_home(fake_linuxkit: Path, tmp_path: Path) -> None:
    assert default_build_cache_dir() == tmp_path / "lk-home" / "cache" / "builds"
    image = build_image(YAML, QEMU)
    assert image.parent.parent == default_build_cache_dir()


def test_failure_is_one_line_with_linuxkit_last_error(
    fake_linuxkit: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("FAKE_LINUXKIT_FAIL", "Failed to pull linuxkit/kernel:6.6.13: denied")
    with pytest.raises(LinuxKitError) as info:
        build_image(YAML, QEMU, cache)
    message = str(info.value)
    assert message.startswith("linuxkit build failed (exit 1): ")
    assert "Failed to pull linuxkit/kernel:6.6.13: denied" in message
    assert "\n" not in message
    assert [p for p in cache.iterdir() if not p.name.startswith(".lock-")] == []
    # Once linuxkit works again the same YAML builds.
    monkeypatch.delenv("FAKE_LINUXKIT_FAIL")
    assert build_image(YAML, QEMU, cache).is_file()


def test_linuxkit_rejecting_the_yaml(fake_linuxkit: Path, tmp_path: Path) -> None:
    with pytest.raises(LinuxKitError, match="kernel and init are required"):
        build_image("services: []\n", QEMU, tmp_path / "cache")


def test_missing_output_is_an_error(
    fake_linuxkit: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_LINUXKIT_NO_OUTPUT", "1")
    with pytest.raises(LinuxKitError, match=r"did not produce lk-[0-9a-f]{12}\.iso"):
        build_image(YAML, QEMU, tmp_path / "cache")


def test_timeout(fake_linuxkit: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LINUXKIT_SLEEP", "5")
    with pytest.raises(LinuxKitError, match=r"timed out after 0\.5 s"):
        build_image(YAML, QEMU, tmp_path / "cache", timeout=0.5)


def test_incomplete_cache_entry_is_rebuilt(fake_linuxkit: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    image = build_image(YAML, QEMU, cache)
    image.unlink()
    assert build_image(YAML, QEMU, cache) == image and image.is_file()
    assert len(calls(fake_linuxkit)) == 2


def test_concurrent_builds_of_the_same_yaml_run_linuxkit_once(
    fake_linuxkit: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_LINUXKIT_SLEEP", "0.5")
    cache = tmp_path / "cache"
    results: list[Path] = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            results.append(build_image(YAML, QEMU, cache))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=build) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert len(results) == 3 and len(set(results)) == 1
    assert len(calls(fake_linuxkit)) == 1


def test_rendered_template_builds(fake_linuxkit: Path, tmp_path: Path, workspace: Path) -> None:
    rendered = apply_template("core-dev", {"SSH_KEY": KEY})
    image = build_image(rendered, QEMU, tmp_path / "cache")
    assert detect_builtin(image) == "iso"
    built_yaml = yaml.safe_load((image.parent / f"{image.stem}.yml").read_text())
    keys = next(f for f in built_yaml["files"] if f["path"] == "root/.ssh/authorized_keys")
    assert keys["contents"] == KEY + "\n"
    # Same variables again: nothing to build.
    assert build_image(apply_template("core-dev", {"SSH_KEY": KEY}), QEMU, tmp_path / "cache")
    assert len(calls(fake_linuxkit)) == 1


# ---------------------------------------------------------------------------
# prune_unused_builds
# ---------------------------------------------------------------------------


def test_prune_keeps_builds_in_use(fake_linuxkit: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    used = build_image(YAML, QEMU, cache)
    unused = build_image(YAML + "onboot: []\n", QEMU, cache)
    prefix = build_image(YAML, frozenset({"kernel+initrd"}), cache)
    removed = prune_unused_builds({str(used), str(prefix), "/elsewhere/image.iso"}, cache)
    assert removed == [unused.parent]
    assert used.is_file() and find_kernel_initrd(prefix) is not None
    assert not unused.parent.exists()
    # The last container using it is gone: the build goes too.
    assert sorted(prune_unused_builds({str(prefix)}, cache)) == [used.parent]
    assert prune_unused_builds(set(), cache) == [prefix.parent]
    assert [p for p in cache.iterdir() if not p.name.startswith(".")] == []
    # Pruned builds are rebuilt on demand.
    assert build_image(YAML, QEMU, cache) == used and used.is_file()


def test_prune_min_age_and_leftovers(fake_linuxkit: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    image = build_image(YAML, QEMU, cache)
    assert prune_unused_builds(set(), cache, min_age=3600) == []
    assert image.is_file()
    stale = cache / ".tmp-0123456789abcdef-xyz"
    stale.mkdir()
    fresh = cache / ".tmp-fedcba9876543210-abc"
    fresh.mkdir()
    old = time.time() - 7200
    os.utime(stale, (old, old))
    removed = prune_unused_builds({str(image)}, cache)
    assert removed == [stale]
    assert fresh.exists() and image.is_file()


def test_prune_missing_cache(tmp_path: Path) -> None:
    assert prune_unused_builds(set(), tmp_path / "never-created") == []


def test_fake_linuxkit_checks_its_arguments(tmp_path: Path) -> None:
    import subprocess

    fake = Path(__file__).with_name("fake_linuxkit.py")
    source = tmp_path / "x.yml"
    source.write_text(YAML)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAKE_LINUXKIT")}
        return subprocess.run(
            [sys.executable, str(fake), *args], capture_output=True, text=True, env=env
        )

    assert run("run", str(source)).returncode == 2
    assert run("build", "--bogus", "x", str(source)).returncode == 2
    assert run("build", "--format", "iso-bios", "--dir", str(tmp_path)).returncode == 2
    assert run("build", "--format", "tar", "--dir", str(tmp_path), "--name", "n", str(source))
    result = run("build", "-format=iso-bios", "-dir", str(tmp_path), "-name", "n", str(source))
    assert result.returncode == 0, result.stderr
    assert detect_builtin(tmp_path / "n.iso") == "iso"


@pytest.mark.parametrize("tty", [True, False])
def test_a_build_shows_linuxkit_progress_only_on_a_terminal(
    fake_linuxkit: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tty: bool
) -> None:
    terminal = FakeTerminal(tty)
    monkeypatch.setattr(sys, "stderr", terminal)
    image = build_image(YAML, QEMU, tmp_path / "cache", progress=True)
    assert image.is_file()
    if tty:
        assert "\r\x1b[Kbuilding with linuxkit:" in terminal.text
        assert "Create outputs:" in terminal.text or "Add init containers" in terminal.text
        assert terminal.text.endswith("\r\x1b[K")  # the line is erased at the end
    else:
        assert terminal.text == ""
    log = (image.parent / "build.log").read_text()
    assert "Extract kernel image" in log  # linuxkit's output is still kept whole


def test_no_progress_unless_asked(
    fake_linuxkit: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = FakeTerminal(True)
    monkeypatch.setattr(sys, "stderr", terminal)
    build_image(YAML, QEMU, tmp_path / "cache")
    assert terminal.text == ""


def test_a_failing_build_with_progress_is_one_line(
    fake_linuxkit: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stderr", FakeTerminal(True))
    monkeypatch.setenv("FAKE_LINUXKIT_FAIL", "pull access denied for linuxkit/kernel")
    with pytest.raises(LinuxKitError, match="pull access denied"):
        build_image(YAML, QEMU, tmp_path / "cache", progress=True)
