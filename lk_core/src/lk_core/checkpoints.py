"""Checkpoints: a running container's whole state saved, and new containers resumed from it.

The core decides *what* a checkpoint is; *how* a VM's state is saved and
loaded is its hypervisor's (:attr:`~lk_core.hypervisor.Capability.CHECKPOINTS`:
:meth:`~lk_core.hypervisor.Hypervisor.save_checkpoint`, a start whose spec
has ``incoming``, :meth:`~lk_core.hypervisor.Hypervisor.wait_resumed`).

A checkpoint is a folder ``<data dir>/checkpoints/NAME/``::

    checkpoint.json     the sidecar: what was saved, from which container, checksums
    state               RAM and device state (the hypervisor's format)
    disks/boot.qcow2    the container's disks, frozen (read-only) when it was paused
    disks/data0.qcow2
    metadata.iso        a copy of the source's metadata CD (the guest may read it again)

The sidecar is written last and the folder renamed into place, so a folder
without one is an interrupted save (never listed). A resumed container gets a
new ID, console log, runtime folder, SSH port and published ports, its own
overlay on each frozen disk, and the source's memory, CPUs, devices, SSH key
and pinned SSH host key: the guest is the source's, host keys and clock
included.

``lk run --warm`` keys checkpoints by everything the guest was given
(:func:`warm_key`): the first run boots cold and saves ``warm-<key>`` once
SSH answers; later runs with the same key resume it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from lk_core.disks import BOOT, Disk, format_size
from lk_core.errors import ContainerStateError, HypervisorError, LkError, NotFoundError, UsageError
from lk_core.hypervisor import Capability, Hypervisor, ProcessHypervisor, require
from lk_core.model import Container, HypervisorOptions, RunOptions, RunRequest, Status
from lk_core.paths import (
    default_checkpoints_dir,
    default_state_dir,
    ensure_logs_dir,
    ensure_private_dir,
    generate_id,
    log_path,
    runtime_dir,
)
from lk_core.timeutil import now_rfc3339

if TYPE_CHECKING:
    from lk_core.manager import Manager

__all__ = [
    "SIDECAR",
    "WARM_PREFIX",
    "CheckpointError",
    "checkpoint_users",
    "create_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "prune_checkpoints",
    "remove_checkpoint",
    "resume_checkpoint",
    "run_warm",
    "verify_checkpoint",
    "warm_key",
]

SIDECAR = "checkpoint.json"
SCHEMA = 1
#: Name prefix of the checkpoints ``lk run --warm`` saves.
WARM_PREFIX = "warm-"
METADATA_CD = "metadata.iso"
#: Files up to this size are hashed whole; larger ones by their head and tail.
SMALL_FILE = 1024 * 1024
_EDGE = 64 * 1024
#: Seconds the supervisor waits before saying a resumed VM started: lk watches the
#: load itself (:meth:`~lk_core.hypervisor.Hypervisor.wait_resumed`), so not the
#: usual half second.
LAUNCH_GRACE = 0.05
#: Seconds a resumed VM may take to load its state.
RESUME_TIMEOUT = 120.0
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class CheckpointError(LkError):
    """A checkpoint cannot be saved, found, trusted or resumed."""


# -- the store ------------------------------------------------------------------------
def check_checkpoint_name(name: str) -> str:
    """Refuse a name that could escape the checkpoints folder or not be typed back."""
    if not _NAME.match(name) or ".." in name:
        raise UsageError(
            f"invalid checkpoint name {name!r}: use letters, digits, '.', '_' or '-' "
            "(at most 63, starting with a letter or digit)"
        )
    return name


def checkpoint_dir(name: str) -> Path:
    """The folder of checkpoint ``name``."""
    return default_checkpoints_dir() / check_checkpoint_name(name)


def load_checkpoint(name: str) -> dict[str, Any]:
    """The sidecar of checkpoint ``name`` (with ``folder``); one line if missing or foreign."""
    folder = checkpoint_dir(name)
    sidecar = folder / SIDECAR
    if not sidecar.is_file():
        raise NotFoundError(f"no checkpoint named {name!r} (see 'lk checkpoint ls')")
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CheckpointError(
            f"checkpoint {name} is unreadable or not lk's ({SIDECAR}: {error})"
        ) from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or "state" not in data:
        raise CheckpointError(
            f"checkpoint {name} is not one this lk can read ({SIDECAR} is foreign or of "
            "another version)"
        )
    data["folder"] = str(folder)
    return data


def _fingerprint(path: Path) -> dict[str, Any]:
    """Size and SHA-256 of a small file, or of the head and tail of a large one (cheap)."""
    size = path.stat().st_size
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        if size <= SMALL_FILE:
            digest.update(handle.read())
        else:
            digest.update(handle.read(_EDGE))
            handle.seek(size - _EDGE)
            digest.update(handle.read(_EDGE))
    return {"size": size, "sha256": digest.hexdigest()}


def verify_checkpoint(data: dict[str, Any]) -> None:
    """Refuse a truncated, altered or incomplete checkpoint (sizes and cheap checksums)."""
    folder = Path(data["folder"])
    name = data.get("name", folder.name)
    for relative, expected in sorted(data.get("files", {}).items()):
        path = folder / relative
        try:
            found = _fingerprint(path)
        except OSError:
            raise CheckpointError(
                f"checkpoint {name} is incomplete: {relative} is missing"
            ) from None
        if found["size"] != expected.get("size"):
            raise CheckpointError(
                f"checkpoint {name} is damaged: {relative} is {found['size']} bytes, "
                f"{expected.get('size')} were saved (truncated?)"
            )
        if found["sha256"] != expected.get("sha256"):
            raise CheckpointError(
                f"checkpoint {name} is damaged: {relative} does not have the checksum it was "
                "saved with"
            )


def checkpoint_users(name: str, records: Sequence[Container]) -> list[str]:
    """The containers resumed from checkpoint ``name`` (their disks may depend on it)."""
    return [c.display_name for c in records if c.extra.get("from_checkpoint") == name]


def _size_on_disk(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        with contextlib.suppress(OSError):
            if path.is_file():
                total += path.stat().st_blocks * 512
    return total


def list_checkpoints(records: Sequence[Container]) -> list[dict[str, Any]]:
    """Every complete checkpoint, by name: what ``lk checkpoint ls`` shows."""
    folder = default_checkpoints_dir()
    if not folder.is_dir():
        return []
    found: list[dict[str, Any]] = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not (path / SIDECAR).is_file():
            continue
        try:
            data = load_checkpoint(path.name)
        except LkError as error:
            found.append({"name": path.name, "error": error.message})
            continue
        source = data.get("source", {})
        found.append(
            {
                "name": data["name"],
                "warm": bool(data.get("warm_key")),
                "image": source.get("image", ""),
                "hypervisor": data.get("hypervisor", ""),
                "memory": data.get("memory"),
                "cpus": data.get("cpus"),
                "created": data.get("created", ""),
                "size": _size_on_disk(path),
                "users": checkpoint_users(data["name"], records),
                "last_used": data.get("last_used", ""),
            }
        )
    return found


def remove_checkpoint(name: str, records: Sequence[Container]) -> Path:
    """Delete checkpoint ``name``; refused while containers resumed from it exist."""
    folder = checkpoint_dir(name)
    if not folder.is_dir():
        raise NotFoundError(f"no checkpoint named {name!r} (see 'lk checkpoint ls')")
    users = checkpoint_users(name, records)
    if users:
        raise ContainerStateError(
            f"checkpoint {name} backs the disks of container {users[0]}: remove "
            f"{'them' if len(users) > 1 else 'it'} first ('lk rm {' '.join(users)}')"
        )
    _delete(folder)
    return folder


def _delete(folder: Path) -> None:
    for path in folder.rglob("*"):  # frozen layers are read-only files
        with contextlib.suppress(OSError):
            if path.is_file():
                os.chmod(path, 0o600)
    shutil.rmtree(folder, ignore_errors=True)


def prune_checkpoints(records: Sequence[Container]) -> list[str]:
    """Remove every warm checkpoint no container was resumed from; return their names."""
    removed = []
    for entry in list_checkpoints(records):
        if entry.get("warm") and not entry.get("users"):
            _delete(checkpoint_dir(entry["name"]))
            removed.append(entry["name"])
    folder = default_checkpoints_dir()
    if folder.is_dir():  # interrupted saves
        for path in folder.iterdir():
            if path.name.startswith(".") and ".partial-" in path.name:
                _delete(path)
    return removed


# -- saving -----------------------------------------------------------------------------
def _image_stat(image: str) -> dict[str, int]:
    try:
        info = os.stat(image)
    except OSError:
        return {}
    return {"size": info.st_size, "mtime_ns": info.st_mtime_ns, "ino": info.st_ino}


def _host_keys(container: Container) -> list[str]:
    """The guest's pinned SSH host keys (``TYPE BASE64``), from the source's ``known_hosts``."""
    from lk_core.ssh import known_hosts_path

    pinned = str(container.extra.get("host_key", ""))
    lines = [pinned] if pinned else []
    with contextlib.suppress(OSError):
        lines += known_hosts_path(container).read_text(encoding="utf-8").splitlines()
    keys: list[str] = []
    for line in lines:
        words = line.split()
        if len(words) >= 3 and f"{words[1]} {words[2]}" not in keys:
            keys.append(f"{words[1]} {words[2]}")
    return keys


def _refuse_unsaveable(container: Container, hv: Hypervisor) -> None:
    from lk_core.disks import writes_image_in_place

    require(hv, Capability.CHECKPOINTS)
    who = container.display_name
    if container.volumes:
        raise CheckpointError(
            f"container {who} shares host folders (-v): a mounted 9p share cannot be saved "
            "and resumed"
        )
    named = [d.name for d in container.disks if d.name]
    if named:
        raise CheckpointError(
            f"container {who} has named disk {named[0]}: a checkpoint's clones cannot share it, "
            "and resumed RAM must not run over a disk that has moved on"
        )
    if writes_image_in_place(container):
        raise CheckpointError(
            f"container {who} runs its image in place (--in-place): the image moves on, so a "
            "checkpoint could not be resumed over it"
        )


def create_checkpoint(
    manager: Manager,
    ref: str,
    name: str,
    stop: bool = False,
    warm: str = "",
    progress: bool = False,
) -> dict[str, Any]:
    """Save running container ``ref`` as checkpoint ``name``; it goes on (or stops with ``stop``).

    ``warm`` is the :func:`warm_key` of a checkpoint ``lk run --warm`` saves.
    With ``progress``, the bytes saved so far are shown on stderr (terminals
    only). Returns the sidecar.
    """
    from lk_core.disks import check_free_space
    from lk_core.supervisor import request_stop_marker

    check_checkpoint_name(name)
    container = manager.get(ref)
    if container.status is not Status.RUNNING:
        raise ContainerStateError(
            f"container {container.display_name} is {container.status}: only a running "
            "container can be checkpointed"
        )
    hv = manager.hypervisor_of(container)
    if hv is None:
        raise HypervisorError(
            f"the plugin of hypervisor {container.hypervisor!r} is not loaded: "
            f"cannot checkpoint {container.display_name}"
        )
    _refuse_unsaveable(container, hv)
    root = default_checkpoints_dir()
    final = root / name
    if final.exists():
        raise UsageError(f"a checkpoint named {name!r} exists already (see 'lk checkpoint ls')")
    needed = container.memory * 1024 * 1024
    for disk in container.disks:
        with contextlib.suppress(OSError):
            needed += Path(disk.path).stat().st_blocks * 512
    check_free_space(root, needed, f"checkpoint {name} (up to {format_size(needed)})")
    ensure_private_dir(root)
    partial = root / f".{name}.partial-{os.getpid()}"
    _delete(partial)
    partial.mkdir(mode=0o700)
    if stop:
        request_stop_marker(container.id)
    started = time.monotonic()
    try:
        from lk_core.progress import watching_bytes

        with watching_bytes(partial, f"saving checkpoint {name}", enabled=progress):
            info = hv.save_checkpoint(container, partial, stop)
        seconds = time.monotonic() - started
        cd = runtime_dir(container.id) / METADATA_CD
        if cd.is_file():
            shutil.copyfile(cd, partial / METADATA_CD)
        files = [info.state, *(d.path for d in info.disks)]
        if (partial / METADATA_CD).is_file():
            files.append(METADATA_CD)
        data: dict[str, Any] = {
            "schema": SCHEMA,
            "name": name,
            "created": now_rfc3339(),
            "warm_key": warm,
            "hypervisor": hv.name,
            "compat": dict(info.compat),
            "memory": container.memory,
            "cpus": container.cpus,
            "state": info.state,
            "disks": [attrs.asdict(d) for d in info.disks],
            "metadata_cd": METADATA_CD if METADATA_CD in files else "",
            "files": {f: _fingerprint(partial / f) for f in files},
            "save_seconds": round(seconds, 3),
            "paused_seconds": round(info.paused_seconds, 3),
            "stopped": stop,
            "details": dict(info.details),
            "source": {
                "id": container.id,
                "name": container.name,
                "image": container.image,
                "image_stat": _image_stat(container.image),
                "format": container.format,
                "ports": [str(p) for p in container.ports],
                "ssh_key": container.ssh_key,
                "host_keys": _host_keys(container),
                "plugin_options": container.plugin_options,
                "disks": [attrs.asdict(d) for d in container.disks],
                "extra": {k: v for k, v in container.extra.items() if k == "from_checkpoint"},
            },
        }
        sidecar = partial / SIDECAR
        sidecar.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.chmod(sidecar, 0o444)
        try:
            os.rename(partial, final)
        except OSError:
            raise UsageError(f"a checkpoint named {name!r} was saved meanwhile") from None
    except BaseException:
        _delete(partial)
        if stop:
            with contextlib.suppress(OSError):
                (runtime_dir(container.id) / "stop-requested").unlink()
        raise
    if stop:
        _wait_stopped(manager, container.id)
    data["folder"] = str(final)
    return data


def _wait_stopped(manager: Manager, container_id: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(LkError):
            if not manager.get(container_id).is_active:
                return
        time.sleep(0.05)


# -- resuming ---------------------------------------------------------------------------
def _refuse_conflicts(data: dict[str, Any], options: RunOptions, hv_values: dict[str, Any]) -> None:
    """Options a resumed VM cannot have differently from its source: one line each."""
    name = data["name"]
    source = data.get("source", {})
    why = f"checkpoint {name} resumes its source's VM"
    if options.memory is not None and options.memory != data["memory"]:
        raise UsageError(
            f"--memory {options.memory}M conflicts with {why} ({data['memory']} MB): drop -m"
        )
    if options.cpus is not None and options.cpus != data["cpus"]:
        raise UsageError(
            f"--cpus {options.cpus} conflicts with {why} ({data['cpus']} CPUs): drop -c"
        )
    if options.volumes:
        raise UsageError(
            f"-v cannot be given with --from-checkpoint: {why}, whose devices are fixed "
            "(and a 9p share cannot be resumed)"
        )
    if options.disks or options.in_place:
        raise UsageError(f"--disk/--in-place cannot be given: {why} with its own disks")
    if options.hypervisor and options.hypervisor.lower() != data["hypervisor"]:
        raise UsageError(
            f"--hypervisor {options.hypervisor} conflicts with {why} ({data['hypervisor']})"
        )
    if options.ssh_key and os.path.abspath(options.ssh_key) != source.get("ssh_key"):
        raise UsageError(f"--ssh-key conflicts with {why}: the guest trusts the source's key")
    if not options.metadata or options.metadata_file:
        raise UsageError(f"--no-metadata/--metadata-file conflict with {why}: its CD is saved")
    saved = source.get("plugin_options", {}).get(data["hypervisor"], {})
    for key, value in hv_values.items():
        if value not in (None, "") and saved.get(key) != value:
            raise UsageError(
                f"--{key.replace('_', '-')} {value} conflicts with {why} "
                f"({saved.get(key) or 'not given'})"
            )


def _check_compat(data: dict[str, Any], hv: Hypervisor) -> None:
    saved = {str(k): str(v) for k, v in data.get("compat", {}).items()}
    now = hv.checkpoint_compat()
    if all(now.get(key) == value for key, value in saved.items()):
        return

    def describe(values: dict[str, str]) -> str:
        machine = values.get("machine", "?")
        return f"{data['hypervisor']} {values.get('version', '?')} (machine {machine})"

    raise CheckpointError(
        f"checkpoint {data['name']} was saved by {describe(saved)}; this is {describe(now)}: "
        "it cannot be resumed here (boot the image cold and save a new one)"
    )


def _check_source_image(data: dict[str, Any]) -> None:
    source = data.get("source", {})
    image = source.get("image", "")
    saved = source.get("image_stat", {})
    now = _image_stat(image)
    if not now:
        raise CheckpointError(f"checkpoint {data['name']} needs its image {image}, which is gone")
    if saved and (now["size"], now["mtime_ns"]) != (saved.get("size"), saved.get("mtime_ns")):
        raise CheckpointError(
            f"checkpoint {data['name']}: its image {image} has changed since it was saved"
        )


def _hypervisor_for(manager: Manager, data: dict[str, Any]) -> Hypervisor:
    hv = manager.plugins.hypervisors().get(str(data.get("hypervisor", "")).lower())
    if hv is None:
        raise HypervisorError(
            f"checkpoint {data['name']} was saved by hypervisor {data.get('hypervisor')!r}, "
            "whose plugin is not loaded"
        )
    availability = hv.availability()
    if not availability.available:
        raise HypervisorError(f"hypervisor {hv.name} is not available: {availability.reason}")
    require(hv, Capability.CHECKPOINTS)
    return hv


def _failure_reason(manager: Manager, container_id: str, error: BaseException) -> str:
    """Why a resume failed: the hypervisor's own words when it exited."""
    from lk_core.supervisor import HYPERVISOR_STDERR

    reason = getattr(error, "message", "") or str(error) or type(error).__name__
    from lk_core.process import is_same_process

    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:  # the supervisor records the exit
        record = manager.ops.get(container_id)
        if record is None or not record.is_active or not record.supervisor_pid:
            break
        if not is_same_process(record.supervisor_pid, record.supervisor_started):
            break
        time.sleep(0.05)
    try:
        text = (runtime_dir(container_id) / HYPERVISOR_STDERR).read_text(errors="replace")
    except OSError:
        text = ""
    said: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        head, sep, rest = line.partition(": ")
        if sep and "/" not in head and " " not in head:
            line = rest  # "<program>: message"
        if line and line not in said:
            said.append(line)
    if said:
        return f"{reason}: {'; '.join(said[-3:])}"
    return reason


