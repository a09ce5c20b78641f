"""Where lk keeps its files.

Without ``$LK_HOME`` the locations follow the platform's conventions
(platformdirs): state in the user state dir, logs in the user log dir,
configuration (SSH key, user templates) in the user config dir. With
``$LK_HOME`` set, everything lives under that one folder::

    $LK_HOME/containers.json   state file
    $LK_HOME/logs/<id>.log     serial console of each container
    $LK_HOME/run/<id>/         per-container runtime files (pidfile, sockets)
    $LK_HOME/config/           SSH key, user templates
    $LK_HOME/disks/            named disks (``lk disk``)
    $LK_HOME/checkpoints/      saved VM states (``lk checkpoint``)
"""

from __future__ import annotations

import os
from collections.abc import Container as _In
from pathlib import Path

APP_NAME = "lk"
STATE_FILE_NAME = "containers.json"


def lk_home() -> Path | None:
    """The ``$LK_HOME`` folder if that variable is set and non-empty."""
    value = os.environ.get("LK_HOME", "").strip()
    return Path(value).expanduser().absolute() if value else None


def default_state_dir() -> Path:
    """The folder that holds the state file and the runtime folders."""
    home = lk_home()
    if home is not None:
        return home
    import platformdirs

    return Path(platformdirs.user_state_dir(APP_NAME, appauthor=False))


def default_state_path() -> Path:
    """The JSON state file."""
    return default_state_dir() / STATE_FILE_NAME


def default_logs_dir() -> Path:
    """The folder of the containers' console logs."""
    home = lk_home()
    if home is not None:
        return home / "logs"
    import platformdirs

    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


def default_config_dir() -> Path:
    """The folder of lk's configuration (SSH key pair, user templates)."""
    home = lk_home()
    if home is not None:
        return home / "config"
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def default_disks_dir() -> Path:
    """The folder of named disks (``lk disk create``): ``<user data dir>/disks``."""
    home = lk_home()
    if home is not None:
        return home / "disks"
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "disks"


def default_checkpoints_dir() -> Path:
    """The folder of checkpoints (``lk checkpoint``): ``<user data dir>/checkpoints``."""
    home = lk_home()
    if home is not None:
        return home / "checkpoints"
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "checkpoints"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) as private folders (mode 0700).

    Only the folders created here are given mode 0700. A folder that already
    exists keeps its mode: ``$LK_HOME`` may point at a folder lk did not make
    (even ``/tmp``, whose sticky 1777 mode must survive), so lk never changes
    the permissions of a folder it did not create.
    """
    missing: list[Path] = []
    current = path
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue  # created by someone else in the meantime: not ours to change
        os.chmod(folder, 0o700)  # the umask may have removed bits lk needs
    return path


def ensure_logs_dir() -> Path:
    """Create the logs folder (mode 0700) and return it."""
    return ensure_private_dir(default_logs_dir())


def log_path(container_id: str) -> Path:
    """The console log file of a container: ``<logs dir>/<id>.log``."""
    return default_logs_dir() / f"{container_id}.log"


def runtime_dir(container_id: str) -> Path:
    """The private runtime folder of a container (pidfile, QMP socket, metadata CD)."""
    return default_state_dir() / "run" / container_id


def generate_id(taken: _In[str] = ()) -> str:
    """Return a new container ID: 8 lowercase hex characters not in ``taken``."""
    import secrets

    while True:
        candidate = secrets.token_hex(4)
        if candidate not in taken:
            return candidate
