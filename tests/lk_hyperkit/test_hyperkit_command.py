"""The hyperkit command line, as data: every format, option and refusal."""

from __future__ import annotations

import logging
import socket
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from lk_core.errors import HypervisorError, UsageError
from lk_core.model import HypervisorOptions, PortMapping, Protocol, VolumeMapping
from lk_hyperkit.hypervisor import (
    LAUNCHER,
    QCOW_CONFIG,
    HyperkitHypervisor,
    HyperkitPlan,
    qcow2_disk,
    vm_uuid,
    vpnkit_port_spec,
    with_serial_console,
)

MakeOptions = Callable[..., HypervisorOptions]
MakeHypervisor = Callable[..., HyperkitHypervisor]


def values(args: tuple[str, ...] | list[str], flag: str) -> list[str]:
    """Every value given to ``flag`` in ``args``."""
    return [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == flag]


def slots(args: tuple[str, ...] | list[str]) -> dict[str, str]:
    """PCI slot -> "emulation,config" of every ``-s``."""
    result: dict[str, str] = {}
    for value in values(args, "-s"):
        slot, _, device = value.partition(",")
        assert slot not in result, f"slot {slot} used twice"
        result[slot] = device
    return result


def firmware(args: tuple[str, ...]) -> str:
    (value,) = values(args, "-f")
    return value


# -- the fixed part ------------------------------------------------------------
def test_base_arguments(make_hv: MakeHypervisor, make_options: MakeOptions) -> None:
    options = make_options()
    plan = make_hv().plan(options)
    args = plan.args
    assert args[:2] == ("-A", "-u")
    assert values(args, "-m") == ["1024M"]
    assert values(args, "-c") == ["1"]
    assert values(args, "-F") == [str(options.runtime_dir / "hyperkit.pid")]
    assert values(args, "-U") == [vm_uuid("0123abcd")]
    devices = slots(args)
    assert devices["0:0"] == "hostbridge"
    assert devices["31"] == "lpc"
    assert devices["5"] == "virtio-rnd"
    assert values(args, "-l") == [
        f"com1,autopty={options.runtime_dir / 'tty'},log={options.runtime_dir / 'console-ring'}"
    ]
    assert args[-2] == "-f"  # the firmware comes last
    assert plan.pidfile == options.runtime_dir / "hyperkit.pid"
    assert plan.tty == options.runtime_dir / "tty"
    assert plan.console_log == options.console_log


@pytest.mark.parametrize(("memory", "cpus"), [(512, 1), (2048, 2), (16384, 16)])
def test_memory_and_cpus(
    make_hv: MakeHypervisor, make_options: MakeOptions, memory: int, cpus: int
) -> None:
    args = make_hv().plan(make_options(memory=memory, cpus=cpus)).args
    assert values(args, "-m") == [f"{memory}M"]
    assert values(args, "-c") == [str(cpus)]


@pytest.mark.parametrize("cpus", [0, 17, 64])
def test_cpu_count_outside_hyperkits_range_is_refused(
    make_hv: MakeHypervisor, make_options: MakeOptions, cpus: int
) -> None:
    with pytest.raises(HypervisorError, match="1 to 16 CPUs"):
        make_hv().plan(make_options(cpus=cpus))


def test_memory_must_be_positive(make_hv: MakeHypervisor, make_options: MakeOptions) -> None:
    with pytest.raises(HypervisorError, match="memory"):
        make_hv().plan(make_options(memory=0))


def test_uuid_is_stable_and_per_container(
    make_hv: MakeHypervisor, make_options: MakeOptions
) -> None:
    first = make_hv().plan(make_options()).uuid
    again = make_hv().plan(make_options()).uuid
    other = make_hv().plan(make_options(id="feedbeef")).uuid
    assert first == again == vm_uuid("0123abcd")
    assert other != first
    parsed = uuid.UUID(first)
    assert parsed.version == 5
    assert str(parsed) == first


