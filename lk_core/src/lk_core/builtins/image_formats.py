"""Built-in plugin: detects ISO, qcow2, VMDK, raw and LinuxKit kernel+initrd images."""

from __future__ import annotations

from pathlib import Path

from lk_core.hookspecs import hookimpl


@hookimpl(trylast=True)
def detect_image_format(path: Path) -> str | None:
    """Name the format of ``path`` by content first, then by extension."""
    from lk_core.formats import detect_builtin

    return detect_builtin(path)
