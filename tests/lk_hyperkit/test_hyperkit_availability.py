"""When hyperkit is available, and the reasons given when it is not."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from lk_hyperkit.hypervisor import HyperkitHypervisor

MakeHypervisor = Callable[..., HyperkitHypervisor]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="checks the real Linux answer")
def test_unavailable_on_this_linux_machine() -> None:
    availability = HyperkitHypervisor().availability()
    assert not availability.available
    assert availability.reason == "requires macOS (this is linux)"


def test_unavailable_on_other_platforms(make_hv: MakeHypervisor) -> None:
    availability = make_hv(platform="win32").availability()
    assert availability.reason == "requires macOS (this is win32)"


def test_available_on_darwin_with_hyperkit_on_path(
    make_hv: MakeHypervisor, hyperkit_binary: Path
) -> None:
    availability = make_hv().availability()
    assert availability.available, availability.reason
    assert availability.reason == ""
    assert availability.details["binary"] == str(hyperkit_binary)
    assert availability.details["network"] == "none (no vpnkit socket found)"
    assert "not set" in availability.details["firmware"]
    assert "deprecated" in availability.details["note"]


def test_details_show_vpnkit_and_firmware(
    make_hv: MakeHypervisor, vpnkit_socket: Path, firmware: Path
) -> None:
    details = (
        make_hv(LK_VPNKIT_SOCKET=str(vpnkit_socket), LK_HYPERKIT_FIRMWARE=str(firmware))
        .availability()
        .details
    )
    assert details["network"] == f"vpnkit ({vpnkit_socket})"
    assert details["firmware"] == str(firmware)


def test_not_found_on_darwin(make_hv: MakeHypervisor, tmp_path: Path) -> None:
    availability = make_hv(PATH=str(tmp_path / "empty")).availability()
    assert not availability.available
    assert availability.reason == "hyperkit not found (set LK_HYPERKIT or install it)"


def test_lk_hyperkit_must_be_executable(make_hv: MakeHypervisor, tmp_path: Path) -> None:
    plain = tmp_path / "hyperkit-not-executable"
    plain.write_text("")
    availability = make_hv(LK_HYPERKIT=str(plain)).availability()
    assert not availability.available
    assert availability.reason == f"LK_HYPERKIT={plain} is not an executable hyperkit"


def test_lk_hyperkit_can_name_a_command_on_path(
    make_hv: MakeHypervisor, hyperkit_binary: Path
) -> None:
    docker_name = hyperkit_binary.with_name("com.docker.hyperkit")
    docker_name.symlink_to(hyperkit_binary)
    availability = make_hv(LK_HYPERKIT="com.docker.hyperkit").availability()
    assert availability.available
    assert availability.details["binary"] == str(docker_name)


def test_unavailable_on_apple_silicon(make_hv: MakeHypervisor) -> None:
    availability = make_hv(machine="arm64").availability()
    assert not availability.available
    assert "x86-only" in availability.reason and "qemu" in availability.reason


def test_defaults_are_read_at_call_time(
    monkeypatch: pytest.MonkeyPatch, hyperkit_binary: Path
) -> None:
    hv = HyperkitHypervisor()
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    monkeypatch.setenv("PATH", str(hyperkit_binary.parent))
    monkeypatch.delenv("LK_HYPERKIT", raising=False)
    availability = hv.availability()
    assert availability.available
    assert availability.details["binary"] == str(hyperkit_binary)