def test_build_command_runs_the_console_launcher_then_hyperkit(
    make_hv: MakeHypervisor, make_options: MakeOptions, hyperkit_binary: Path
) -> None:
    options = make_options()
    hv = make_hv()
    argv = hv.build_command(options)
    plan = hv.plan(options)
    split = argv.index("--")
    assert argv[:3] == [sys.executable, "-I", str(LAUNCHER)]
    launcher_options = argv[3:split]
    assert values(launcher_options, "--console-log") == [str(options.console_log)]
    assert values(launcher_options, "--tty") == [str(options.runtime_dir / "tty")]
    assert values(launcher_options, "--pidfile") == [str(options.runtime_dir / "hyperkit.pid")]
    assert argv[split + 1] == str(hyperkit_binary)
    assert tuple(argv[split + 2 :]) == plan.args
    assert plan.hyperkit_argv() == argv[split + 1 :]
    assert LAUNCHER.is_file()


def test_build_command_is_data_only(make_hv: MakeHypervisor, make_options: MakeOptions) -> None:
    options = make_options()
    before = sorted(options.runtime_dir.iterdir())
    make_hv().build_command(options)
    assert sorted(options.runtime_dir.iterdir()) == before
    assert not options.console_log.exists()


def test_hyperkit_binary_from_lk_hyperkit(
    make_hv: MakeHypervisor, make_options: MakeOptions, hyperkit_binary: Path, tmp_path: Path
) -> None:
    other = tmp_path / "custom" / "com.docker.hyperkit"
    other.parent.mkdir()
    other.write_bytes(hyperkit_binary.read_bytes())
    other.chmod(0o755)
    plan = make_hv(LK_HYPERKIT=str(other)).plan(make_options())
    assert plan.hyperkit == str(other)


def test_missing_hyperkit_binary_is_an_error(
    make_hv: MakeHypervisor, make_options: MakeOptions
) -> None:
    with pytest.raises(HypervisorError, match="hyperkit not found"):
        make_hv(PATH="/nonexistent").plan(make_options())


# -- kernel+initrd -------------------------------------------------------------
def test_kexec_boot_appends_serial_console_without_quotes(
    make_hv: MakeHypervisor, make_options: MakeOptions, kernel_image: Path
) -> None:
    value = firmware(make_hv().plan(make_options()).args)
    kernel = kernel_image
    initrd = kernel_image.with_name("lk-initrd.img")
    assert value == f"kexec,{kernel},{initrd},console=tty0 page_poison=1 console=ttyS0"
    assert '"' not in value and "'" not in value  # there is no shell: quotes would reach the kernel
    assert not slots(make_hv().plan(make_options()).args).get("2")  # no disk


def test_kexec_cmdline_keeps_existing_serial_console_and_commas(
    make_hv: MakeHypervisor, make_options: MakeOptions, kernel_image: Path
) -> None:
    kernel_image.with_name("lk-cmdline").write_text("console=ttyS0,115200 foo=a,b\n")
    value = firmware(make_hv().plan(make_options()).args)
    # hyperkit splits at the first three commas only; the rest is the command line.
    kind, kernel, initrd, cmdline = value.split(",", 3)
    assert (kind, kernel) == ("kexec", str(kernel_image))
    assert initrd == str(kernel_image.with_name("lk-initrd.img"))
    assert cmdline == "console=ttyS0,115200 foo=a,b"


def test_kexec_without_cmdline_file(
    make_hv: MakeHypervisor, make_options: MakeOptions, kernel_image: Path
) -> None:
    kernel_image.with_name("lk-cmdline").unlink()
    assert firmware(make_hv().plan(make_options()).args).endswith(",console=ttyS0")


