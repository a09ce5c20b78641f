"""The LinuxKit metadata CD: how lk hands user data (SSH key, volumes) to a VM.

LinuxKit's ``metadata`` package reads a CD-ROM holding a file ``config`` with
JSON user data of the form ``{"KEY": {"entries": {"FILE": {"perm": "0600",
"content": "..."}}}}`` and writes each entry to ``/run/config/KEY/FILE``.
lk writes:

- ``ssh/authorized_keys``: the public key of the VM's SSH key (LinuxKit's
  ``sshd`` package binds it to ``/root/.ssh/authorized_keys``);
- ``lk/volumes``: one line ``TAG GUEST_PATH [ro]`` per volume, so an image can
  mount each 9p share where the user asked.

``--metadata-file F`` replaces this with the user's own data (if F holds a
JSON object, lk adds its own keys that F does not set).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lk_core.errors import UsageError
from lk_core.model import Container, RunOptions, VolumeMapping

CD_NAME = "metadata.iso"


def _entry(content: str, perm: str = "0644") -> dict[str, str]:
    return {"perm": perm, "content": content}


def volumes_listing(volumes: list[VolumeMapping]) -> str:
    """The ``lk/volumes`` entry: ``TAG GUEST_PATH [ro]`` per line."""
    return "".join(f"{v.tag} {v.guest_path}{' ro' if v.read_only else ''}\n" for v in volumes)


def user_data(public_key: str | None, volumes: list[VolumeMapping]) -> dict[str, Any]:
    """lk's own LinuxKit user data for a VM."""
    data: dict[str, Any] = {}
    if public_key:
        data["ssh"] = {"entries": {"authorized_keys": _entry(public_key.strip() + "\n", "0600")}}
    if volumes:
        data["lk"] = {"entries": {"volumes": _entry(volumes_listing(volumes))}}
    return data


def config_bytes(
    public_key: str | None, volumes: list[VolumeMapping], metadata_file: str = ""
) -> bytes:
    """The content of the CD's ``config`` file."""
    ours = user_data(public_key, volumes)
    if not metadata_file:
        return json.dumps(ours, indent=2, sort_keys=True).encode()
    try:
        raw = Path(metadata_file).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read metadata file {metadata_file}: {exc.strerror}") from exc
    try:
        theirs = json.loads(raw)
    except ValueError:
        return raw  # not JSON (a script, say): passed through as it is
    if not isinstance(theirs, dict):
        return raw
    merged = {**ours, **theirs}
    return json.dumps(merged, indent=2, sort_keys=True).encode()


def write_metadata_cd(container: Container, options: RunOptions, runtime_dir: Path) -> Path:
    """Write ``metadata.iso`` into the runtime folder and return its path."""
    from lk_core.iso9660 import write_iso

    public_key = None
    if container.ssh_key:
        from lk_core.ssh_keys import public_key_for

        public_key = public_key_for(Path(container.ssh_key))
    content = config_bytes(public_key, container.volumes, options.metadata_file)
    path = runtime_dir / CD_NAME
    write_iso(path, {"config": content})
    return path
