"""Tests for lk_qemu.accel: choosing KVM/HVF/TCG."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from lk_core.errors import UsageError
from lk_qemu.accel import ACCELERATORS, ENV_ACCEL, choose_accelerator, validate_accelerator


@pytest.fixture
def host(tmp_path: Path) -> dict[str, Path]:
    """Fake /dev/kvm and /sys/module/kvm_pvm locations (absent until created)."""
    return {"kvm_device": tmp_path / "kvm", "kvm_pvm_module": tmp_path / "kvm_pvm"}


def linux(host: dict[str, Path], **kwargs: Any) -> tuple[str, str]:
    kwargs.setdefault("environ", {})
    return choose_accelerator(
        kwargs.pop("requested", None),
        platform="linux",
        kvm_device=host["kvm_device"],
        kvm_pvm_module=host["kvm_pvm_module"],
        **kwargs,
    )


def test_no_dev_kvm_means_tcg(host: dict[str, Path]) -> None:
    accel, reason = linux(host)
    assert accel == "tcg"
    assert reason == f"{host['kvm_device']} not found"


def test_usable_dev_kvm_means_kvm(host: dict[str, Path]) -> None:
    host["kvm_device"].touch(mode=0o600)
    assert linux(host) == ("kvm", f"{host['kvm_device']} is usable")


def test_kvm_pvm_is_refused(host: dict[str, Path]) -> None:
    host["kvm_device"].touch(mode=0o600)
    host["kvm_pvm_module"].mkdir()
    assert linux(host) == (
        "tcg",
        f"{host['kvm_device']} is kvm-pvm, which cannot boot a stock kernel",
    )


def test_dev_kvm_without_permission(host: dict[str, Path]) -> None:
    host["kvm_device"].touch()
    accel, reason = linux(host, read_write_ok=lambda path: False)
    assert accel == "tcg"
    assert "not readable and writable" in reason
    assert "kvm" in reason


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read and write anything")
def test_dev_kvm_without_permission_for_real(host: dict[str, Path]) -> None:
    host["kvm_device"].touch(mode=0o400)
    assert linux(host)[0] == "tcg"


def test_probe_errors_mean_tcg(host: dict[str, Path]) -> None:
    def broken(path: Path) -> bool:
        return False

    assert linux(host, exists=broken)[0] == "tcg"


def test_macos_means_hvf(host: dict[str, Path]) -> None:
    assert choose_accelerator(
        None, environ={}, platform="darwin", kvm_device=host["kvm_device"]
    ) == (
        "hvf",
        "macOS Hypervisor.framework",
    )


def test_other_systems_mean_tcg(host: dict[str, Path]) -> None:
    accel, reason = choose_accelerator(
        None, environ={}, platform="win32", kvm_device=host["kvm_device"]
    )
    assert accel == "tcg"
    assert "win32" in reason


@pytest.mark.parametrize("value", ["kvm", "KVM", " tcg ", "hvf", "whpx"])
def test_explicit_request_wins(host: dict[str, Path], value: str) -> None:
    host["kvm_device"].touch()
    host["kvm_pvm_module"].mkdir()
    accel, reason = linux(host, requested=value, environ={ENV_ACCEL: "tcg"})
    assert accel == value.strip().lower()
    assert reason == "requested with --accel"


def test_environment_overrides_detection(host: dict[str, Path]) -> None:
    assert linux(host, environ={ENV_ACCEL: "KVM"}) == ("kvm", f"set by ${ENV_ACCEL}")
    assert linux(host, requested="", environ={ENV_ACCEL: "tcg"}) == (
        "tcg",
        f"set by ${ENV_ACCEL}",
    )


def test_blank_environment_is_ignored(host: dict[str, Path]) -> None:
    assert linux(host, environ={ENV_ACCEL: "  "})[0] == "tcg"


def test_bad_explicit_value(host: dict[str, Path]) -> None:
    with pytest.raises(UsageError) as info:
        linux(host, requested="xen")
    message = str(info.value)
    assert (
        message
        == "unknown QEMU accelerator 'xen' from --accel: expected one of kvm, hvf, tcg, whpx"
    )
    assert info.value.exit_code == 2


def test_bad_environment_value(host: dict[str, Path]) -> None:
    with pytest.raises(UsageError, match=f"\\${ENV_ACCEL}"):
        linux(host, environ={ENV_ACCEL: "kvm:tcg"})


def test_validate_accelerator() -> None:
    assert ACCELERATORS == ("kvm", "hvf", "tcg", "whpx")
    assert validate_accelerator(" HVF", "x") == "hvf"


def test_this_host() -> None:
    # Whatever this machine is, the answer is valid and explained.
    accel, reason = choose_accelerator(environ={})
    assert accel in ACCELERATORS
    assert reason
    if Path("/sys/module/kvm_pvm").exists():
        assert accel == "tcg"
