"""The libvirt domain XML of an lk container, as data (pure: no libvirt, no file system).

Built with :mod:`xml.etree.ElementTree`, so every name, path and metadata value
is escaped by the serializer, never by string formatting.

What the XML holds (measured to boot LinuxKit images under TCG on Debian 12's
libvirt 9.0, see LIBVIRT.md):

* ``<domain type='qemu'>`` (TCG) or ``'kvm'``; ``machine='q35'``; ``<acpi/>``
  (ACPI shutdown needs it); ``<cpu mode='maximum'>`` under TCG,
  ``host-passthrough`` under KVM; ``on_poweroff``/``on_crash`` destroy.
* The image: ISO -> SATA CD-ROM (boot order 1); qcow2/raw/vmdk -> virtio disk;
  kernel+initrd -> ``<os><kernel/><initrd/><cmdline/>``. The metadata CD is a
  second read-only SATA CD-ROM.
* Serial console on a pty (read over the connection with ``virDomainOpenConsole``),
  optionally also logged to a file by virtlogd (``append='off'``).
* virtio RNG, ``memballoon`` none, USB controller none.
* **Network**: QEMU user-mode networking with host forwards, given on QEMU's
  command line through ``<qemu:commandline>`` (``-netdev user,...,hostfwd=...``
  plus ``-device virtio-net-pci``). Why not ``<interface type='user'>`` plus HMP
  ``hostfwd_add`` after start: the forwards would exist only after a second
  step (a window in which they are missing, a monitor reply to parse for
  errors, lost if the domain is started by anything but lk), while on the
  command line they are part of the definition, a taken port makes the start
  fail with QEMU's message, and they survive ``virsh start``. Both ways taint
  the domain ("custom-argv" vs "custom-monitor"); ``<portForward>`` needs passt,
  which Debian's libvirt 9.0 has disabled. Forwards bind on the libvirt host.
* lk's ``<metadata>``: ``<lk:container xmlns:lk="https://lk.dev/xmlns/container/1">``
  holding the container record as JSON text; :func:`parse_lk_metadata` reads it back.
"""

from __future__ import annotations

import ipaddress
import json
import uuid as uuidlib
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from lk_core.errors import HypervisorError

__all__ = [
    "DISK_FORMATS",
    "DOMAIN_TYPES",
    "LK_NAMESPACE",
    "LK_PREFIX",
    "NIC_PCI_ADDRESS",
    "QEMU_NAMESPACE",
    "DirectBoot",
    "DomainSpec",
    "Forward",
    "Share",
    "build_domain_xml",
    "domain_uuid",
    "forward_rules",
    "parse_lk_metadata",
    "serial_log_path",
    "stable_mac",
]

#: The XML namespace of lk's metadata element.
LK_NAMESPACE = "https://lk.dev/xmlns/container/1"
#: Its prefix in the XML lk writes (libvirt keeps it).
LK_PREFIX = "lk"
#: libvirt's namespace for QEMU command-line passthrough.
QEMU_NAMESPACE = "http://libvirt.org/schemas/domain/qemu/1.0"
#: Image formats booted from a virtio disk (``driver type`` is the format).
DISK_FORMATS = frozenset({"qcow2", "raw", "vmdk"})
#: Domain types: ``qemu`` is TCG (always works), ``kvm`` hardware acceleration.
DOMAIN_TYPES = frozenset({"qemu", "kvm"})
_NETDEV_ID = "lknet0"
#: The NIC's fixed address on q35's root bus. libvirt does not know about devices given on
#: QEMU's command line and puts its own PCIe root ports at 00:01.x, 00:02.x, ...: an
#: auto-addressed NIC collides with the first one ("slot 1 function 0 not available").
#: Slot 0x1c is one libvirt leaves alone for lk's devices (0x1f is the ICH9 chipset, 0x1e the
#: DMI-PCI bridge, 0x1d/0x1b USB/audio, none of which lk's domains use).
NIC_PCI_ADDRESS = "0x1c"
_MIN_MEMORY_MB = 16