def test_kexec_from_prefix_and_initrd_paths(
    make_hv: MakeHypervisor, make_options: MakeOptions, kernel_image: Path
) -> None:
    prefix = kernel_image.with_name("lk")
    initrd = kernel_image.with_name("lk-initrd.img")
    expected = firmware(make_hv().plan(make_options()).args)
    assert firmware(make_hv().plan(make_options(image=prefix)).args) == expected
    assert firmware(make_hv().plan(make_options(image=initrd)).args) == expected


def test_kexec_with_missing_initrd(
    make_hv: MakeHypervisor, make_options: MakeOptions, kernel_image: Path
) -> None:
    kernel_image.with_name("lk-initrd.img").unlink()
    with pytest.raises(HypervisorError, match="kernel and initrd"):
        make_hv().plan(make_options())


@pytest.mark.parametrize(
    ("cmdline", "expected"),
    [
        ("", "console=ttyS0"),
        ("  quiet  ", "quiet console=ttyS0"),
        ("console=tty0", "console=tty0 console=ttyS0"),
        ("console=ttyS0", "console=ttyS0"),
        ("console=ttyS0,115200n8 quiet", "console=ttyS0,115200n8 quiet"),
        ("console=ttyS01", "console=ttyS01 console=ttyS0"),
    ],
)
def test_with_serial_console(cmdline: str, expected: str) -> None:
    assert with_serial_console(cmdline) == expected


# -- ISO, raw, qcow2: UEFI only ------------------------------------------------
def test_iso_without_firmware_is_refused_with_an_explanation(
    make_hv: MakeHypervisor, make_options: MakeOptions, tmp_path: Path
) -> None:
    iso = tmp_path / "linuxkit.iso"
    iso.write_bytes(b"iso")
    with pytest.raises(HypervisorError) as caught:
        make_hv().plan(make_options(image=iso, format="iso"))
    message = str(caught.value)
    for words in (
        "no BIOS",
        "iso-bios",
        "iso-efi",
        "LK_HYPERKIT_FIRMWARE",
        "firmware=",
        "kernel+initrd",
        "--hypervisor qemu",
    ):
        assert words in message


def test_iso_with_firmware_from_environment(
    make_hv: MakeHypervisor, make_options: MakeOptions, tmp_path: Path, firmware: Path
) -> None:
    iso = tmp_path / "linuxkit-efi.iso"
    iso.write_bytes(b"iso")
    args = (
        make_hv(LK_HYPERKIT_FIRMWARE=str(firmware)).plan(make_options(image=iso, format="iso")).args
    )
    assert values(args, "-f") == [f"bootrom,{firmware},,"]
    assert slots(args)["2"] == f"ahci-cd,{iso}"


def test_firmware_option_overrides_environment(
    make_hv: MakeHypervisor, make_options: MakeOptions, tmp_path: Path, firmware: Path
) -> None:
    iso = tmp_path / "efi.iso"
    iso.write_bytes(b"iso")
    other = tmp_path / "other.fd"
    other.write_bytes(b"fd")
    args = (
        make_hv(LK_HYPERKIT_FIRMWARE=str(firmware))
        .plan(make_options(image=iso, format="iso", options={"firmware": str(other)}))
        .args
    )
    assert values(args, "-f") == [f"bootrom,{other},,"]


def test_missing_firmware_file_is_an_error(
    make_hv: MakeHypervisor, make_options: MakeOptions, tmp_path: Path
) -> None:
    iso = tmp_path / "efi.iso"
    iso.write_bytes(b"iso")
    with pytest.raises(HypervisorError, match="is not a file"):
        make_hv(LK_HYPERKIT_FIRMWARE=str(tmp_path / "nope.fd")).plan(
            make_options(image=iso, format="iso")
        )


