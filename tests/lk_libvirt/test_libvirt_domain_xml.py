from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lk_core.errors import HypervisorError
from lk_libvirt.domain_xml import (
    LK_NAMESPACE,
    QEMU_NAMESPACE,
    DirectBoot,
    DomainSpec,
    Forward,
    Share,
    build_domain_xml,
    domain_uuid,
    forward_rules,
    parse_lk_metadata,
    serial_log_path,
    stable_mac,
)

Q = f"{{{QEMU_NAMESPACE}}}"


def _iso(**overrides: object) -> DomainSpec:
    values: dict[str, object] = {"name": "lk-abc", "memory_mb": 512, "image": "/img/lk-test.iso"}
    values.update(overrides)
    return DomainSpec(**values)  # type: ignore[arg-type]


def _root(spec: DomainSpec) -> ET.Element:
    return ET.fromstring(build_domain_xml(spec))


def _qemu_args(root: ET.Element) -> list[str]:
    return [arg.get("value", "") for arg in root.iter(f"{Q}arg")]


def test_iso_domain_has_the_measured_features() -> None:
    root = _root(_iso(serial_log="/var/log/lk/c.log", metadata_cd="/run/lk/meta.iso"))
    assert root.get("type") == "qemu"
    assert root.findtext("name") == "lk-abc"
    assert root.findtext("uuid") == domain_uuid("lk-abc")
    assert root.find("memory").get("unit") == "MiB" and root.findtext("memory") == "512"  # type: ignore[union-attr]
    assert root.find("os/type").get("machine") == "q35"  # type: ignore[union-attr]
    assert root.find("features/acpi") is not None
    assert root.find("cpu").get("mode") == "maximum"  # type: ignore[union-attr]
    assert root.findtext("on_poweroff") == "destroy"
    disks = root.findall("devices/disk")
    assert [
        (d.get("device"), d.find("target").get("bus"), d.find("source").get("file")) for d in disks
    ] == [  # type: ignore[union-attr]
        ("cdrom", "sata", "/img/lk-test.iso"),
        ("cdrom", "sata", "/run/lk/meta.iso"),
    ]
    assert disks[0].find("boot").get("order") == "1"  # type: ignore[union-attr]
    assert disks[1].find("boot") is None
    assert root.find("devices/memballoon").get("model") == "none"  # type: ignore[union-attr]
    assert root.find("devices/controller[@type='usb']").get("model") == "none"  # type: ignore[union-attr]
    assert root.find("devices/rng").get("model") == "virtio"  # type: ignore[union-attr]
    log = root.find("devices/serial/log")
    assert log is not None and log.get("append") == "off"
    assert (
        serial_log_path(build_domain_xml(_iso(serial_log="/var/log/lk/c.log")))
        == "/var/log/lk/c.log"
    )
    assert root.find("devices/console/target").get("type") == "serial"  # type: ignore[union-attr]


def test_no_serial_log_by_default() -> None:
    assert serial_log_path(build_domain_xml(_iso())) == ""


def test_kvm_uses_host_cpu() -> None:
    root = _root(_iso(domain_type="kvm"))
    assert root.get("type") == "kvm"
    assert root.find("cpu").get("mode") == "host-passthrough"  # type: ignore[union-attr]


@pytest.mark.parametrize("fmt", ["qcow2", "raw", "vmdk"])
def test_disk_images_are_virtio_disks(fmt: str) -> None:
    root = _root(_iso(image=f"/img/x.{fmt}", image_format=fmt))
    (disk,) = root.findall("devices/disk")
    assert disk.get("device") == "disk"
    assert disk.find("driver").get("type") == fmt  # type: ignore[union-attr]
    assert disk.find("target").get("bus") == "virtio"  # type: ignore[union-attr]


def test_kernel_initrd() -> None:
    root = _root(
        _iso(direct_boot=DirectBoot("/i/k", "/i/initrd.img", "quiet console=ttyS0,115200"))
    )
    assert root.findtext("os/kernel") == "/i/k"
    assert root.findtext("os/initrd") == "/i/initrd.img"
    assert root.findtext("os/cmdline") == "quiet console=ttyS0,115200"
    assert root.findall("devices/disk") == []
    root = _root(_iso(direct_boot=DirectBoot("/i/k", "/i/initrd.img", "quiet")))
    assert root.findtext("os/cmdline") == "quiet console=ttyS0"


def test_network_forwards_on_qemu_commandline() -> None:
    spec = _iso(
        forwards=(Forward(2222, 22), Forward(8080, 80, "0.0.0.0", "udp")), mac="02:00:00:00:00:01"
    )
    args = _qemu_args(_root(spec))
    assert args == [
        "-netdev",
        "user,id=lknet0,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=udp:0.0.0.0:8080-:80",
        "-device",
        "virtio-net-pci,netdev=lknet0,mac=02:00:00:00:00:01,bus=pcie.0,addr=0x1c",
    ]
    assert "mac=" + stable_mac("lk-abc") in _qemu_args(_root(_iso()))[3]


