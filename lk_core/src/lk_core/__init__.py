"""lk-core: run LinuxKit VM images as lightweight containers.

The public Python API. Names are imported lazily so that importing
``lk_core`` (which every ``lk`` command does) stays cheap.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing is not imported for a cached ``lk --help``
if TYPE_CHECKING:
    from typing import Any

    # imported on first use: pluggy is not needed by ``lk --help``
    from lk_core.hookspecs import hookimpl as hookimpl

_EXPORTS = {
    "hookimpl": "lk_core.hookspecs",
    "LkError": "lk_core.errors",
    "apply_variables": "lk_core.templating",
    "extract_variables": "lk_core.templating",
    "detect_image_format": "lk_core.images",
    "generate_id": "lk_core.paths",
    "default_state_dir": "lk_core.paths",
    "default_state_path": "lk_core.paths",
    "default_logs_dir": "lk_core.paths",
    "ensure_logs_dir": "lk_core.paths",
    "log_path": "lk_core.paths",
    "Container": "lk_core.model",
    "RunOptions": "lk_core.model",
    "HypervisorOptions": "lk_core.model",
    "Template": "lk_core.model",
    "Status": "lk_core.model",
    "PortMapping": "lk_core.model",
    "VolumeMapping": "lk_core.model",
    "Availability": "lk_core.model",
    "Hypervisor": "lk_core.hypervisor",
    "TemplateSource": "lk_core.template_source",
    "StateStore": "lk_core.state",
    "get_plugins": "lk_core.plugins",
    "Manager": "lk_core.manager",
    "ExecResult": "lk_core.ssh",
    "apply_template": "lk_core.templating",
    "get_template": "lk_core.templating",
    "list_templates": "lk_core.templating",
    "get_hypervisor": "lk_core.images",
    "detect_hypervisor": "lk_core.images",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lk_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