def test_firmware_is_ignored_for_kernel_initrd(
    make_hv: MakeHypervisor, make_options: MakeOptions, firmware: Path
) -> None:
    value = globals()["firmware"](
        make_hv(LK_HYPERKIT_FIRMWARE=str(firmware)).plan(make_options()).args
    )
    assert value.startswith("kexec,")


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_disk_without_firmware_is_refused(
    make_hv: MakeHypervisor, make_options: MakeOptions, tmp_path: Path, fmt: str
) -> None:
    disk = tmp_path / f"disk.{fmt}"
    disk.write_bytes(b"disk")
    with pytest.raises(HypervisorError, match=f"cannot boot the {fmt} disk .* no BIOS"):
        make_hv().plan(make_options(image=disk, format=fmt))


def test_raw_disk(
    make_hv: MakeHypervisor, make_options: MakeOptions, tmp_path: Path, firmware: Path
) -> None:
    disk = tmp_path / "linuxkit-efi.img"
    disk.write_bytes(b"disk")
    args = (
        make_hv(LK_HYPERKIT_FIRMWARE=str(firmware))
        .plan(make_options(image=disk, format="raw"))
        .args
    )
    assert slots(args)["2"] == f"virtio-blk,{disk}"
    assert values(args, "-f") == [f"bootrom,{firmware},,"]


def test_qcow2_disk_uses_hyperkits_qcow_backend(
    make_hv: MakeHypervisor, make_options: MakeOptions, tmp_path: Path, firmware: Path
) -> None:
    disk = tmp_path / "linuxkit.qcow2"
    disk.write_bytes(b"QFI\xfb")
    args = (
        make_hv(LK_HYPERKIT_FIRMWARE=str(firmware))
        .plan(make_options(image=disk, format="qcow2"))
        .args
    )
    assert slots(args)["2"] == (
        f"virtio-blk,file://{disk}?sync=os&buffered=1,format=qcow,qcow-config={QCOW_CONFIG}"
    )
    assert QCOW_CONFIG == (
        "discard=true;compact_after_unmaps=262144;keep_erased=262144;runtime_asserts=false"
    )


def test_qcow2_path_is_percent_encoded() -> None:
    config = qcow2_disk(Path("/Users/me/VMs, old/my disk%1?#.qcow2"))
    uri, *rest = config.split(",")
    assert uri == "file:///Users/me/VMs%2C%20old/my%20disk%251%3F%23.qcow2?sync=os&buffered=1"
    assert rest == ["format=qcow", f"qcow-config={QCOW_CONFIG}"]


def test_vmdk_is_refused_with_a_conversion_hint(
    make_hv: MakeHypervisor, make_options: MakeOptions, tmp_path: Path, firmware: Path
) -> None:
    disk = tmp_path / "disk.vmdk"
    disk.write_bytes(b"KDMV")
    hv = make_hv(LK_HYPERKIT_FIRMWARE=str(firmware))
    with pytest.raises(HypervisorError, match="cannot read VMDK") as caught:
        hv.plan(make_options(image=disk, format="vmdk"))
    assert "qemu-img convert -O qcow2" in str(caught.value)
    assert "vmdk" not in hv.formats


def test_explain_format(make_hv: MakeHypervisor) -> None:
    hv = make_hv()
    assert hv.formats == frozenset({"kernel+initrd", "iso", "raw", "qcow2"})
    for fmt in hv.formats:
        assert hv.explain_format(fmt) is None
    assert "qemu-img convert" in (hv.explain_format("vmdk") or "")
    assert "cannot boot 'vhdx' images" in (hv.explain_format("vhdx") or "")


# -- metadata CD ---------------------------------------------------------------
def test_metadata_cd_has_its_own_slot(make_hv: MakeHypervisor, make_options: MakeOptions) -> None:
    options = make_options()
    metadata = options.runtime_dir / "metadata.iso"
    with_cd = make_hv().plan(make_options(metadata_iso=metadata)).args
    without = make_hv().plan(options).args
    assert slots(with_cd)["4"] == f"ahci-cd,{metadata}"
    assert "4" not in slots(without)