@attrs.frozen
class Forward:
    """A host port forwarded to a guest port (bound on the libvirt host)."""

    host_port: int
    guest_port: int
    host_ip: str = "127.0.0.1"
    protocol: str = "tcp"


@attrs.frozen
class Share:
    """A host folder shared into the guest over virtio-9p under ``tag``."""

    host_path: str
    tag: str
    read_only: bool = False


@attrs.frozen
class DirectBoot:
    """A kernel and initrd booted directly, with the kernel command line."""

    kernel: str
    initrd: str
    cmdline: str = ""


@attrs.frozen
class DomainSpec:
    """Everything :func:`build_domain_xml` needs, as plain values.

    Paths are absolute paths **on the libvirt host** (for a remote host: the
    volumes' paths, see :mod:`lk_libvirt.storage`). ``image`` is ignored when
    ``direct_boot`` is given. ``metadata`` is any JSON-serialisable mapping
    (lk stores the container record there).
    """

    name: str
    memory_mb: int
    image: str = ""
    image_format: str = "iso"
    uuid: str = ""
    vcpus: int = 1
    domain_type: str = "qemu"
    direct_boot: DirectBoot | None = None
    metadata_cd: str = ""
    serial_log: str = ""
    forwards: tuple[Forward, ...] = ()
    shares: tuple[Share, ...] = ()
    mac: str = ""
    metadata: Mapping[str, Any] | None = None
    emulator: str = ""


def stable_mac(seed: str) -> str:
    """A MAC address derived from ``seed``: unicast, locally administered (``02:...``)."""
    import hashlib  # only when a domain is defined: not on lk ps

    digest = hashlib.sha256(b"lk-mac:" + seed.encode("utf-8")).digest()
    return ":".join(f"{byte:02x}" for byte in (0x02, *digest[:5]))


def domain_uuid(seed: str) -> str:
    """A stable UUID derived from ``seed`` (UUIDv5 in lk's namespace)."""
    return str(uuidlib.uuid5(uuidlib.uuid5(uuidlib.NAMESPACE_URL, LK_NAMESPACE), seed))


def _check_name(name: str) -> str:
    """Validate a domain name (libvirt refuses ``/``; control characters are refused here)."""
    if not name or not name.strip():
        raise HypervisorError("a libvirt domain needs a name")
    if "/" in name or any(ord(char) < 32 or ord(char) == 127 for char in name):
        raise HypervisorError(
            f"invalid libvirt domain name {name!r}: no '/' and no control characters"
        )
    return name


def _check_path(path: str, what: str) -> str:
    """Validate an absolute path on the libvirt host."""
    if not path.startswith("/"):
        raise HypervisorError(f"{what} must be an absolute path, got {path!r}")
    if any(ord(char) < 32 for char in path):
        raise HypervisorError(f"{what} contains a control character: {path!r}")
    return path


