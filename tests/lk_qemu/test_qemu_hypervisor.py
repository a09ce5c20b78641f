"""Tests for lk_qemu.hypervisor and lk_qemu.plugin."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from lk_core.errors import HypervisorError, UsageError
from lk_core.hypervisor import Hypervisor
from lk_core.model import Container
from lk_qemu.hypervisor import (
    QemuHypervisor,
    default_binary_name,
    find_binary,
    host_arch,
)
from qemu_helpers import make_options, values_of

from lk_qemu import plugin


def fake_binary(folder: Path, name: str = "qemu-system-x86_64") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def fake_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty PATH folder (QEMU not installed); tests add fake binaries to it."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    monkeypatch.delenv("LK_QEMU", raising=False)
    monkeypatch.delenv("LK_QEMU_ACCEL", raising=False)
    return folder


def test_implements_the_protocol() -> None:
    hypervisor = QemuHypervisor()
    assert isinstance(hypervisor, Hypervisor)
    assert hypervisor.name == "qemu"
    assert hypervisor.priority == 10
    assert hypervisor.formats == {"iso", "qcow2", "vmdk", "raw", "kernel+initrd"}
    assert hypervisor.description


def test_plugin_registers_the_hypervisor() -> None:
    (hypervisor,) = plugin.register_hypervisors()
    assert isinstance(hypervisor, QemuHypervisor)


def test_entry_point_is_installed() -> None:
    (ep,) = [ep for ep in entry_points(group="lk") if ep.name == "qemu"]
    assert ep.value == "lk_qemu.plugin"
    assert ep.load() is plugin


def test_lk_core_finds_it() -> None:
    from lk_core.plugins import new_plugins

    plugins = new_plugins()
    assert isinstance(plugins.get_hypervisor("QEMU"), QemuHypervisor)


def test_plugin_import_is_light() -> None:
    # What importing the plugin adds on top of lk_core's own start-up.
    code = (
        "import sys, lk_core.hookspecs, lk_core.errors\n"
        "before = set(sys.modules)\n"
        "import lk_qemu.plugin\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    added = set(out.stdout.split())
    assert {"lk_qemu.plugin", "lk_qemu.hypervisor", "lk_qemu.accel"} <= added
    heavy = {"lk_qemu.argv", "lk_qemu.qmp", "lk_core.model", "lk_core.formats", "attrs"}
    heavy |= {"subprocess", "socket", "json", "hashlib", "shlex"}
    assert not heavy & added


# -- finding the binary ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("machine", "arch"),
    [("x86_64", "x86_64"), ("AMD64", "x86_64"), ("arm64", "aarch64"), ("aarch64", "aarch64")],
)
def test_host_arch(machine: str, arch: str) -> None:
    assert host_arch(machine) == arch
    assert default_binary_name(machine) == f"qemu-system-{arch}"


def test_unknown_machine_falls_back_to_x86_64() -> None:
    assert host_arch("mips") == "x86_64"


def test_unavailable_without_binary(fake_path: Path) -> None:
    availability = QemuHypervisor(machine="x86_64").availability()
    assert not availability.available
    assert availability.reason == (
        "qemu-system-x86_64 not found on PATH "
        "(install qemu: apt install qemu-system-x86 / brew install qemu)"
    )


def test_unavailable_on_arm_names_the_arm_binary(fake_path: Path) -> None:
    reason = QemuHypervisor(machine="arm64").availability().reason
    assert reason.startswith("qemu-system-aarch64 not found on PATH")
    assert "qemu-system-arm" in reason


def test_available_with_binary(fake_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = fake_binary(fake_path)
    monkeypatch.setenv("LK_QEMU_ACCEL", "tcg")
    availability = QemuHypervisor(machine="x86_64").availability()
    assert availability.available
    assert availability.details == {
        "binary": str(binary),
        "accelerator": "tcg (set by $LK_QEMU_ACCEL)",
    }


def test_available_reports_detected_accelerator(fake_path: Path) -> None:
    fake_binary(fake_path)
    details = QemuHypervisor(machine="x86_64").availability().details
    accel, _, reason = details["accelerator"].partition(" ")
    assert accel in ("kvm", "tcg", "hvf")
    assert reason.startswith("(") and reason.endswith(")")
    if Path("/sys/module/kvm_pvm").exists():
        assert details["accelerator"] == (
            "tcg (/dev/kvm is kvm-pvm, which cannot boot a stock kernel)"
        )


def test_availability_runs_no_subprocess(fake_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_binary(fake_path)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("availability() must not start processes")

    monkeypatch.setattr(subprocess, "Popen", forbidden)
    assert QemuHypervisor(machine="x86_64").availability().available


def test_bad_accel_environment_makes_it_unavailable(
    fake_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_binary(fake_path)
    monkeypatch.setenv("LK_QEMU_ACCEL", "bogus")
    availability = QemuHypervisor(machine="x86_64").availability()
    assert not availability.available
    assert "LK_QEMU_ACCEL" in availability.reason


def test_lk_qemu_overrides_the_binary(fake_path: Path, tmp_path: Path) -> None:
    other = fake_binary(tmp_path / "elsewhere", "my-qemu")
    assert find_binary({"LK_QEMU": str(other)}, "x86_64") == (str(other), "")
    fake_binary(fake_path, "qemu-custom")
    assert find_binary({"LK_QEMU": "qemu-custom"}, "x86_64")[0] == str(fake_path / "qemu-custom")


def test_lk_qemu_missing(fake_path: Path) -> None:
    binary, reason = find_binary({"LK_QEMU": "/nope/qemu"}, "x86_64")
    assert binary is None
    assert reason == "$LK_QEMU=/nope/qemu is not an executable found on PATH"
    availability = QemuHypervisor(environ={"LK_QEMU": "/nope/qemu"}).availability()
    assert not availability.available
    assert availability.reason == reason


def test_find_binary_uses_which() -> None:
    seen: list[str] = []

    def which(name: str) -> str | None:
        seen.append(name)
        return "/opt/" + name

    assert find_binary({}, "arm64", which) == ("/opt/qemu-system-aarch64", "")
    assert seen == ["qemu-system-aarch64"]


# -- build_command ------------------------------------------------------------------------


def kernel_image(folder: Path, cmdline: str | None = "console=tty0 quiet") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lk,x-kernel").write_bytes(b"k")
    (folder / "lk,x-initrd.img").write_bytes(b"i")
    if cmdline is not None:
        (folder / "lk,x-cmdline").write_text(cmdline + "\n")
    return folder / "lk,x"


def test_build_command_uses_binary_and_accel(fake_path: Path) -> None:
    binary = fake_binary(fake_path)
    hypervisor = QemuHypervisor(environ={"PATH": str(fake_path)}, machine="x86_64")
    argv = hypervisor.build_command(make_options(options={"accel": "kvm"}))
    assert argv[0] == str(binary)
    assert values_of(argv, "-accel") == ["kvm"]
    assert values_of(argv, "-cpu") == ["host"]
    argv = QemuHypervisor(environ={"LK_QEMU_ACCEL": "tcg"}).build_command(make_options())
    assert values_of(argv, "-accel") == ["tcg"]


def test_build_command_without_binary(fake_path: Path) -> None:
    with pytest.raises(HypervisorError, match="not found on PATH"):
        QemuHypervisor(machine="x86_64").build_command(make_options())


def test_build_command_bad_accel(fake_path: Path) -> None:
    fake_binary(fake_path)
    with pytest.raises(UsageError, match="--accel"):
        QemuHypervisor().build_command(make_options(options={"accel": "fast"}))


def test_aarch64_binary_builds_virt_machine(fake_path: Path) -> None:
    fake_binary(fake_path, "qemu-system-aarch64")
    argv = QemuHypervisor(machine="arm64", environ={"LK_QEMU_ACCEL": "tcg"}).build_command(
        make_options()
    )
    assert values_of(argv, "-machine") == ["virt"]


@pytest.mark.parametrize("given", ["lk,x", "lk,x-kernel", "lk,x-initrd.img"])
def test_build_command_kernel_initrd(fake_path: Path, tmp_path: Path, given: str) -> None:
    fake_binary(fake_path)
    prefix = kernel_image(tmp_path / "img, 1")
    argv = QemuHypervisor().build_command(
        make_options(format="kernel+initrd", image=prefix.with_name(given))
    )
    assert values_of(argv, "-kernel") == [str(tmp_path / "img, 1" / "lk,x-kernel")]
    assert values_of(argv, "-initrd") == [str(tmp_path / "img, 1" / "lk,x-initrd.img")]
    assert values_of(argv, "-append") == ["console=tty0 quiet console=ttyS0"]


def test_build_command_kernel_initrd_without_cmdline(fake_path: Path, tmp_path: Path) -> None:
    fake_binary(fake_path)
    prefix = kernel_image(tmp_path, cmdline=None)
    argv = QemuHypervisor().build_command(make_options(format="kernel+initrd", image=prefix))
    assert values_of(argv, "-append") == ["console=ttyS0"]


def test_build_command_kernel_initrd_missing(fake_path: Path, tmp_path: Path) -> None:
    fake_binary(fake_path)
    with pytest.raises(HypervisorError, match=r"NAME-initrd\.img"):
        QemuHypervisor().build_command(
            make_options(format="kernel+initrd", image=tmp_path / "nothing")
        )


# -- request_shutdown ----------------------------------------------------------------------


def test_request_shutdown_without_vm(tmp_path: Path) -> None:
    container = Container(id="abcd1234", image="/x.iso", name="web")
    with pytest.raises(HypervisorError) as info:
        QemuHypervisor().request_shutdown(container, tmp_path)
    message = str(info.value)
    assert message.startswith("cannot ask container web to shut down: no QMP socket at")
    assert "\n" not in message
