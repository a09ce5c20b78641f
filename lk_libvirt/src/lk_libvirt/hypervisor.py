"""The ``libvirt`` hypervisor: lk containers as persistent libvirt domains, on any host.

libvirt is the source of truth (:attr:`owns_records`): each container's record
lives in its domain's ``<metadata>`` (``lk_core.serialize`` JSON), so ``lk ps``
lists exactly the domains that carry lk's metadata on every known host
(:mod:`lk_libvirt.hosts`), and a domain removed with ``virsh undefine`` is gone
from ``lk ps`` too. Domains are named ``lk-<id>``.

* Images: a local daemon (``qemu:///system``) gets the image and metadata CD
  paths as they are; a remote one gets them uploaded into the host's pool
  (ISOs content-addressed and shared; disk images copied per container, since
  the guest writes them). The serial console is logged by virtlogd into the pool
  folder (``lk-<id>.console.log``).
* Accelerator: ``--accel kvm|tcg``; by default KVM only where the daemon is
  local and lk-qemu's probe says KVM can really boot a guest, TCG otherwise.
* Network: QEMU user-mode networking; SSH and ``-p`` ports are forwarded on the
  libvirt host's addresses (127.0.0.1 unless given). Remote guests are reached
  through an SSH tunnel to the host (:meth:`LibvirtHypervisor.ssh_endpoint`).
* Stop: ACPI power button (repeated by lk's stop loop), then ``destroy``. The
  domain stays defined (``stopped``) until ``lk rm`` undefines it and deletes
  the volumes no other container uses.

Listing probes every host in parallel threads with one deadline
(``$LK_LIBVIRT_TIMEOUT``, 5 s by default): a host that does not answer is
reported in :attr:`~lk_core.vm.Listing.unreachable` and costs one timeout.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from lk_core.errors import HypervisorError, UsageError
from lk_core.hypervisor import Capability, Hypervisor
from lk_core.model import Availability, Container, HypervisorOptions, Status

from lk_libvirt.hosts import (
    LOCAL_HOST,
    SYSTEM_SOCKETS,
    HostEntry,
    configured_hosts,
    get_host,
    known_hosts,
)

if TYPE_CHECKING:
    from lk_core.options import OptionSpec
    from lk_core.plugins import Plugins
    from lk_core.vm import Handle, Listing, SshEndpoint, VmState

    from lk_libvirt.binding import Connection, Domain, StoragePool

__all__ = ["LibvirtHypervisor", "domain_name", "list_timeout"]

_ENV_TIMEOUT = "LK_LIBVIRT_TIMEOUT"
_DEFAULT_LIST_TIMEOUT = 5.0
#: Seconds to open a connection when running or stopping (the first one to a fresh daemon ~8 s).
_OPEN_TIMEOUT = 30.0
_ACTIVE = {"running": Status.RUNNING, "blocked": Status.RUNNING, "paused": Status.RUNNING}


def domain_name(container_id: str) -> str:
    """The libvirt domain name of container ``container_id``."""
    return f"lk-{container_id}"


def list_timeout() -> float:
    """Seconds a host may take to answer a listing (``$LK_LIBVIRT_TIMEOUT``, default 5)."""
    try:
        return max(float(os.environ.get(_ENV_TIMEOUT, "") or _DEFAULT_LIST_TIMEOUT), 0.1)
    except ValueError:
        return _DEFAULT_LIST_TIMEOUT


def _status_of(state: str) -> tuple[Status, str]:
    if state in _ACTIVE:
        return _ACTIVE[state], ""
    if state == "shutdown":
        return Status.RUNNING, "shutting down"
    if state == "crashed":
        return Status.ERROR, "the domain crashed"
    if state == "shutoff":
        return Status.STOPPED, ""
    return Status.RUNNING, state


def _is_remote(entry: HostEntry) -> bool:
    from lk_libvirt.uri import parse_uri

    return parse_uri(entry.uri).is_remote


class LibvirtHypervisor(Hypervisor):
    """Runs containers as libvirt domains on the local daemon or on added hosts."""

    name = "libvirt"
    description = "libvirt domains, on this machine (qemu:///system) or remote hosts (lk host add)"
    formats = frozenset({"iso", "qcow2", "raw", "vmdk"})
    preferred_formats = ("iso", "qcow2", "raw", "vmdk")
    #: Below QEMU (10): plain ``lk run IMAGE`` still picks QEMU.
    priority = 5
    capabilities = frozenset({Capability.PORTS, Capability.METADATA, Capability.RESTART})
    owns_records: ClassVar[bool] = True

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conns: dict[str, Connection] = {}

    # -- what it is ----------------------------------------------------------------
    def availability(self) -> Availability:
        """Cheap: the bindings are installed and a host is added or the local socket exists."""
        import importlib.util

        from lk_libvirt.binding import INSTALL_HINT

        if importlib.util.find_spec("libvirt") is None:
            return Availability(False, f"libvirt-python is not installed ({INSTALL_HINT})")
        local = any(os.path.exists(path) for path in SYSTEM_SOCKETS)
        try:
            added = sorted(configured_hosts())
        except Exception as error:  # a damaged hosts file: say so, do not crash lk hypervisors
            return Availability(False, str(error))
        if not local and not added:
            return Availability(
                False,
                "no libvirt daemon here (no libvirtd socket) and no host added "
                "(lk host add NAME URI)",
            )
        hosts = ([LOCAL_HOST] if local and LOCAL_HOST not in added else []) + added
        return Availability(True, "", {"hosts": ", ".join(hosts)})

    def options(self) -> list[OptionSpec]:
        """``--accel`` (shared with QEMU: kvm or tcg here) and ``--host``."""
        from lk_core.options import OptionSpec

        return [
            OptionSpec(
                "accel",
                "Accelerator: kvm, hvf, tcg (default: the best one that works here).",
                metavar="ACCEL",
            ),
            OptionSpec(
                "host",
                "libvirt host to run on (see 'lk host ls'); implies --hypervisor libvirt.",
                metavar="NAME",
                envvar="LK_HOST",
            ),
        ]

    def explain_format(self, fmt: str) -> str | None:
        """Why ``fmt`` cannot be booted (kernel+initrd is QEMU's)."""
        return (
            f"hypervisor libvirt cannot boot {fmt} images (it boots iso, qcow2, raw and vmdk); "
            "use --hypervisor qemu or build an ISO"
        )

    # -- connections ---------------------------------------------------------------
    def _conn(self, entry: HostEntry, timeout: float = _OPEN_TIMEOUT) -> Connection:
        from lk_libvirt.connection import close_connection, open_connection

        with self._lock:
            conn = self._conns.get(entry.uri)
        if conn is not None:
            alive = False
            with contextlib.suppress(Exception):
                alive = bool(conn.isAlive())
            if alive:
                return conn
            close_connection(conn)
        try:
            conn = open_connection(entry.uri, timeout=timeout)
        except HypervisorError as error:
            raise HypervisorError(f"libvirt host {entry.name} is unreachable: {error}") from None
        with self._lock:
            self._conns[entry.uri] = conn
        return conn

    def _entry_of(self, container: Container) -> HostEntry:
        return get_host(container.host or LOCAL_HOST)

    def _domain(self, container: Container, conn: Connection | None = None) -> Domain | None:
        from lk_libvirt.binding import libvirt_module
        from lk_libvirt.domains import find_domain

        conn = conn or self._conn(self._entry_of(container))
        uuid = str(container.handle.get("uuid", ""))
        if uuid:
            libvirt = libvirt_module()
            try:
                return conn.lookupByUUIDString(uuid)
            except libvirt.libvirtError as error:
                if error.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                    raise HypervisorError(
                        f"cannot look up domain of {container.display_name}: {error}"
                    ) from None
                return None
        return find_domain(conn, domain_name(container.id))

    # -- storage -------------------------------------------------------------------
    def _pool(self, conn: Connection, entry: HostEntry, create: bool = True) -> StoragePool | None:
        from lk_libvirt.binding import libvirt_module
        from lk_libvirt.storage import DEFAULT_POOL, ensure_pool
        from lk_libvirt.uri import parse_uri

        name = entry.pool or DEFAULT_POOL
        if not create:
            libvirt = libvirt_module()
            try:
                return conn.storagePoolLookupByName(name)
            except libvirt.libvirtError:
                return None
        path = ""
        uri = parse_uri(entry.uri)
        if uri.is_session:
            with contextlib.suppress(Exception):
                conn.storagePoolLookupByName(name)
                return ensure_pool(conn, name)
            path = self._session_pool_path(entry)
        return ensure_pool(conn, name, path)

    def _session_pool_path(self, entry: HostEntry) -> str:
        """``~/.local/share/lk/pool`` of the daemon's user (asked over SSH when remote)."""
        from lk_libvirt.uri import parse_uri

        uri = parse_uri(entry.uri)
        if not uri.is_remote:
            return str(Path.home() / ".local/share/lk/pool")
        from lk_libvirt.remote_ssh import SSH_TRANSPORTS, run_on_host

        if uri.transport not in SSH_TRANSPORTS:
            raise HypervisorError(
                f"host {entry.name}: cannot find the remote user's home over {uri.transport}; "
                f"create a storage pool there and name it with 'lk host add {entry.name} URI "
                "--pool NAME'"
            )
        home = run_on_host(entry.uri, entry.host_key, 'printf %s "$HOME"').decode().strip()
        if not home.startswith("/"):
            raise HypervisorError(f"host {entry.name}: the remote user has no home folder")
        return f"{home}/.local/share/lk/pool"

    @staticmethod
    def _pool_dir(pool: StoragePool) -> str:
        import xml.etree.ElementTree as ET

        root = ET.fromstring(pool.XMLDesc(0))
        return (root.findtext("target/path") or "").rstrip("/")

    # -- the VM's life -------------------------------------------------------------
    def _domain_type(self, entry: HostEntry, spec: HypervisorOptions) -> str:
        accel = str(spec.options.get("accel") or "").strip().lower()
        if accel:
            if accel not in ("kvm", "tcg"):
                raise UsageError(f"hypervisor libvirt takes --accel kvm or tcg, not {accel!r}")
            return "kvm" if accel == "kvm" else "qemu"
        if _is_remote(entry):
            return "qemu"  # libvirt offers kvm whenever /dev/kvm exists; only TCG is sure
        try:
            from lk_qemu.accel import choose_accelerator
        except ImportError:
            return "qemu"
        chosen, _reason = choose_accelerator(None)
        return "kvm" if chosen == "kvm" else "qemu"

    def start(self, plugins: Plugins, container: Container, spec: HypervisorOptions) -> Handle:
        """Define the domain ``lk-<id>`` (record in its metadata) and start it."""
        from lk_core.serialize import container_to_dict
        from lk_core.vm import Handle

        from lk_libvirt.domain_xml import DomainSpec, Forward, build_domain_xml, domain_uuid
        from lk_libvirt.domains import (
            define_domain,
            destroy_domain,
            find_domain,
            list_lk_domains,
            start_domain,
            undefine_domain,
        )
        from lk_libvirt.storage import delete_volume, upload_volume

        entry = get_host(str(spec.options.get("host") or "") or LOCAL_HOST)
        domain_type = self._domain_type(entry, spec)
        conn = self._conn(entry)
        name = domain_name(container.id)
        if find_domain(conn, name) is not None:
            raise HypervisorError(f"host {entry.name} already has a domain named {name}")
        if container.name:
            for _domain, meta in list_lk_domains(conn):
                if container.name in (meta.get("name"), meta.get("id")):
                    raise UsageError(
                        f"the name {container.name!r} is already in use on host {entry.name}"
                    )
        remote = _is_remote(entry)
        pool = self._pool(conn, entry)
        pool_dir = self._pool_dir(pool)
        own_volumes: list[str] = []
        domain = None
        try:
            image, metadata_cd = str(spec.image), str(spec.metadata_iso or "")
            if remote:
                if spec.format == "iso":
                    image = upload_volume(conn, pool, spec.image).path
                else:
                    vol = f"{name}.{spec.format}"
                    own_volumes.append(vol)
                    image = upload_volume(conn, pool, spec.image, name=vol).path
                if spec.metadata_iso is not None:
                    vol = f"{name}-metadata.iso"
                    own_volumes.append(vol)
                    metadata_cd = upload_volume(conn, pool, spec.metadata_iso, name=vol).path
            own_volumes.append(f"{name}.console.log")
            uuid = domain_uuid(f"{name}:{time.time_ns()}")
            container.host = entry.name
            container.status = Status.RUNNING
            container.handle = {"uri": entry.uri, "uuid": uuid, "domain": name}
            forwards = [Forward(spec.ssh_port, 22)] if spec.ssh_port else []
            forwards += [
                Forward(p.host_port, p.guest_port, p.host_ip, str(p.protocol)) for p in spec.ports
            ]
            xml = build_domain_xml(
                DomainSpec(
                    name=name,
                    uuid=uuid,
                    memory_mb=spec.memory,
                    vcpus=spec.cpus,
                    image=image,
                    image_format=spec.format,
                    domain_type=domain_type,
                    metadata_cd=metadata_cd,
                    serial_log=f"{pool_dir}/{name}.console.log",
                    forwards=tuple(forwards),
                    metadata=container_to_dict(container),
                )
            )
            domain = define_domain(conn, xml)
            start_domain(domain)
        except BaseException:
            if domain is not None:
                with contextlib.suppress(Exception):
                    destroy_domain(domain)
                with contextlib.suppress(Exception):
                    undefine_domain(domain)
            for vol in own_volumes:
                with contextlib.suppress(Exception):
                    delete_volume(pool, vol)
            raise
        return Handle(dict(container.handle), entry.name)

    def restart(self, plugins: Plugins, container: Container, spec: HypervisorOptions) -> Handle:
        """Start the (defined, stopped) domain again."""
        from lk_core.vm import Handle

        from lk_libvirt.domains import start_domain

        domain = self._domain(container)
        if domain is None:
            raise HypervisorError(f"the domain of {container.display_name} no longer exists")
        start_domain(domain)
        return Handle(dict(container.handle), container.host)

    def state(self, container: Container) -> VmState:
        """The domain's state (raises HypervisorError when its host does not answer)."""
        from lk_core.vm import VmState

        from lk_libvirt.domains import domain_state

        domain = self._domain(container)
        if domain is None:
            return VmState(Status.STOPPED, "its domain was undefined")
        status, reason = _status_of(domain_state(domain))
        return VmState(status, reason)

    def request_stop(self, container: Container) -> None:
        """Press the ACPI power button (no wait)."""
        from lk_libvirt.binding import error_message, libvirt_module

        domain = self._domain(container)
        if domain is None:
            return
        libvirt = libvirt_module()
        try:
            domain.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
        except libvirt.libvirtError as error:
            if error.get_error_code() != libvirt.VIR_ERR_OPERATION_INVALID:
                raise HypervisorError(
                    f"cannot shut down {container.display_name}: {error_message(error)}"
                ) from None

    def kill(self, container: Container) -> None:
        """``virDomainDestroy``."""
        from lk_libvirt.domains import destroy_domain

        domain = self._domain(container)
        if domain is not None:
            destroy_domain(domain)

    def remove(self, container: Container) -> None:
        """Undefine the domain; delete its own volumes and images no other domain uses."""
        from lk_libvirt.domains import destroy_domain, list_lk_domains, undefine_domain
        from lk_libvirt.storage import delete_volume

        entry = self._entry_of(container)
        conn = self._conn(entry)
        name = domain_name(container.id)
        domain = self._domain(container, conn)
        xml = ""
        if domain is not None:
            with contextlib.suppress(Exception):
                xml = domain.XMLDesc(0)
            destroy_domain(domain)
            undefine_domain(domain)
        pool = self._pool(conn, entry, create=False)
        if pool is None:
            return
        for vol in (f"{name}.console.log", f"{name}-metadata.iso", f"{name}.{container.format}"):
            with contextlib.suppress(HypervisorError):
                delete_volume(pool, vol)
        if not xml:
            return
        pool_dir = self._pool_dir(pool)
        used = set()
        for _domain, _meta in list_lk_domains(conn):
            with contextlib.suppress(Exception):
                used.update(_sources(_domain.XMLDesc(0)))
        for path in _sources(xml):
            if path.startswith(pool_dir + "/sha256-") and path not in used:
                with contextlib.suppress(HypervisorError):
                    delete_volume(pool, path.rsplit("/", 1)[1])

    # -- records -------------------------------------------------------------------
    def _list_host(self, entry: HostEntry, timeout: float) -> list[tuple[str, Container]]:
        from lk_core.records import container_from_dict

        from lk_libvirt.domains import domain_state, list_lk_domains

        conn = self._conn(entry, timeout)
        found = []
        for domain, meta in list_lk_domains(conn):
            try:
                container = container_from_dict(dict(meta))
                uuid = str(domain.UUIDString())
                status, reason = _status_of(domain_state(domain))
            except Exception:  # a damaged record or a domain undefined meanwhile
                continue
            container.status = status
            container.status_reason = reason
            container.handle = {**container.handle, "uuid": uuid, "uri": entry.uri}
            found.append((uuid, container))
        return found

    def list_containers(self) -> Listing:
        """Every lk domain on every host, probed in parallel with one deadline."""
        from lk_core.vm import Listing

        try:
            hosts = known_hosts()
            configured = configured_hosts()
        except Exception as error:
            return Listing([], {"libvirt": str(error)})
        if LOCAL_HOST not in configured and not any(os.path.exists(p) for p in SYSTEM_SOCKETS):
            hosts.pop(LOCAL_HOST, None)  # no local daemon and none asked for: nothing to say
        timeout = list_timeout()
        results: dict[str, list[tuple[str, Container]]] = {}
        errors: dict[str, str] = {}

        def probe(entry: HostEntry) -> None:
            try:
                results[entry.name] = self._list_host(entry, timeout)
            except Exception as error:
                errors[entry.name] = " ".join(str(error).split()) or type(error).__name__

        from lk_core.threads import start_helper_thread

        threads = {
            name: start_helper_thread(probe, entry, name=f"lk-ls-{name}")
            for name, entry in hosts.items()
        }
        deadline = time.monotonic() + timeout + 0.5
        for name, thread in threads.items():
            thread.join(max(deadline - time.monotonic(), 0.0))
            if thread.is_alive() and name not in errors:
                errors[name] = f"no answer within {timeout:g} s"
        by_uuid: dict[str, Container] = {}
        for name in hosts:
            for uuid, container in results.get(name, []):
                chosen = by_uuid.get(uuid)
                if chosen is None or (container.host == name and chosen.host != name):
                    container = _with_host(container, name)
                    by_uuid[uuid] = container
        unreachable = {
            name: f"libvirt host {name} ({hosts[name].uri}) is unreachable: {reason}"
            for name, reason in errors.items()
            if name not in results
        }
        return Listing(sorted(by_uuid.values(), key=lambda c: c.started_at), unreachable)

    def update_record(self, container: Container) -> None:
        """Store the record in the domain's metadata (live and persistent)."""
        import json
        import xml.etree.ElementTree as ET

        from lk_core.serialize import container_to_dict

        from lk_libvirt.binding import error_message, libvirt_module
        from lk_libvirt.domain_xml import LK_NAMESPACE, LK_PREFIX

        domain = self._domain(container)
        if domain is None:
            raise HypervisorError(f"the domain of {container.display_name} no longer exists")
        libvirt = libvirt_module()
        data = container_to_dict(container)
        data["status"] = Status.RUNNING.value
        element = ET.Element("container")
        element.text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
        with contextlib.suppress(libvirt.libvirtError):
            if domain.isActive():
                flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
        try:
            domain.setMetadata(
                libvirt.VIR_DOMAIN_METADATA_ELEMENT,
                ET.tostring(element, encoding="unicode"),
                LK_PREFIX,
                LK_NAMESPACE,
                flags,
            )
        except libvirt.libvirtError as error:
            raise HypervisorError(
                f"cannot update the record of {container.display_name}: {error_message(error)}"
            ) from None

    # -- reaching it ---------------------------------------------------------------
    def console_log(self, container: Container, follow: bool = False) -> Iterator[bytes] | None:
        """The console history (virtlogd's file); with ``follow``, then the live console."""
        return self._console(container, follow)

    def _history(self, entry: HostEntry, path: str) -> Iterator[bytes]:
        if not path:
            return
        if not _is_remote(entry):
            with contextlib.suppress(FileNotFoundError), open(path, "rb") as handle:
                yield from iter(lambda: handle.read(65536), b"")
            return
        from lk_libvirt.remote_ssh import SSH_TRANSPORTS, stream_from_host
        from lk_libvirt.uri import parse_uri

        if parse_uri(entry.uri).transport not in SSH_TRANSPORTS:
            return  # no way to read a file on a tcp/tls host: the live console only
        yield from stream_from_host(entry.uri, entry.host_key, path)

    def _console(self, container: Container, follow: bool) -> Iterator[bytes]:
        from lk_libvirt.console import Console
        from lk_libvirt.domain_xml import serial_log_path

        entry = self._entry_of(container)
        conn = self._conn(entry)
        domain = self._domain(container, conn)
        if domain is None:
            raise HypervisorError(f"the domain of {container.display_name} no longer exists")
        path = serial_log_path(domain.XMLDesc(0))
        if not follow or not domain.isActive():
            yield from self._history(entry, path)
            return
        try:
            console = Console(conn, domain, force=False)
        except HypervisorError as error:
            raise HypervisorError(
                f"the console of {container.display_name} is in use by another client "
                f"(lk logs -f or virsh console; one at a time): {error}; "
                f"'lk logs {container.display_name}' without -f shows the log"
            ) from None
        with console:
            yield from self._history(entry, path)
            index = 0
            while True:
                chunks, closed = console.read_from(index, 1.0)
                index += len(chunks)
                yield from chunks
                if closed:
                    return
                with contextlib.suppress(Exception):
                    if not domain.isActive():
                        return

    def ssh_endpoint(self, container: Container) -> SshEndpoint:
        """127.0.0.1 on this machine; through an SSH tunnel to the host for remote hosts."""
        from lk_core.vm import SshEndpoint, Tunnel

        from lk_libvirt.remote_ssh import SSH_TRANSPORTS
        from lk_libvirt.uri import parse_uri

        entry = self._entry_of(container)
        uri = parse_uri(entry.uri)
        if not uri.is_remote:
            return SshEndpoint("127.0.0.1", container.ssh_port)
        if uri.transport not in SSH_TRANSPORTS:
            raise HypervisorError(
                f"container {container.display_name} runs on host {entry.name} ({uri.transport}): "
                "exec, shell, cp, --wait and port-forward need an SSH-reachable host "
                "(add it with a qemu+ssh:// URI)"
            )
        return SshEndpoint(
            "127.0.0.1",
            container.ssh_port,
            via=Tunnel(
                uri.host or "localhost", uri.port or 22, uri.user, uri.keyfile, entry.host_key
            ),
        )


def _with_host(container: Container, host: str) -> Container:
    container.host = host
    return container


def _sources(xml: str) -> list[str]:
    """The file paths of a domain's disks."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(xml)
    return [s.get("file", "") for s in root.findall("devices/disk/source") if s.get("file")]