def test_iso_and_metadata_cd_together(
    make_hv: MakeHypervisor, make_options: MakeOptions, tmp_path: Path, firmware: Path
) -> None:
    iso = tmp_path / "efi.iso"
    iso.write_bytes(b"iso")
    metadata = tmp_path / "meta.iso"
    args = (
        make_hv(LK_HYPERKIT_FIRMWARE=str(firmware))
        .plan(make_options(image=iso, format="iso", metadata_iso=metadata))
        .args
    )
    devices = slots(args)
    assert devices["2"] == f"ahci-cd,{iso}"
    assert devices["4"] == f"ahci-cd,{metadata}"


# -- network -------------------------------------------------------------------
def test_vpnkit_from_environment(
    make_hv: MakeHypervisor, make_options: MakeOptions, vpnkit_socket: Path
) -> None:
    plan = make_hv(LK_VPNKIT_SOCKET=str(vpnkit_socket)).plan(make_options())
    assert plan.network == "vpnkit"
    assert plan.vpnkit_socket == str(vpnkit_socket)
    assert slots(plan.args)["3:0"] == f"virtio-vpnkit,path={vpnkit_socket},uuid={plan.uuid}"
    assert plan.warnings == ()


def test_vpnkit_from_option(
    make_hv: MakeHypervisor, make_options: MakeOptions, vpnkit_socket: Path
) -> None:
    plan = make_hv().plan(make_options(options={"vpnkit": str(vpnkit_socket)}))
    assert plan.network == "vpnkit"
    assert slots(plan.args)["3:0"].startswith(f"virtio-vpnkit,path={vpnkit_socket},")


def test_vpnkit_from_docker_for_mac(
    make_hv: MakeHypervisor, make_options: MakeOptions, short_tmp: Path
) -> None:
    data = short_tmp / "Library/Containers/com.docker.docker/Data"
    data.mkdir(parents=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(data / "vpnkit.eth.sock"))
    try:
        plan = make_hv(HOME=str(short_tmp)).plan(make_options())
    finally:
        server.close()
    assert plan.network == "vpnkit"
    assert plan.vpnkit_socket == str(data / "vpnkit.eth.sock")


def test_named_vpnkit_socket_that_is_not_a_socket_is_an_error(
    make_hv: MakeHypervisor, make_options: MakeOptions, tmp_path: Path
) -> None:
    plain = tmp_path / "not-a-socket"
    plain.write_text("")
    hv = make_hv(LK_VPNKIT_SOCKET=str(plain))
    with pytest.raises(HypervisorError, match="is vpnkit running"):
        hv.plan(make_options())
    assert hv.availability().details["network"] == "none (no vpnkit socket found)"
    assert hv.plan(make_options(options={"network": "none"})).network == "none"


def test_no_vpnkit_and_not_root_means_no_network_and_a_warning(
    make_hv: MakeHypervisor, make_options: MakeOptions
) -> None:
    plan = make_hv(euid=501).plan(make_options())
    assert plan.network == "none"
    assert "3:0" not in slots(plan.args)
    (warning,) = plan.warnings
    assert "no network" in warning and "LK_VPNKIT_SOCKET" in warning


def test_no_vpnkit_as_root_uses_vmnet(make_hv: MakeHypervisor, make_options: MakeOptions) -> None:
    plan = make_hv(euid=0).plan(make_options())
    assert plan.network == "vmnet"
    assert slots(plan.args)["3:0"] == "virtio-net"
    assert plan.warnings == ()


def test_network_vmnet_without_root_warns(
    make_hv: MakeHypervisor, make_options: MakeOptions, vpnkit_socket: Path
) -> None:
    plan = make_hv(LK_VPNKIT_SOCKET=str(vpnkit_socket)).plan(
        make_options(options={"network": "vmnet"})
    )
    assert slots(plan.args)["3:0"] == "virtio-net"
    assert any("needs root" in w for w in plan.warnings)


