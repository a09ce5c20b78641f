"""Host port forwards changed on a running domain (QEMU's HMP ``hostfwd_add``/``hostfwd_remove``).

The forwards a container starts with are part of its domain XML
(:mod:`lk_libvirt.domain_xml`); these functions add or remove one while it
runs, on the user-mode netdev lk defines (``lknet0``). HMP reports failure as
text, not as an error: any reply is taken as the error message. Each call
taints the domain "custom-monitor" (a note in libvirt's log, nothing more).
"""

from __future__ import annotations

from lk_core.errors import HypervisorError

from lk_libvirt.binding import Domain, error_message, libvirt_module, libvirt_qemu_module
from lk_libvirt.domain_xml import Forward, forward_rules

__all__ = ["NETDEV_ID", "add_forward", "remove_forward"]

#: The netdev id of the user-mode network in lk's domain XML.
NETDEV_ID = "lknet0"


def _hmp(domain: Domain, command: str) -> str:
    """Run an HMP command on ``domain``'s QEMU monitor and return its reply (stripped)."""
    libvirt = libvirt_module()
    libvirt_qemu = libvirt_qemu_module()
    try:
        reply = libvirt_qemu.qemuMonitorCommand(
            domain, command, libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP
        )
    except libvirt.libvirtError as error:
        raise HypervisorError(
            f"cannot run {command!r} on domain {domain.name()}: {error_message(error)}"
        ) from None
    return str(reply).strip()


def add_forward(domain: Domain, forward: Forward) -> None:
    """Forward ``forward.host_ip:host_port`` on the libvirt host to the guest port, now."""
    (rule,) = forward_rules([forward])
    reply = _hmp(domain, f"hostfwd_add {NETDEV_ID} {rule}")
    if reply:
        raise HypervisorError(f"cannot forward {rule} on domain {domain.name()}: {reply}")


def remove_forward(domain: Domain, forward: Forward) -> None:
    """Remove a host forward added by :func:`add_forward` or present since start."""
    (rule,) = forward_rules([forward])
    host = rule.rsplit("-", 1)[0]  # "tcp:127.0.0.1:8080"
    reply = _hmp(domain, f"hostfwd_remove {NETDEV_ID} {host}")
    if reply and "removed" not in reply.lower():
        raise HypervisorError(f"cannot remove forward {host} on domain {domain.name()}: {reply}")
