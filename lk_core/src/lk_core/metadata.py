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

The CD is an ISO 9660 image written with pycdlib: volume label ``CONFIG``,
one file in the root, ISO 9660 name ``CONFIG.;1`` (interchange level 1, so a
reader without Rock Ridge still sees ``config`` under Linux's default
lower-casing), Rock Ridge 1.10 name ``config`` and mode 0444, no Joliet. The
image file itself is mode 0600 and replaced atomically. pycdlib is imported
only when a CD is written: its import costs ~28 ms.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lk_core.errors import UsageError
from lk_core.model import Container, RunOptions, VolumeMapping

CD_NAME = "metadata.iso"
CD_LABEL = "CONFIG"
"""The volume label of the metadata CD."""
CONFIG_FILE = "config"
"""The file LinuxKit's ``metadata`` package reads from the CD."""

_NAME_RE = re.compile(r"[A-Za-z0-9._+-]{1,64}")
_NOT_D_CHARACTER_RE = re.compile(r"[^A-Z0-9_]")


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


def _iso_name(name: str) -> str:
    """The level-1 ISO 9660 path of root file ``name``: ``config`` -> ``/CONFIG.;1``."""
    if not _NAME_RE.fullmatch(name) or name in (".", ".."):
        raise ValueError(f"invalid CD file name {name!r}: use A-Z a-z 0-9 . _ + - only")
    base, dot, ext = name.rpartition(".")
    if not dot:
        base, ext = name, ""
    base = _NOT_D_CHARACTER_RE.sub("_", base.upper())[:8] or "_"
    ext = _NOT_D_CHARACTER_RE.sub("_", ext.upper())[:3]
    return f"/{base}.{ext};1"


def write_cd(path: Path, files: Mapping[str, bytes], label: str = CD_LABEL) -> None:
    """Write an ISO 9660 image holding ``files`` in its root directory to ``path``.

    Each name is kept exactly through Rock Ridge; its ISO 9660 name is the
    upper-case 8.3 form. The image goes to a temporary file (mode 0600) in the
    same folder, fsynced, then renamed over ``path``: readers see the old file
    or the whole new one. The folder must exist. Raises :class:`ValueError` for
    a name outside ``A-Z a-z 0-9 . _ + -`` (1-64 characters) or whose 8.3
    form clashes with another's (nothing is written then), and
    :class:`OSError` if the file cannot be written (the temporary file is removed).
    """
    import pycdlib  # lazy: see the module docstring

    iso_names = {name: _iso_name(name) for name in files}
    if len(set(iso_names.values())) != len(iso_names):
        raise ValueError(f"file names clash in ISO 9660: {sorted(files)}")
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=1, vol_ident=label, app_ident_str="LK", rock_ridge="1.10")
    try:
        for name, data in files.items():
            iso.add_fp(
                io.BytesIO(data), len(data), iso_names[name], rr_name=name, file_mode=0o100444
            )
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as tmp:
                os.fchmod(tmp.fileno(), 0o600)
                iso.write_fp(tmp)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise
    finally:
        iso.close()


def write_metadata_cd(container: Container, options: RunOptions, runtime_dir: Path) -> Path:
    """Write ``metadata.iso`` into the runtime folder and return its path."""
    public_key = None
    if container.ssh_key:
        from lk_core.ssh_keys import public_key_for

        public_key = public_key_for(Path(container.ssh_key))
    content = config_bytes(public_key, container.volumes, options.metadata_file)
    path = runtime_dir / CD_NAME
    write_cd(path, {CONFIG_FILE: content})
    return path
