"""Domain life cycle: define, start (optionally paused), resume, shut down, destroy, undefine.

Every libvirt error becomes a one-line :class:`~lk_core.errors.HypervisorError`
naming the domain. Waiting for a state polls ``virDomainGetState`` every 0.1 s
(a remote call of a few milliseconds): simpler than lifecycle events and
enough for lk's timeouts.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from lk_core.errors import HypervisorError

from lk_libvirt.binding import Connection, Domain, error_message, libvirt_module
from lk_libvirt.domain_xml import parse_lk_metadata

__all__ = [
    "STATE_NAMES",
    "define_domain",
    "destroy_domain",
    "domain_state",
    "find_domain",
    "list_lk_domains",
    "resume_domain",
    "shutdown_domain",
    "start_domain",
    "undefine_domain",
    "wait_for_state",
]

#: ``virDomainState`` values by name (the numbers are libvirt's stable ABI).
STATE_NAMES: dict[int, str] = {
    0: "nostate",
    1: "running",
    2: "blocked",
    3: "paused",
    4: "shutdown",
    5: "shutoff",
    6: "crashed",
    7: "pmsuspended",
}
_POLL = 0.1


def _fail(what: str, domain_name: str, error: BaseException) -> HypervisorError:
    """The HypervisorError for a failed operation on a domain."""
    return HypervisorError(f"cannot {what} domain {domain_name}: {error_message(error)}")


def define_domain(conn: Connection, xml: str) -> Domain:
    """Define (persistently) the domain described by ``xml`` and return it."""
    libvirt = libvirt_module()
    try:
        return conn.defineXML(xml)
    except libvirt.libvirtError as error:
        raise HypervisorError(f"cannot define domain: {error_message(error)}") from None


def find_domain(conn: Connection, name: str) -> Domain | None:
    """The domain called ``name``, or None if there is none."""
    libvirt = libvirt_module()
    try:
        return conn.lookupByName(name)
    except libvirt.libvirtError as error:
        if error.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return None
        raise _fail("look up", name, error) from None


def list_lk_domains(conn: Connection) -> list[tuple[Domain, dict[str, object]]]:
    """Every domain (running or not) that carries lk metadata, with that metadata."""
    libvirt = libvirt_module()
    try:
        domains = conn.listAllDomains(0)
    except libvirt.libvirtError as error:
        raise HypervisorError(f"cannot list domains: {error_message(error)}") from None
    found: list[tuple[Domain, dict[str, object]]] = []
    for domain in domains:
        try:
            xml = domain.XMLDesc(0)
        except libvirt.libvirtError:
            continue  # undefined while listing
        metadata = parse_lk_metadata(xml)
        if metadata is not None:
            found.append((domain, metadata))
    return found


def domain_state(domain: Domain) -> str:
    """The domain's state as a word: ``running``, ``paused``, ``shutoff``, ..."""
    libvirt = libvirt_module()
    try:
        state, _reason = domain.state(0)
    except libvirt.libvirtError as error:
        raise _fail("read the state of", str(domain.name()), error) from None
    return STATE_NAMES.get(int(state), f"state-{state}")


def start_domain(domain: Domain, *, paused: bool = False) -> None:
    """Start a defined domain; ``paused`` leaves its CPUs stopped until :func:`resume_domain`."""
    libvirt = libvirt_module()
    flags = libvirt.VIR_DOMAIN_START_PAUSED if paused else 0
    try:
        domain.createWithFlags(flags)
    except libvirt.libvirtError as error:
        raise _fail("start", str(domain.name()), error) from None


def resume_domain(domain: Domain) -> None:
    """Resume a paused domain."""
    libvirt = libvirt_module()
    try:
        domain.resume()
    except libvirt.libvirtError as error:
        raise _fail("resume", str(domain.name()), error) from None


def wait_for_state(domain: Domain, states: Iterable[str], timeout: float) -> str | None:
    """Wait until the domain is in one of ``states``; return it, or None after ``timeout``."""
    wanted = set(states)
    deadline = time.monotonic() + timeout
    while True:
        state = domain_state(domain)
        if state in wanted:
            return state
        if time.monotonic() >= deadline:
            return None
        time.sleep(_POLL)


def shutdown_domain(domain: Domain, timeout: float) -> bool:
    """Ask the guest to power off (ACPI power button); True if it is off within ``timeout``.

    The guest may ignore or miss the request (e.g. before its ACPI daemon
    runs): on False the caller decides whether to ask again or destroy.
    """
    libvirt = libvirt_module()
    if domain_state(domain) == "shutoff":
        return True
    try:
        domain.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
    except libvirt.libvirtError as error:
        if domain_state(domain) == "shutoff":
            return True
        raise _fail("shut down", str(domain.name()), error) from None
    return wait_for_state(domain, ("shutoff",), timeout) is not None


def destroy_domain(domain: Domain) -> None:
    """Stop the domain at once (kill QEMU); nothing happens if it is not running."""
    libvirt = libvirt_module()
    try:
        if domain.isActive():
            domain.destroy()
    except libvirt.libvirtError as error:
        if error.get_error_code() == libvirt.VIR_ERR_OPERATION_INVALID:
            return  # stopped meanwhile
        raise _fail("destroy", str(domain.name()), error) from None


def undefine_domain(domain: Domain) -> None:
    """Remove the domain's definition (with managed save, snapshot and NVRAM metadata)."""
    libvirt = libvirt_module()
    flags = 0
    for flag in (
        "VIR_DOMAIN_UNDEFINE_MANAGED_SAVE",
        "VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA",
        "VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA",
        "VIR_DOMAIN_UNDEFINE_NVRAM",
    ):
        flags |= int(getattr(libvirt, flag, 0))
    try:
        domain.undefineFlags(flags)
    except libvirt.libvirtError as error:
        if error.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return
        raise _fail("undefine", str(domain.name()), error) from None