def resume_checkpoint(
    manager: Manager,
    name: str,
    options: RunOptions,
    hv_values: dict[str, Any] | None = None,
) -> Container:
    """Start a new container resumed from checkpoint ``name``; return it once the guest runs.

    Everything that can be refused is refused before anything is created;
    a state the hypervisor cannot load leaves nothing behind.
    """
    from lk_core.ports import check_ports_free, free_port
    from lk_core.run_plan import check_name

    data = load_checkpoint(name)
    hv = _hypervisor_for(manager, data)
    _refuse_conflicts(data, options, dict(hv_values or {}))
    verify_checkpoint(data)
    _check_compat(data, hv)
    _check_source_image(data)
    source = data["source"]
    if options.ports:
        require(hv, Capability.PORTS)
    check_name(options.name)
    check_ports_free(options.ports)
    ssh_key = str(source.get("ssh_key", ""))
    if ssh_key and not Path(ssh_key).is_file():
        raise CheckpointError(
            f"checkpoint {name}: the guest trusts SSH key {ssh_key}, which is gone"
        )
    records = manager.list(all=True)
    if options.name and any(options.name in (c.name, c.id) for c in records):
        raise UsageError(f"the name {options.name!r} is already in use")
    active = [c for c in records if c.is_active and not c.host]
    taken = {c.ssh_port for c in active} | {p.host_port for c in active for p in c.ports}
    if options.ssh_port:
        from lk_core.model import PortMapping

        check_ports_free([PortMapping(options.ssh_port, 22)], flag="--ssh-port")
        ssh_port = options.ssh_port
    else:
        ssh_port = free_port(avoid=taken | {p.host_port for p in options.ports})
    folder = Path(data["folder"])
    container = Container(
        id="",
        image=str(source["image"]),
        name=options.name,
        format=str(source.get("format", "")),
        hypervisor=hv.name,
        status=Status.STARTING,
        started_at=now_rfc3339(),
        ports=list(options.ports),
        memory=int(data["memory"]),
        cpus=int(data["cpus"]),
        ssh_port=ssh_port,
        ssh_key=ssh_key,
        auto_remove=options.auto_remove,
        plugin_options={k: dict(v) for k, v in source.get("plugin_options", {}).items()},
        extra={"from_checkpoint": name, "launch_grace": LAUNCH_GRACE},
    )
    with manager.store.transaction() as recs:
        container.id = generate_id({*recs, *(c.id for c in records)})
        if container.name and any(container.name in (c.name, c.id) for c in recs.values()):
            raise ContainerStateError(f"the name {container.name!r} is already in use")
        recs[container.id] = container
    manager.plugins.notify("created", container)
    try:
        spec = _resume_spec(manager, container, hv, data, folder)
        hv.check_resume(dict(data.get("details", {})), spec)
        if isinstance(hv, ProcessHypervisor):
            hv.record_command(manager.ops, container, spec)
        hv.start(manager.plugins, container, spec)
        hv.wait_resumed(manager.ops.get(container.id) or container, RESUME_TIMEOUT)
    except BaseException as error:
        reason = _failure_reason(manager, container.id, error)
        with contextlib.suppress(LkError):
            current = manager.ops.get(container.id)
            if current is not None and current.is_active:
                hv.kill(current)
        manager.cleanup(container.id)
        if isinstance(error, LkError):
            raise CheckpointError(f"cannot resume checkpoint {name}: {reason}") from None
        raise
    _touch(folder)
    started = manager.get(container.id)
    manager.plugins.notify("started", started)
    return started


