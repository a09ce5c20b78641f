"""lk-templates: LinuxKit YAML templates for lk.

Contributes the template sources ``workspace``, ``user``, ``legacy-workspace``,
``legacy-home`` and ``embedded`` through the ``register_template_sources``
hook (see :mod:`lk_templates.plugin` and :mod:`lk_templates.sources`).
"""

from __future__ import annotations

__version__ = "0.1.0"