def test_shares() -> None:
    root = _root(_iso(shares=(Share("/srv/a,b", "lkvol0", read_only=True),)))
    fs = root.find("devices/filesystem")
    assert fs is not None
    assert fs.find("source").get("dir") == "/srv/a,b"  # type: ignore[union-attr]
    assert fs.find("target").get("dir") == "lkvol0"  # type: ignore[union-attr]
    assert fs.find("readonly") is not None


@pytest.mark.parametrize(
    ("forwards", "message"),
    [
        ((Forward(0, 22),), "port number"),
        ((Forward(22, 70000),), "port number"),
        ((Forward(22, 22, "::1"),), "IPv4"),
        ((Forward(22, 22, protocol="sctp"),), "protocol"),
        ((Forward(80, 1), Forward(80, 2, "0.0.0.0")), "forwarded twice"),
    ],
)
def test_bad_forwards(forwards: tuple[Forward, ...], message: str) -> None:
    with pytest.raises(HypervisorError, match=message):
        forward_rules(forwards)


def test_same_port_other_protocol_or_address_is_fine() -> None:
    rules = forward_rules(
        [Forward(80, 1), Forward(80, 2, protocol="udp"), Forward(80, 3, "10.0.0.1")]
    )
    assert len(rules) == 3


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": ""}, "needs a name"),
        ({"name": "a/b"}, "invalid libvirt domain name"),
        ({"name": "a\nb"}, "invalid libvirt domain name"),
        ({"memory_mb": 8}, "at least 16 MB"),
        ({"vcpus": 0}, "at least 1 vCPU"),
        ({"domain_type": "xen"}, "unknown domain type"),
        ({"image_format": "vhd"}, "cannot boot images of format"),
        ({"image": "relative.iso"}, "absolute path"),
        ({"metadata_cd": "meta.iso"}, "absolute path"),
        ({"metadata": {"x": object()}}, "not JSON data"),
    ],
)
def test_refused_specs(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(HypervisorError, match=message):
        build_domain_xml(_iso(**overrides))


def test_metadata_round_trip_and_namespace() -> None:
    record = {"id": "abc", "name": "web", "ports": [{"host_port": 8080}], "extra": {"x": None}}
    xml = build_domain_xml(_iso(metadata=record))
    assert f'xmlns:lk="{LK_NAMESPACE}"' in xml
    assert "<lk:container" in xml
    assert parse_lk_metadata(xml) == record


def test_domain_without_lk_metadata_is_ignored() -> None:
    assert parse_lk_metadata(build_domain_xml(_iso())) is None
    foreign = (
        "<domain type='kvm'><name>other</name>"
        "<metadata><x:y xmlns:x='urn:x'>1</x:y></metadata></domain>"
    )
    assert parse_lk_metadata(foreign) is None


@pytest.mark.parametrize("text", ["not json", "[1, 2]"])
def test_damaged_metadata_is_reported(text: str) -> None:
    xml = (
        f"<domain><metadata><lk:container xmlns:lk='{LK_NAMESPACE}'>{text}</lk:container>"
        "</metadata></domain>"
    )
    with pytest.raises(HypervisorError, match="lk metadata"):
        parse_lk_metadata(xml)


def test_invalid_xml() -> None:
    with pytest.raises(HypervisorError, match="invalid domain XML"):
        parse_lk_metadata("<domain>")


# Characters XML 1.0 can carry (no control characters but tab/newline, no surrogates).
_xml_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
    max_size=40,
)


@given(
    name=_xml_text.filter(lambda s: s.strip() != "" and "/" not in s),
    path_part=_xml_text.filter(lambda s: "/" not in s),
    record=st.dictionaries(_xml_text, st.one_of(_xml_text, st.integers(), st.none()), max_size=5),
)
def test_special_characters_are_escaped(
    name: str, path_part: str, record: dict[str, object]
) -> None:
    image = f"/images/{path_part}<&>'\".iso"
    xml = build_domain_xml(
        _iso(name=name, image=image, metadata=record, metadata_cd=f"/m/{path_part}&.iso")
    )
    root = ET.fromstring(xml)
    assert root.findtext("name") == name
    disks = root.findall("devices/disk/source")
    assert disks[0].get("file") == image
    assert disks[1].get("file") == f"/m/{path_part}&.iso"
    assert parse_lk_metadata(xml) == record


def test_importing_lk_libvirt_does_not_import_libvirt() -> None:
    code = (
        "import sys, lk_libvirt, lk_libvirt.connection, lk_libvirt.domain_xml, lk_libvirt.domains,"
        " lk_libvirt.storage, lk_libvirt.console, lk_libvirt.ports, lk_libvirt.uri;"
        " print('libvirt' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
