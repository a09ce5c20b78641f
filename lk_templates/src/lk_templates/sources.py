"""lk's template sources and their precedence.

============================  ========  ==========================================
source                        priority  folder
============================  ========  ==========================================
``workspace``                 40        ``./.lk/templates/`` (current directory)
``user``                      30        ``<lk config dir>/templates/``
``legacy-workspace``          20        ``./.core/linuxkit/`` (current directory)
``legacy-home``               10        ``~/.core/linuxkit/``
``embedded``                  0         shipped inside this package
============================  ========  ==========================================

A higher priority wins, so a workspace or user template can override a
built-in one of the same name; ``.core/linuxkit/`` folders (where the tool lk
re-implements keeps its templates) keep working, below lk's own folders.
Folders are looked up each time they are read (the current directory,
``$HOME`` and ``$LK_HOME`` may change).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from lk_core.model import Template
from lk_core.template_source import TemplateSource

from lk_templates.directory import DirectorySource
from lk_templates.names import TEMPLATE_EXTENSIONS, describe_template, validate_template_name

if TYPE_CHECKING:
    from importlib.abc import Traversable

WORKSPACE_PRIORITY = 40
USER_PRIORITY = 30
LEGACY_WORKSPACE_PRIORITY = 20
LEGACY_HOME_PRIORITY = 10
EMBEDDED_PRIORITY = 0

#: Folder of the embedded templates inside this package.
EMBEDDED_PACKAGE = "lk_templates"
EMBEDDED_FOLDER = "templates"


def workspace_dir() -> Path:
    """``./.lk/templates`` of the current directory."""
    return Path.cwd() / ".lk" / "templates"


def user_dir() -> Path:
    """``<lk config dir>/templates`` (``$LK_HOME/config/templates`` when LK_HOME is set)."""
    from lk_core.paths import default_config_dir

    return default_config_dir() / "templates"


def legacy_workspace_dir() -> Path:
    """``./.core/linuxkit`` of the current directory."""
    return Path.cwd() / ".core" / "linuxkit"


def legacy_home_dir() -> Path | None:
    """``~/.core/linuxkit``, or None when there is no home directory."""
    try:
        return Path.home() / ".core" / "linuxkit"
    except RuntimeError:
        return None


class EmbeddedSource:
    """The templates shipped inside lk-templates (``core-dev``, ``server-php``)."""

    name = "embedded"
    priority = EMBEDDED_PRIORITY

    def __repr__(self) -> str:
        return "EmbeddedSource()"

    def _folder(self) -> Traversable:
        return resources.files(EMBEDDED_PACKAGE).joinpath(EMBEDDED_FOLDER)

    def list_templates(self) -> list[Template]:
        """Every embedded template, sorted by name."""
        found: dict[str, Template] = {}
        for ext in TEMPLATE_EXTENSIONS:
            for entry in sorted(self._folder().iterdir(), key=lambda e: e.name):
                if not entry.name.endswith(ext) or not entry.is_file():
                    continue
                stem = entry.name[: -len(ext)]
                if stem in found:
                    continue
                text = entry.read_text(encoding="utf-8")
                found[stem] = Template(
                    stem, describe_template(text), self.name, f"{EMBEDDED_PACKAGE}:{entry.name}"
                )
        return [found[name] for name in sorted(found)]

    def read_template(self, name: str) -> str | None:
        """The text of embedded template ``name``, or None."""
        validate_template_name(name)
        for ext in TEMPLATE_EXTENSIONS:
            entry = self._folder().joinpath(name + ext)
            if entry.is_file():
                text: str = entry.read_text(encoding="utf-8")
                return text
        return None


def default_sources() -> list[TemplateSource]:
    """lk-templates' sources, highest priority first."""
    return [
        DirectorySource("workspace", workspace_dir, WORKSPACE_PRIORITY),
        DirectorySource("user", user_dir, USER_PRIORITY),
        DirectorySource("legacy-workspace", legacy_workspace_dir, LEGACY_WORKSPACE_PRIORITY),
        DirectorySource("legacy-home", legacy_home_dir, LEGACY_HOME_PRIORITY),
        EmbeddedSource(),
    ]
