"""Every hook in lk_core.hookspecs is documented in docs/plugins/hooks.md, exactly.

Like datasette's documented-hooks test: the page must have a section per hook
with the signature rendered from the code and the hook's docstring. The
checker (docs/_hooks/hookdoc.py, also run by the mkdocs build) is shown to
fail on an undocumented hook, a changed signature, a dropped
``firstresult``, an edited docstring and a stale entry.
"""

from __future__ import annotations

import inspect
import re
import textwrap
import types
from pathlib import Path

import hookdoc
import pytest

from lk_core import hookspecs

HOOKS_PAGE = Path(__file__).resolve().parents[2] / "docs" / "plugins" / "hooks.md"


@pytest.fixture(scope="module")
def page() -> str:
    return HOOKS_PAGE.read_text(encoding="utf-8")


def test_every_hook_is_documented_with_its_exact_signature_and_docstring(page: str) -> None:
    assert hookdoc.problems(hookspecs, page) == []


def test_the_page_documents_exactly_the_hooks_that_exist(page: str) -> None:
    names = set(hookdoc.hookspecs_of(hookspecs))
    assert names == {
        "register_hypervisors",
        "detect_image_format",
        "register_template_sources",
        "open_state_store",
        "register_commands",
        "register_options",
        "prepare_run",
        "container_created",
        "container_started",
        "container_stopped",
        "container_removed",
    }
    assert set(hookdoc.sections(page)) == names


@pytest.mark.parametrize("name", sorted(hookdoc.hookspecs_of(hookspecs)))
def test_rendered_signature_matches_inspect(name: str) -> None:
    """The rendering is inspect.signature's own text, annotations unquoted."""
    function = getattr(hookspecs, name)
    rendered = hookdoc.render_spec(function).splitlines()[1]
    signature = str(inspect.signature(function)).replace("'", "")
    assert rendered == f"def {name}{signature}: ..."


# -- the checker can fail ------------------------------------------------------------


def fake_hookspecs(extra: str) -> types.ModuleType:
    """A copy of lk_core.hookspecs with ``extra`` code appended."""
    source = inspect.getsource(hookspecs) + "\n\n" + textwrap.dedent(extra)
    module = types.ModuleType("fake_hookspecs")
    exec(compile(source, "fake_hookspecs.py", "exec"), module.__dict__)
    return module


def test_fails_when_a_hook_is_undocumented(page: str) -> None:
    module = fake_hookspecs(
        '''
        @hookspec
        def before_stop(container: Container) -> None:
            """Called before a container is stopped."""
        '''
    )
    assert hookdoc.problems(module, page) == [
        "before_stop: not documented (add a '## `before_stop`' section)"
    ]


def test_fails_when_a_documented_signature_differs(page: str) -> None:
    edited = page.replace(
        "def detect_image_format(path: Path) -> str | None: ...",
        "def detect_image_format(path: str) -> str | None: ...",
    )
    assert edited != page
    (problem,) = hookdoc.problems(hookspecs, edited)
    assert problem.startswith("detect_image_format: signature differs")
    assert "path: str" in problem and "path: Path" in problem


def test_fails_when_the_code_signature_changes(page: str) -> None:
    module = fake_hookspecs(
        '''
        @hookspec
        def register_commands(cli: click.Group, plugins: object) -> None:
            """Add commands to the ``lk`` command line.

            Receives the root :class:`click.Group`; call ``cli.add_command(...)`` or
            decorate functions with ``@cli.command()``. Returns nothing. Every plugin
            is called. Keep imports inside the command functions so that ``lk --help``
            stays fast, or add the command by where it lives with
            ``lk_core.cli.root.add_lazy_command(cli, NAME, "module:attribute")``: its
            module is then imported only when that command is used.
            """
        '''
    )
    (problem,) = hookdoc.problems(module, page)
    assert problem.startswith("register_commands: signature differs")


def test_fails_when_firstresult_is_not_documented(page: str) -> None:
    edited = page.replace(
        "@hookspec(firstresult=True)\ndef open_state_store", "@hookspec\ndef open_state_store"
    )
    assert edited != page
    (problem,) = hookdoc.problems(hookspecs, edited)
    assert problem.startswith("open_state_store: signature differs")


def test_fails_when_the_docstring_differs(page: str) -> None:
    edited = page.replace("The first non-`None` answer wins; lk-core's JSON store", "Whatever.")
    assert edited != page
    assert hookdoc.problems(hookspecs, edited) == [
        "open_state_store: docstring differs from the hookspec's (or is missing)"
    ]


def test_fails_when_a_section_is_removed(page: str) -> None:
    edited = re.sub(r"## `register_template_sources`.*?(?=^## )", "", page, flags=re.S | re.M)
    assert "register_template_sources`\n" not in edited
    assert hookdoc.problems(hookspecs, edited) == [
        "register_template_sources: not documented (add a '## `register_template_sources`' section)"
    ]


def test_fails_when_a_documented_hook_does_not_exist(page: str) -> None:
    edited = (
        page + "\n## `register_widgets`\n\n```python\n@hookspec\ndef register_widgets(): ...\n```\n"
    )
    assert hookdoc.problems(hookspecs, edited) == [
        "register_widgets: documented, but lk_core.hookspecs has no such hook"
    ]


def test_rst_roles_become_markdown() -> None:
    text = "See :class:`~lk_core.model.Template` and :func:`lk_core.x.y`, ``code``."
    assert hookdoc.rst_to_markdown(text) == "See `Template` and `lk_core.x.y`, `code`."