def _check_port(value: int, what: str) -> int:
    """Validate a TCP/UDP port number."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise HypervisorError(f"{what} must be a port number from 1 to 65535, got {value!r}")
    return value


def forward_rules(forwards: Sequence[Forward]) -> list[str]:
    """QEMU ``hostfwd`` values (``tcp:127.0.0.1:2222-:22``) for ``forwards``, validated.

    Raises HypervisorError for a bad port, a non-IPv4 address, an unknown
    protocol or a host port forwarded twice.
    """
    rules: list[tuple[str, str, int, int]] = []
    for forward in forwards:
        proto = forward.protocol.lower()
        if proto not in ("tcp", "udp"):
            raise HypervisorError(f"unsupported port protocol {proto!r} (expected tcp or udp)")
        text = forward.host_ip.strip() or "127.0.0.1"
        try:
            address = str(ipaddress.IPv4Address(text))
        except ValueError:
            raise HypervisorError(
                f"cannot bind a port forward to {forward.host_ip!r}: user-mode networking "
                "needs an IPv4 address such as 127.0.0.1"
            ) from None
        rule = (
            proto,
            address,
            _check_port(forward.host_port, "a host port"),
            _check_port(forward.guest_port, "a guest port"),
        )
        for other in rules:
            overlap = other[1] == address or "0.0.0.0" in (other[1], address)
            if other[0] == proto and other[2] == rule[2] and overlap:
                raise HypervisorError(
                    f"host port {proto} {address}:{rule[2]} is forwarded twice "
                    f"(to guest ports {other[3]} and {rule[3]})"
                )
        rules.append(rule)
    return [f"{proto}:{ip}:{host}-:{guest}" for proto, ip, host, guest in rules]


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    """Append a child element with attributes and optional text."""
    element = ET.SubElement(parent, tag, attributes)
    if text is not None:
        element.text = text
    return element


def _cdrom(devices: ET.Element, path: str, dev: str, boot_order: int | None) -> None:
    """A read-only SATA CD-ROM holding ``path``."""
    disk = _sub(devices, "disk", type="file", device="cdrom")
    _sub(disk, "driver", name="qemu", type="raw")
    _sub(disk, "source", file=path)
    _sub(disk, "target", dev=dev, bus="sata")
    _sub(disk, "readonly")
    if boot_order is not None:
        _sub(disk, "boot", order=str(boot_order))


def _metadata_json(metadata: Mapping[str, Any]) -> str:
    """The metadata as compact, sorted JSON (raises HypervisorError if it is not JSON data)."""
    try:
        return json.dumps(dict(metadata), sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise HypervisorError(f"container metadata is not JSON data: {error}") from None


def build_domain_xml(spec: DomainSpec) -> str:
    """Return the domain XML (a string) that boots ``spec``; raise HypervisorError if it cannot."""
    name = _check_name(spec.name)
    if spec.domain_type not in DOMAIN_TYPES:
        raise HypervisorError(
            f"unknown domain type {spec.domain_type!r} (expected one of {sorted(DOMAIN_TYPES)})"
        )
    if isinstance(spec.memory_mb, bool) or spec.memory_mb < _MIN_MEMORY_MB:
        raise HypervisorError(
            f"memory must be at least {_MIN_MEMORY_MB} MB, got {spec.memory_mb} MB"
        )
    if isinstance(spec.vcpus, bool) or spec.vcpus < 1:
        raise HypervisorError(f"a domain needs at least 1 vCPU, got {spec.vcpus}")
    if (
        spec.direct_boot is None
        and spec.image_format != "iso"
        and (spec.image_format not in DISK_FORMATS)
    ):
        raise HypervisorError(
            f"libvirt cannot boot images of format {spec.image_format!r} "
            f"(supported: iso, {', '.join(sorted(DISK_FORMATS))}, kernel+initrd)"
        )
    rules = forward_rules(spec.forwards)

    ET.register_namespace("qemu", QEMU_NAMESPACE)
    ET.register_namespace(LK_PREFIX, LK_NAMESPACE)
    domain = ET.Element("domain", {"type": spec.domain_type})
    _sub(domain, "name", name)
    _sub(domain, "uuid", spec.uuid or domain_uuid(name))
    if spec.metadata is not None:
        holder = _sub(domain, "metadata")
        _sub(holder, f"{{{LK_NAMESPACE}}}container", _metadata_json(spec.metadata))
    _sub(domain, "memory", str(spec.memory_mb), unit="MiB")
    _sub(domain, "vcpu", str(spec.vcpus), placement="static")

    os_element = _sub(domain, "os")
    _sub(os_element, "type", "hvm", arch="x86_64", machine="q35")
    if spec.direct_boot is not None:
        boot = spec.direct_boot
        _sub(os_element, "kernel", _check_path(boot.kernel, "the kernel"))
        _sub(os_element, "initrd", _check_path(boot.initrd, "the initrd"))
        _sub(os_element, "cmdline", _kernel_cmdline(boot.cmdline))

    features = _sub(domain, "features")
    _sub(features, "acpi")
    if spec.domain_type == "kvm":
        _sub(domain, "cpu", mode="host-passthrough", check="none")
    else:
        _sub(domain, "cpu", mode="maximum", check="none")
    _sub(domain, "clock", offset="utc")
    _sub(domain, "on_poweroff", "destroy")
    _sub(domain, "on_reboot", "restart")
    _sub(domain, "on_crash", "destroy")

    devices = _sub(domain, "devices")
    if spec.emulator:
        _sub(devices, "emulator", _check_path(spec.emulator, "the emulator"))
    if spec.direct_boot is None:
        image = _check_path(spec.image, "the image")
        if spec.image_format == "iso":
            _cdrom(devices, image, "sda", boot_order=1)
        else:
            disk = _sub(devices, "disk", type="file", device="disk")
            _sub(disk, "driver", name="qemu", type=spec.image_format, cache="writeback")
            _sub(disk, "source", file=image)
            _sub(disk, "target", dev="vda", bus="virtio")
            _sub(disk, "boot", order="1")
    if spec.metadata_cd:
        _cdrom(devices, _check_path(spec.metadata_cd, "the metadata CD"), "sdb", boot_order=None)
    for share in spec.shares:
        filesystem = _sub(devices, "filesystem", type="mount", accessmode="passthrough")
        _sub(filesystem, "driver", type="path")
        _sub(filesystem, "source", dir=_check_path(share.host_path, "a shared folder"))
        _sub(filesystem, "target", dir=share.tag)
        if share.read_only:
            _sub(filesystem, "readonly")
    _sub(devices, "controller", type="usb", model="none")
    serial = _sub(devices, "serial", type="pty")
    if spec.serial_log:
        _sub(serial, "log", file=_check_path(spec.serial_log, "the serial log"), append="off")
    _sub(serial, "target", port="0")
    console = _sub(devices, "console", type="pty")
    _sub(console, "target", type="serial", port="0")
    rng = _sub(devices, "rng", model="virtio")
    _sub(rng, "backend", "/dev/urandom", model="random")
    _sub(devices, "memballoon", model="none")

    commandline = _sub(domain, f"{{{QEMU_NAMESPACE}}}commandline")
    netdev = ",".join(["user", f"id={_NETDEV_ID}", *(f"hostfwd={rule}" for rule in rules)])
    mac = spec.mac or stable_mac(name)
    for value in (
        "-netdev",
        netdev,
        "-device",
        f"virtio-net-pci,netdev={_NETDEV_ID},mac={mac},bus=pcie.0,addr={NIC_PCI_ADDRESS}",
    ):
        _sub(commandline, f"{{{QEMU_NAMESPACE}}}arg", value=value)

    ET.indent(domain)
    return ET.tostring(domain, encoding="unicode")


def _kernel_cmdline(cmdline: str) -> str:
    """``cmdline`` with ``console=ttyS0`` appended unless present (the serial console)."""
    words = cmdline.split()
    if any(word == "console=ttyS0" or word.startswith("console=ttyS0,") for word in words):
        return " ".join(words)
    return " ".join([*words, "console=ttyS0"])


def _parse(xml: str) -> ET.Element:
    """Parse domain XML, raising HypervisorError with the reason when it is not XML."""
    try:
        return ET.fromstring(xml)
    except ET.ParseError as error:
        raise HypervisorError(f"invalid domain XML: {error}") from None


def parse_lk_metadata(xml: str) -> dict[str, Any] | None:
    """The metadata lk stored in a domain's XML, or None when the domain has none (not lk's).

    Raises HypervisorError when the XML is invalid or lk's element does not
    hold a JSON object (a damaged record should be reported, not skipped).
    """
    root = _parse(xml)
    element = root.find(f"metadata/{{{LK_NAMESPACE}}}container")
    if element is None:
        return None
    try:
        value = json.loads(element.text or "")
    except ValueError as error:
        raise HypervisorError(f"lk metadata of domain is not JSON: {error}") from None
    if not isinstance(value, dict):
        raise HypervisorError("lk metadata of domain is not a JSON object")
    return value


def serial_log_path(xml: str) -> str:
    """The file the serial console is logged to according to ``xml``, or ``""``."""
    log = _parse(xml).find("devices/serial/log")
    return "" if log is None else log.get("file", "")
