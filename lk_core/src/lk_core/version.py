"""Version reporting for ``lk --version``."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from lk_core.plugins import Plugins


def core_version() -> str:
    """The installed version of lk-core."""
    try:
        return version("lk-core")
    except PackageNotFoundError:  # running from a source tree
        return "unknown"


def version_lines(plugins: Plugins) -> list[str]:
    """``lk X.Y`` then one line per plugin distribution with its plugin names."""
    by_dist: dict[tuple[str, str], list[str]] = {}
    for info in plugins.infos.values():
        key = (info.distribution or "(not installed)", info.version)
        by_dist.setdefault(key, []).append(info.name)
    lines = [f"lk {core_version()}"]
    for (dist, ver), names in sorted(by_dist.items()):
        lines.append(f"  {dist} {ver}: {', '.join(sorted(names))}")
    for failure in plugins.failures:
        lines.append(f"  {failure.distribution or '?'}: {failure.name} FAILED ({failure.error})")
    return lines
