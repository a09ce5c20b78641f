"""Tests for lk_qemu.argv: the QEMU command line as data."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lk_core.errors import HypervisorError, UsageError
from lk_core.model import PortMapping, Protocol, VolumeMapping
from lk_qemu.argv import (
    DISK_CACHE,
    OPTION_KEYS,
    SUPPORTED_FORMATS,
    DirectBoot,
    build_argv,
    console_socket_path,
    escape,
    kernel_cmdline,
    pidfile_path,
    qmp_socket_path,
    requested_accel,
    socket_path_limit,
    stable_mac,
)
from qemu_helpers import make_options, pairs, parse_option, split_option, values_of

QEMU = "/usr/bin/qemu-system-x86_64"
KERNEL = DirectBoot(Path("/img/lk-kernel"), Path("/img/lk-initrd.img"), "console=tty0 quiet")


def build(accel: str = "tcg", **overrides: Any) -> list[str]:
    direct_boot = overrides.pop("direct_boot", None)
    arch = str(overrides.pop("arch", "x86_64"))
    assert direct_boot is None or isinstance(direct_boot, DirectBoot)
    return build_argv(
        make_options(**overrides), binary=QEMU, accel=accel, arch=arch, direct_boot=direct_boot
    )


def devices(argv: list[str]) -> list[str]:
    return values_of(argv, "-device")


def drives(argv: list[str]) -> list[dict[str, str]]:
    return [parse_option(value) for value in values_of(argv, "-drive")]


def everything(**overrides: Any) -> list[str]:
    """An argv that uses every feature at once."""
    fields: dict[str, Any] = {
        "ssh_port": 2222,
        "ports": (
            PortMapping(8080, 80),
            PortMapping(9090, 90, "0.0.0.0"),
            PortMapping(5353, 53, "127.0.0.1", Protocol.UDP),
        ),
        "volumes": (VolumeMapping("/srv/data", "/data", False, "vol0"),),
        "metadata_iso": Path("/lk/run/abcd1234/metadata.iso"),
        "options": {"accel": "tcg", "qemu_args": "-rtc base=utc"},
    }
    fields.update(overrides)
    return build(**fields)


# -- the common part ----------------------------------------------------------


def test_common_arguments() -> None:
    argv = build(memory=512, cpus=2)
    assert argv[0] == QEMU
    got = pairs(argv)
    assert got[:16] == [
        ("-name", "lk-abcd1234"),
        ("-nodefaults", ""),
        ("-no-user-config", ""),
        ("-display", "none"),
        ("-machine", "q35"),
        ("-accel", "tcg"),
        ("-cpu", "max"),
        ("-m", "512"),
        ("-smp", "2"),
        ("-pidfile", "/lk/run/abcd1234/qemu.pid"),
        (
            "-chardev",
            "socket,id=console,path=/lk/run/abcd1234/console.sock,server=on,wait=off,"
            "logfile=/lk/logs/abcd1234.log,logappend=on",
        ),
        ("-serial", "chardev:console"),
        ("-chardev", "socket,id=qmp,path=/lk/run/abcd1234/qmp.sock,server=on,wait=off"),
        ("-mon", "chardev=qmp,mode=control"),
        ("-device", "virtio-rng-pci"),
        ("-netdev", "user,id=net0"),
    ]
    assert got[16] == ("-device", f"virtio-net-pci,netdev=net0,mac={stable_mac('abcd1234')}")


@pytest.mark.parametrize("fmt", sorted(SUPPORTED_FORMATS))
def test_never_nographic_or_stdio(fmt: str) -> None:
    argv = everything(format=fmt, image=Path("/img/x"), direct_boot=KERNEL)
    assert "-nographic" not in argv
    assert not any("stdio" in arg for arg in argv)
    assert values_of(argv, "-serial") == ["chardev:console"]
    assert values_of(argv, "-display") == ["none"]
    assert "-daemonize" not in argv


@pytest.mark.parametrize(
    ("accel", "cpu"), [("tcg", "max"), ("kvm", "host"), ("hvf", "host"), ("whpx", "max")]
)
def test_cpu_model_follows_accelerator(accel: str, cpu: str) -> None:
    argv = build(accel=accel)
    assert values_of(argv, "-accel") == [accel]
    assert values_of(argv, "-cpu") == [cpu]


def test_runtime_file_locations() -> None:
    runtime = Path("/lk/run/x")
    assert qmp_socket_path(runtime) == runtime / "qmp.sock"
    assert pidfile_path(runtime) == runtime / "qemu.pid"


# -- boot media per format ------------------------------------------------------


def test_iso_is_a_boot_cdrom() -> None:
    argv = build(format="iso", image=Path("/img/a.iso"))
    assert drives(argv) == [
        {"file": "/img/a.iso", "media": "cdrom", "if": "none", "id": "boot", "readonly": "on"}
    ]
    assert devices(argv)[-1] == "ide-cd,drive=boot,bus=ide.0,bootindex=0"
    assert "-kernel" not in argv
    assert "-boot" not in argv


@pytest.mark.parametrize("fmt", ["raw", "qcow2", "vmdk"])
def test_disks_use_virtio_blk_with_explicit_format(fmt: str) -> None:
    argv = build(format=fmt, image=Path(f"/img/disk.{fmt}"))
    assert drives(argv) == [
        {
            "file": f"/img/disk.{fmt}",
            "format": fmt,
            "if": "none",
            "id": "boot",
            "cache": DISK_CACHE,
        }
    ]
    assert devices(argv)[-1] == "virtio-blk-pci,drive=boot,bootindex=0"
    assert not any("ide-cd" in device for device in devices(argv))
    assert "-kernel" not in argv


def test_kernel_initrd_boots_directly() -> None:
    argv = build(format="kernel+initrd", image=Path("/img/lk"), direct_boot=KERNEL)
    assert values_of(argv, "-kernel") == ["/img/lk-kernel"]
    assert values_of(argv, "-initrd") == ["/img/lk-initrd.img"]
    assert values_of(argv, "-append") == ["console=tty0 quiet console=ttyS0"]
    assert "-drive" not in argv
    assert not any("bootindex" in device for device in devices(argv))


def test_kernel_initrd_paths_are_verbatim() -> None:
    # -kernel, -initrd, -append and -pidfile are plain arguments: QEMU takes
    # them as they are (doubling a comma would name another file).
    boot = DirectBoot(Path("/a,b c/k,1"), Path("/a,b c/i,1"), "x=1,2")
    argv = build(
        format="kernel+initrd",
        image=Path("/a,b c/k"),
        runtime_dir=Path("/r,1/abcd1234"),
        direct_boot=boot,
    )
    assert values_of(argv, "-kernel") == ["/a,b c/k,1"]
    assert values_of(argv, "-initrd") == ["/a,b c/i,1"]
    assert values_of(argv, "-append") == ["x=1,2 console=ttyS0"]
    assert values_of(argv, "-pidfile") == ["/r,1/abcd1234/qemu.pid"]


def test_kernel_initrd_without_files_is_an_error() -> None:
    with pytest.raises(HypervisorError, match="kernel\\+initrd"):
        build(format="kernel+initrd", image=Path("/img/lk"))


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("", "console=ttyS0"),
        ("   ", "console=ttyS0"),
        ("quiet", "quiet console=ttyS0"),
        ("console=tty0", "console=tty0 console=ttyS0"),
        ("console=ttyS0", "console=ttyS0"),
        ("console=ttyS0,115200n8 quiet", "console=ttyS0,115200n8 quiet"),
        (
            "console=tty0 console=ttyS0 console=ttyAMA0",
            "console=tty0 console=ttyS0 console=ttyAMA0",
        ),
        ("console=ttyS01", "console=ttyS01 console=ttyS0"),
        ("console=ttyS1", "console=ttyS1 console=ttyS0"),
        ("  a\tb\n", "a b console=ttyS0"),
    ],
)
def test_kernel_cmdline_gets_the_serial_console(given: str, expected: str) -> None:
    assert kernel_cmdline(given) == expected


def test_unknown_format_is_an_error() -> None:
    with pytest.raises(HypervisorError, match="'vhdx'"):
        build(format="vhdx")


# -- metadata CD and volumes ----------------------------------------------------------


def test_metadata_cd() -> None:
    argv = build(metadata_iso=Path("/lk/run/abcd1234/meta.iso"))
    assert drives(argv)[1] == {
        "file": "/lk/run/abcd1234/meta.iso",
        "media": "cdrom",
        "if": "none",
        "id": "metadata",
        "readonly": "on",
    }
    assert "ide-cd,drive=metadata,bus=ide.1" in devices(argv)


def test_metadata_cd_next_to_a_disk() -> None:
    argv = build(format="qcow2", image=Path("/img/d.qcow2"), metadata_iso=Path("/m.iso"))
    assert [d["id"] for d in drives(argv)] == ["boot", "metadata"]
    assert devices(argv)[-2:] == [
        "virtio-blk-pci,drive=boot,bootindex=0",
        "ide-cd,drive=metadata,bus=ide.1",
    ]


def test_no_metadata_cd_by_default() -> None:
    assert [d["id"] for d in drives(build())] == ["boot"]


def test_volumes() -> None:
    argv = build(
        volumes=(
            VolumeMapping("/srv/a", "/a", False, "data"),
            VolumeMapping("/srv/b", "/b", True, ""),
            VolumeMapping("/srv/c,d", "/c", True, "t,1"),
        )
    )
    assert [parse_option(v) for v in values_of(argv, "-fsdev")] == [
        {"": "local", "id": "fsdev0", "path": "/srv/a", "security_model": "none"},
        {
            "": "local",
            "id": "fsdev1",
            "path": "/srv/b",
            "security_model": "none",
            "readonly": "on",
        },
        {
            "": "local",
            "id": "fsdev2",
            "path": "/srv/c,d",
            "security_model": "none",
            "readonly": "on",
        },
    ]
    assert devices(argv)[-3:] == [
        "virtio-9p-pci,fsdev=fsdev0,mount_tag=data",
        "virtio-9p-pci,fsdev=fsdev1,mount_tag=lkvol1",
        "virtio-9p-pci,fsdev=fsdev2,mount_tag=t,,1",
    ]


def test_relative_volume_path_is_an_error() -> None:
    with pytest.raises(HypervisorError, match="absolute"):
        build(volumes=(VolumeMapping("srv", "/a"),))


# -- networking ---------------------------------------------------------------------


def netdev(argv: list[str]) -> list[str]:
    (value,) = values_of(argv, "-netdev")
    return split_option(value)


def test_ssh_forward_binds_loopback() -> None:
    assert netdev(build(ssh_port=2222)) == ["user", "id=net0", "hostfwd=tcp:127.0.0.1:2222-:22"]


def test_no_ssh_forward_without_a_port() -> None:
    assert netdev(build(ssh_port=0)) == ["user", "id=net0"]


def test_published_ports() -> None:
    argv = build(
        ssh_port=2200,
        ports=(
            PortMapping(8080, 80),
            PortMapping(8443, 443, "192.168.1.5"),
            PortMapping(5353, 53, "127.0.0.1", Protocol.UDP),
            PortMapping(6000, 6000, "0.0.0.0", Protocol.TCP),
        ),
    )
    assert netdev(argv)[2:] == [
        "hostfwd=tcp:127.0.0.1:2200-:22",
        "hostfwd=tcp:127.0.0.1:8080-:80",
        "hostfwd=tcp:192.168.1.5:8443-:443",
        "hostfwd=udp:127.0.0.1:5353-:53",
        "hostfwd=tcp:0.0.0.0:6000-:6000",
    ]


def test_empty_host_address_becomes_loopback() -> None:
    argv = build(ports=(PortMapping(8080, 80, ""), PortMapping(53, 53, " ", Protocol.UDP)))
    assert netdev(argv)[2:] == ["hostfwd=tcp:127.0.0.1:8080-:80", "hostfwd=udp:127.0.0.1:53-:53"]


@given(
    ports=st.lists(
        st.builds(
            PortMapping,
            host_port=st.integers(1, 65535),
            guest_port=st.integers(1, 65535),
            host_ip=st.sampled_from(["", "127.0.0.1", "10.1.2.3"]),
            protocol=st.sampled_from(list(Protocol)),
        ),
        max_size=4,
        unique_by=lambda p: (p.protocol, p.host_port),
    ),
    ssh_port=st.integers(0, 65535),
)
def test_no_forward_ever_has_an_empty_host_address(ports: list[PortMapping], ssh_port: int) -> None:
    if any(p.host_port == ssh_port and p.protocol == Protocol.TCP for p in ports):
        return
    for arg in everything(ports=tuple(ports), ssh_port=ssh_port):
        assert not re.search(r"hostfwd=(tcp|udp)?::", arg)
        for rule in re.findall(r"hostfwd=([^,]*)", arg):
            proto, ip, rest = rule.split(":", 2)
            assert proto in ("tcp", "udp")
            assert ip
            assert re.fullmatch(r"\d+-:\d+", rest)


@pytest.mark.parametrize("ip", ["::1", "localhost", "256.1.1.1", "1.2.3"])
def test_non_ipv4_host_address_is_an_error(ip: str) -> None:
    with pytest.raises(HypervisorError, match="IPv4"):
        build(ports=(PortMapping(8080, 80, ip),))


@pytest.mark.parametrize("port", [0, -1, 65536])
def test_bad_port_numbers_are_errors(port: int) -> None:
    with pytest.raises(HypervisorError, match="port number"):
        build(ports=(PortMapping(port, 80),))
    with pytest.raises(HypervisorError, match="port number"):
        build(ports=(PortMapping(8080, port),))
    if port:
        with pytest.raises(HypervisorError, match="port number"):
            build(ssh_port=port)


@pytest.mark.parametrize(
    "ports",
    [
        (PortMapping(8080, 80), PortMapping(8080, 81)),
        (PortMapping(8080, 80, "0.0.0.0"), PortMapping(8080, 81)),
        (PortMapping(8080, 80), PortMapping(8080, 81, "0.0.0.0")),
        (PortMapping(2222, 80),),
    ],
)
def test_a_host_port_forwarded_twice_is_an_error(ports: tuple[PortMapping, ...]) -> None:
    with pytest.raises(HypervisorError, match="forwarded twice"):
        build(ssh_port=2222, ports=ports)


def test_same_port_on_other_protocol_or_address_is_fine() -> None:
    argv = build(
        ssh_port=2222,
        ports=(
            PortMapping(2222, 22, "127.0.0.1", Protocol.UDP),
            PortMapping(2222, 23, "10.0.0.1"),
        ),
    )
    assert len(netdev(argv)) == 5


def test_mac_is_stable_unicast_and_locally_administered() -> None:
    mac = stable_mac("abcd1234")
    assert mac == stable_mac("abcd1234")
    assert re.fullmatch(r"02(:[0-9a-f]{2}){5}", mac)
    assert len({stable_mac(f"{i:08x}") for i in range(1000)}) == 1000


@given(st.text(min_size=1, max_size=20))
def test_any_id_gives_a_valid_mac(container_id: str) -> None:
    octets = [int(part, 16) for part in stable_mac(container_id).split(":")]
    assert len(octets) == 6
    assert octets[0] & 0b11 == 0b10  # unicast, locally administered


# -- validation ---------------------------------------------------------------------


def test_memory_minimum() -> None:
    assert values_of(build(memory=16), "-m") == ["16"]
    with pytest.raises(HypervisorError, match="at least 16 MB"):
        build(memory=15)


@pytest.mark.parametrize("cpus", [0, -1])
def test_cpu_minimum(cpus: int) -> None:
    with pytest.raises(HypervisorError, match="at least 1 CPU"):
        build(cpus=cpus)


@pytest.mark.parametrize("field", ["image", "console_log", "runtime_dir", "metadata_iso"])
def test_relative_paths_are_errors(field: str) -> None:
    # A relative file= value like "nbd:host:1" would be read as a QEMU protocol.
    with pytest.raises(HypervisorError, match="absolute"):
        build_argv(make_options(**{field: Path("nbd:localhost:10809")}), binary=QEMU, accel="tcg")


def test_relative_kernel_is_an_error() -> None:
    boot = DirectBoot(Path("k"), Path("/i"), "")
    with pytest.raises(HypervisorError, match="absolute"):
        build(format="kernel+initrd", direct_boot=boot)


def test_long_socket_path_is_an_error_that_suggests_lk_home() -> None:
    limit = socket_path_limit("linux")
    assert limit == 107
    assert socket_path_limit("darwin") == 103
    # runtime_dir + "/console.sock" (13 bytes, the longest socket) at the limit is accepted
    exact = Path("/" + "r" * (limit - len("/console.sock") - 1))
    assert len(str(console_socket_path(exact))) == limit
    assert len(str(qmp_socket_path(exact))) < limit
    build_argv(make_options(runtime_dir=exact), binary=QEMU, accel="tcg", socket_limit=limit)
    longer = Path(str(exact) + "x")
    with pytest.raises(HypervisorError, match="LK_HOME") as info:
        build_argv(make_options(runtime_dir=longer), binary=QEMU, accel="tcg", socket_limit=limit)
    assert "\n" not in str(info.value)
    assert "108 bytes" in str(info.value)


def test_socket_length_counts_bytes_not_characters() -> None:
    runtime = Path("/" + "é" * 50)  # 101 characters with /qmp.sock, 109 bytes
    with pytest.raises(HypervisorError, match="LK_HOME"):
        build_argv(make_options(runtime_dir=runtime), binary=QEMU, accel="tcg", socket_limit=107)


# -- hypervisor options ---------------------------------------------------------------


def test_extra_qemu_args_are_split_like_a_shell() -> None:
    argv = build(options={"qemu_args": "-rtc base=utc -smbios 'type=1,product=a b'"})
    assert argv[-4:] == ["-rtc", "base=utc", "-smbios", "type=1,product=a b"]


def test_extra_qemu_args_bad_quoting() -> None:
    with pytest.raises(UsageError, match="extra QEMU arguments"):
        build(options={"qemu_args": "-rtc 'base"})


def test_unknown_option_keys_are_rejected() -> None:
    assert OPTION_KEYS == ("accel", "qemu_args")
    with pytest.raises(UsageError, match="'acel'"):
        build(options={"acel": "kvm"})


def test_requested_accel() -> None:
    assert requested_accel({}) is None
    assert requested_accel({"accel": " "}) is None
    assert requested_accel({"accel": "kvm"}) == "kvm"


# -- comma escaping ---------------------------------------------------------------------


def test_escape() -> None:
    assert escape("a,b,,c") == "a,,b,,,,c"
    assert escape("plain") == "plain"


def test_id_is_escaped_in_name() -> None:
    assert values_of(build(id="a,b"), "-name") == ["lk-a,,b"]


path_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\0"),
    min_size=1,
    max_size=40,
)


@given(path_text)
def test_every_path_survives_option_splitting(text: str) -> None:
    base = "/" + text
    runtime = Path(base) / "run"
    for fmt in ("iso", "raw", "qcow2", "vmdk"):
        argv = build_argv(
            make_options(
                format=fmt,
                image=Path(base + ".img"),
                console_log=Path(base + ".log"),
                runtime_dir=runtime,
                metadata_iso=Path(base + ".meta"),
                volumes=(VolumeMapping(base + "v", "/v", False, text),),
            ),
            binary=QEMU,
            accel="tcg",
            socket_limit=10_000,
        )
        boot, meta = drives(argv)
        assert boot["file"] == base + ".img"
        assert boot["id"] == "boot"
        assert meta["file"] == base + ".meta"
        assert meta["id"] == "metadata"
        console, qmp = (parse_option(v) for v in values_of(argv, "-chardev"))
        assert console == {
            "": "socket",
            "id": "console",
            "path": str(runtime / "console.sock"),
            "server": "on",
            "wait": "off",
            "logfile": base + ".log",
            "logappend": "on",
        }
        assert qmp["path"] == str(runtime / "qmp.sock")
        assert qmp["id"] == "qmp"
        (fsdev,) = (parse_option(v) for v in values_of(argv, "-fsdev"))
        assert fsdev["path"] == base + "v"
        assert fsdev["id"] == "fsdev0"
        assert parse_option(devices(argv)[-1])["mount_tag"] == text


@given(path_text)
def test_plain_argument_paths_are_verbatim(text: str) -> None:
    base = "/" + text
    boot = DirectBoot(Path(base + "-kernel"), Path(base + "-initrd.img"), "")
    argv = build_argv(
        make_options(format="kernel+initrd", image=Path(base), runtime_dir=Path(base)),
        binary=QEMU,
        accel="tcg",
        direct_boot=boot,
        socket_limit=10_000,
    )
    assert values_of(argv, "-kernel") == [base + "-kernel"]
    assert values_of(argv, "-initrd") == [base + "-initrd.img"]
    assert values_of(argv, "-pidfile") == [str(Path(base) / "qemu.pid")]


def test_split_option_helper() -> None:
    assert split_option("a,,b,c") == ["a,b", "c"]
    assert split_option("a,,,b") == ["a,", "b"]
    assert split_option("a,,,,b") == ["a,,b"]


# -- aarch64 -----------------------------------------------------------------------------


def test_aarch64_uses_virt_scsi_cds_and_firmware() -> None:
    argv = everything(arch="aarch64", accel="hvf", options={})
    assert values_of(argv, "-machine") == ["virt"]
    assert values_of(argv, "-cpu") == ["host"]
    assert values_of(argv, "-bios") == ["edk2-aarch64-code.fd"]
    assert "virtio-scsi-pci,id=scsi0" in devices(argv)
    assert "scsi-cd,drive=boot,bus=scsi0.0,bootindex=0" in devices(argv)
    assert "scsi-cd,drive=metadata,bus=scsi0.0" in devices(argv)
    assert not any(d.startswith("ide-cd") for d in devices(argv))


def test_aarch64_kernel_uses_pl011_console() -> None:
    argv = build(arch="aarch64", format="kernel+initrd", direct_boot=KERNEL)
    assert values_of(argv, "-append") == ["console=tty0 quiet console=ttyAMA0"]
    assert "-bios" not in argv
    assert "virtio-scsi-pci,id=scsi0" not in devices(argv)


def test_unknown_arch_is_an_error() -> None:
    with pytest.raises(HypervisorError, match="architecture"):
        build(arch="riscv64")
