"""mkdocs hooks of lk's documentation (``hooks:`` in mkdocs.yml).

- ``reference/cli.md`` is generated from the Click commands on every build
  (:mod:`cli_reference`), so the CLI reference cannot go stale;
- ``plugins/hooks.md`` is checked against :mod:`lk_core.hookspecs`
  (:mod:`hookdoc`): a missing hook, or a signature or docstring that differs,
  is a warning, which fails ``mkdocs build --strict``;
- ``<!-- lk:fields MODULE.CLASS -->`` in a page is replaced by a table of
  that attrs class's fields (name, type, default), read from the code.
"""

from __future__ import annotations

import enum
import importlib
import logging
import re

import cli_reference
import hookdoc
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

log = logging.getLogger("mkdocs.hooks.lk_docs")

CLI_REFERENCE = "reference/cli.md"
HOOK_REFERENCE = "plugins/hooks.md"
_FIELDS = re.compile(r"<!-- lk:fields (?P<target>[\w.]+) -->")


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the generated CLI reference."""
    try:
        group = cli_reference.build_group()
    except ImportError as error:
        raise RuntimeError(
            "the CLI reference is generated from lk's commands: install lk into the docs "
            "environment first (pip install -e ./lk_core -e ./lk_qemu -e ./lk_hyperkit "
            f"-e ./lk_templates, or nox -s docs): {error}"
        ) from error
    files.append(File.generated(config, CLI_REFERENCE, content=cli_reference.render(group)))
    return files


def fields_table(target: str) -> str:
    """A Markdown table of the fields of the attrs class ``module.Class``."""
    import attrs

    module_name, _, class_name = target.rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    rows = ["| Field | Type | Default |", "|---|---|---|"]
    for field in attrs.fields(cls):
        kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
        factory = getattr(field.default, "factory", None)  # an attrs.Factory
        if field.default is attrs.NOTHING:
            default = "required"
        elif factory is not None:
            default = f"`{factory.__name__}()`"
        elif isinstance(field.default, enum.Enum):
            default = f"`{type(field.default).__name__}.{field.default.name}`"
        else:
            default = f"`{field.default!r}`"
        # A pipe inside a code span does not split a Markdown table cell.
        rows.append(f"| `{field.name}` | `{kind}` | {default} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Check the hook reference; expand ``lk:fields`` tables."""
    if page.file.src_uri == HOOK_REFERENCE:
        from lk_core import hookspecs

        for problem in hookdoc.problems(hookspecs, markdown):
            log.warning("%s does not match lk_core.hookspecs: %s", HOOK_REFERENCE, problem)

    def expand(match: re.Match[str]) -> str:
        return fields_table(match["target"])

    return _FIELDS.sub(expand, markdown)