def test_network_none(
    make_hv: MakeHypervisor, make_options: MakeOptions, vpnkit_socket: Path
) -> None:
    hv = make_hv(LK_VPNKIT_SOCKET=str(vpnkit_socket), LK_HYPERKIT_NETWORK="none")
    plan = hv.plan(make_options())
    assert plan.network == "none"
    assert "3:0" not in slots(plan.args)
    assert plan.warnings == ()


def test_network_vpnkit_required_but_missing(
    make_hv: MakeHypervisor, make_options: MakeOptions
) -> None:
    with pytest.raises(HypervisorError, match="no vpnkit socket"):
        make_hv(euid=0).plan(make_options(options={"network": "vpnkit"}))


def test_unknown_network(make_hv: MakeHypervisor, make_options: MakeOptions) -> None:
    with pytest.raises(UsageError, match="unknown hyperkit network 'tap'"):
        make_hv().plan(make_options(options={"network": "tap"}))


# -- ports ---------------------------------------------------------------------
@pytest.mark.parametrize("with_vpnkit", [True, False])
def test_published_ports_are_refused(
    make_hv: MakeHypervisor,
    make_options: MakeOptions,
    vpnkit_socket: Path,
    with_vpnkit: bool,
) -> None:
    env = {"LK_VPNKIT_SOCKET": str(vpnkit_socket)} if with_vpnkit else {}
    options = make_options(ports=(PortMapping(8080, 80),))
    hv = make_hv(**env)
    with pytest.raises(HypervisorError, match="cannot publish ports") as caught:
        hv.build_command(options)
    assert "127.0.0.1:8080->80/tcp" in str(caught.value)
    assert "--hypervisor qemu" in str(caught.value)
    # The plan still records what was asked for, for whoever can set up the forward.
    assert hv.plan(options).forwards == (PortMapping(8080, 80),)


@pytest.mark.parametrize("with_vpnkit", [True, False])
def test_ssh_port_is_recorded_and_warned_about(
    make_hv: MakeHypervisor,
    make_options: MakeOptions,
    vpnkit_socket: Path,
    caplog: pytest.LogCaptureFixture,
    with_vpnkit: bool,
) -> None:
    env = {"LK_VPNKIT_SOCKET": str(vpnkit_socket)} if with_vpnkit else {}
    hv = make_hv(**env)
    options = make_options(ssh_port=2222)
    with caplog.at_level(logging.WARNING, logger="lk_hyperkit.hypervisor"):
        argv = hv.build_command(options)
    assert argv
    assert any("cannot forward host port 2222" in r.getMessage() for r in caplog.records)
    plan = hv.plan(options)
    assert plan.forwards == (PortMapping(2222, 22),)
    assert "2222" not in " ".join(plan.args)  # nothing is (falsely) forwarded


def test_vpnkit_port_spec() -> None:
    assert vpnkit_port_spec(PortMapping(8080, 80), "192.168.65.3") == (
        "tcp:127.0.0.1:8080:tcp:192.168.65.3:80"
    )
    udp = PortMapping(5353, 53, host_ip="0.0.0.0", protocol=Protocol.UDP)
    assert vpnkit_port_spec(udp, "192.168.65.3") == "udp:0.0.0.0:5353:udp:192.168.65.3:53"


# -- refusals ------------------------------------------------------------------
def test_volumes_are_refused(make_hv: MakeHypervisor, make_options: MakeOptions) -> None:
    volume = VolumeMapping("/Users/me/src", "/src", tag="lk0")
    with pytest.raises(HypervisorError, match=r"cannot share host folders.*9P"):
        make_hv().plan(make_options(volumes=(volume,)))


def test_unknown_options_are_refused(make_hv: MakeHypervisor, make_options: MakeOptions) -> None:
    with pytest.raises(UsageError, match=r"accel \(--accel is for QEMU\)"):
        make_hv().plan(make_options(options={"accel": "hvf"}))
    with pytest.raises(UsageError, match="firmwre"):
        make_hv().plan(make_options(options={"firmwre": "x"}))