def _touch(folder: Path) -> None:
    """Note when a checkpoint was last resumed (for ``prune``): a marker file, sidecar untouched."""
    with contextlib.suppress(OSError):
        (folder / ".last-used").touch()


def _resume_spec(
    manager: Manager, container: Container, hv: Hypervisor, data: dict[str, Any], folder: Path
) -> HypervisorOptions:
    """Create the new container's files (log, CD copy, overlays, pinned host key); its spec."""
    import tempfile

    rdir = ensure_private_dir(runtime_dir(container.id))
    ensure_logs_dir()
    log = log_path(container.id)
    os.close(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    metadata = None
    if data.get("metadata_cd"):
        metadata = rdir / METADATA_CD
        shutil.copyfile(folder / data["metadata_cd"], metadata)
        os.chmod(metadata, 0o600)
    disks: list[Disk] = []
    for saved in data.get("disks", []):
        layer = folder / saved["path"]
        with tempfile.TemporaryDirectory(dir=rdir) as scratch:
            made, fmt = hv.create_overlay(layer, saved.get("format") or "qcow2", Path(scratch))
            target = rdir / Path(saved["path"]).name
            os.replace(made, target)
        disks.append(
            Disk(
                role=saved.get("role", BOOT),
                path=str(target),
                format=fmt,
                serial=saved.get("serial", ""),
                size=int(saved.get("size", 0)),
            )
        )
    if disks:
        container.disks = disks

        def change(record: Container) -> None:
            record.disks = list(disks)

        manager.ops.update(container.id, change)
    keys = data["source"].get("host_keys", [])
    if keys:
        from lk_core.ssh import known_hosts_path

        known = known_hosts_path(container)
        lines = "".join(f"[127.0.0.1]:{container.ssh_port} {key}\n" for key in keys)
        known.write_text(lines, encoding="utf-8")
        os.chmod(known, 0o600)
    return HypervisorOptions.of(
        container,
        hv.name,
        log,
        rdir,
        metadata_iso=metadata,
        disks=tuple(disks),
        incoming=folder / data["state"],
        identity=str(data["source"]["id"]),
    )


# -- warm starts ------------------------------------------------------------------------
def _content_hash(path: Path) -> str:
    """SHA-256 of ``path``, computed once per (path, size, mtime, inode) and cached."""
    from lk_core.cache_files import read_cache, write_cache

    info = path.stat()
    key = f"{path.absolute()}:{info.st_size}:{info.st_mtime_ns}:{info.st_ino}"
    cache = default_state_dir() / "cache" / "image-hashes.json"
    known = read_cache(cache)
    if isinstance(known.get(key), str):
        return str(known[key])
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    known = {k: v for k, v in known.items() if not k.startswith(f"{path.absolute()}:")}
    known[key] = digest.hexdigest()
    write_cache(cache, known)
    return digest.hexdigest()


def _image_files(image: Path) -> list[Path]:
    if image.is_file():
        return [image]
    from lk_core.formats import find_kernel_initrd

    found = find_kernel_initrd(image)
    if found is None:
        return []
    files = [Path(found.kernel), Path(found.initrd)]
    return files + [p for p in image.parent.glob(f"{image.name}-cmdline") if p.is_file()]


def warm_key(container: Container, hv: Hypervisor, options: RunOptions) -> str:
    """What a warm checkpoint must share with this run: everything the guest was given.

    The image's content (hashed once, then cached by path, size, mtime and
    inode), the hypervisor and :meth:`~lk_core.hypervisor.Hypervisor.checkpoint_compat`,
    memory, CPUs, the hypervisor's options, the data disks' sizes, and the
    metadata CD's content (SSH key, user data).
    """
    from lk_core.metadata import config_bytes

    public_key = None
    if container.ssh_key:
        from lk_core.ssh_keys import public_key_for

        public_key = public_key_for(Path(container.ssh_key))
    metadata = (
        hashlib.sha256(config_bytes(public_key, [], options.metadata_file)).hexdigest()
        if options.metadata
        else ""
    )
    parts = {
        "image": [_content_hash(p) for p in _image_files(Path(container.image))],
        "format": container.format,
        "hypervisor": hv.name,
        "compat": hv.checkpoint_compat(),
        "memory": container.memory,
        "cpus": container.cpus,
        "options": container.options_for(hv.name),
        "disks": [(d.role, d.size) for d in container.disks],
        "metadata": metadata,
        "ssh_key": container.ssh_key,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def run_warm(
    manager: Manager,
    request: RunRequest,
    wait_timeout: float = 120.0,
    warn: Callable[[str], None] | None = None,
) -> Container:
    """``lk run --warm``: resume the warm checkpoint of this run's key, else boot and save one."""
    from lk_core.options import route_hypervisor_options
    from lk_core.run_plan import plan_run

    prepared = manager.plugins.prepare_run(request)
    plan = plan_run(manager.plugins, prepared, manager.list(all=True))
    hv, planned = plan.hypervisor, plan.container
    _refuse_unsaveable(attrs.evolve(planned, id="(new)"), hv)
    key = warm_key(planned, hv, prepared.options)
    name = WARM_PREFIX + key[:16]
    if (checkpoint_dir(name) / SIDECAR).is_file():
        hv_values = route_hypervisor_options(
            manager.plugins.options(), prepared.options.hypervisor_options, hv.name
        )
        resume_options = attrs.evolve(prepared.options, memory=None, cpus=None, ssh_key="")
        try:
            return resume_checkpoint(manager, name, resume_options, hv_values)
        except CheckpointError as error:
            if warn is not None:
                warn(f"{error.message}; booting cold")
            if checkpoint_users(name, manager.list(all=True)):
                container = manager.run_request(request)
                return container
            _delete(checkpoint_dir(name))
    container = manager.run_request(request)
    manager.wait(container.id, timeout=wait_timeout)
    manager.exec(container.id, ["true"])  # pins the guest's host key before it is saved
    try:
        create_checkpoint(manager, container.id, name, warm=key)
    except LkError as error:
        if warn is not None:
            warn(f"could not save warm checkpoint {name}: {error.message}")
    return manager.get(container.id)