# -- commas: hyperkit's parser cannot take them ----------------------------------
def test_comma_in_raw_disk_path_is_refused(
    make_hv: MakeHypervisor, make_options: MakeOptions, tmp_path: Path, firmware: Path
) -> None:
    disk = tmp_path / "disk,ro.img"
    disk.write_bytes(b"disk")
    with pytest.raises(HypervisorError, match="comma"):
        make_hv(LK_HYPERKIT_FIRMWARE=str(firmware)).plan(make_options(image=disk, format="raw"))


def test_comma_in_iso_path_is_refused(
    make_hv: MakeHypervisor, make_options: MakeOptions, tmp_path: Path, firmware: Path
) -> None:
    iso = tmp_path / "a,b.iso"
    iso.write_bytes(b"iso")
    with pytest.raises(HypervisorError, match=r"ISO image .*comma"):
        make_hv(LK_HYPERKIT_FIRMWARE=str(firmware)).plan(make_options(image=iso, format="iso"))


def test_comma_in_kernel_path_is_refused(
    make_hv: MakeHypervisor, make_options: MakeOptions, tmp_path: Path
) -> None:
    folder = tmp_path / "v1,2"
    folder.mkdir()
    (folder / "lk-kernel").write_bytes(b"k")
    (folder / "lk-initrd.img").write_bytes(b"i")
    with pytest.raises(HypervisorError, match=r"kernel .*comma"):
        make_hv().plan(make_options(image=folder / "lk-kernel"))


def test_comma_in_firmware_path_is_refused(
    make_hv: MakeHypervisor, make_options: MakeOptions, tmp_path: Path
) -> None:
    fw = tmp_path / "UEFI,new.fd"
    fw.write_bytes(b"fd")
    iso = tmp_path / "efi.iso"
    iso.write_bytes(b"iso")
    with pytest.raises(HypervisorError, match=r"firmware .*comma"):
        make_hv(LK_HYPERKIT_FIRMWARE=str(fw)).plan(make_options(image=iso, format="iso"))


def test_comma_in_metadata_path_is_refused(
    make_hv: MakeHypervisor, make_options: MakeOptions, tmp_path: Path
) -> None:
    with pytest.raises(HypervisorError, match=r"metadata CD .*comma"):
        make_hv().plan(make_options(metadata_iso=tmp_path / "meta,data.iso"))


def test_comma_in_runtime_folder_is_refused(
    make_hv: MakeHypervisor, make_options: MakeOptions, tmp_path: Path
) -> None:
    runtime = tmp_path / "lk,home" / "run"
    runtime.mkdir(parents=True)
    with pytest.raises(HypervisorError, match=r"runtime folder .*comma"):
        make_hv().plan(make_options(runtime_dir=runtime))


def test_comma_in_vpnkit_socket_is_refused(
    make_hv: MakeHypervisor, make_options: MakeOptions, short_tmp: Path
) -> None:
    path = short_tmp / "a,b.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    try:
        with pytest.raises(HypervisorError, match=r"vpnkit socket .*comma"):
            make_hv(LK_VPNKIT_SOCKET=str(path)).plan(make_options())
    finally:
        server.close()


def test_comma_in_console_log_is_fine(
    make_hv: MakeHypervisor, make_options: MakeOptions, tmp_path: Path
) -> None:
    log = tmp_path / "logs,old" / "x.log"
    argv = make_hv().build_command(make_options(console_log=log))
    assert argv[argv.index("--console-log") + 1] == str(log)  # its own argv element


def test_plan_is_a_value(make_hv: MakeHypervisor, make_options: MakeOptions) -> None:
    plan = make_hv().plan(make_options())
    assert isinstance(plan, HyperkitPlan)
    assert plan == make_hv().plan(make_options())
