"""Check that docs/plugins/hooks.md documents every hook exactly (datasette-style).

For every hookspec in a module (by default :mod:`lk_core.hookspecs`) the
documentation must hold:

- a section headed ``## `NAME` `` (``##``, the name in backticks);
- in that section, a ``python`` code block with the decorator and signature,
  rendered exactly as :func:`render_spec` renders them from the function
  (``@hookspec`` or ``@hookspec(firstresult=True)``, then ``def NAME(...) -> ...: ...``);
- the hook's docstring, its reStructuredText turned into Markdown by
  :func:`rst_to_markdown` (the text may go on after it: examples, notes).

A documented hook that does not exist is reported too. Used by
``tests/docs/test_hooks_documented.py`` and by the mkdocs build (``lk_docs.py``),
so ``mkdocs build --strict`` fails on a stale hook reference.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

PROJECT = "lk"
_SECTION = re.compile(r"^## `(?P<name>[A-Za-z_][A-Za-z0-9_]*)`\s*$", re.MULTILINE)
_PYTHON_BLOCK = re.compile(r"^```python\n(?P<code>.*?)^```\s*$", re.MULTILINE | re.DOTALL)
_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc):`(?P<tilde>~?)(?P<target>[^`]+)`")
_LITERAL = re.compile(r"``(?P<text>[^`]+)``")


def hookspecs_of(module: ModuleType) -> dict[str, Callable[..., Any]]:
    """The hook specifications in ``module``: functions marked by ``HookspecMarker("lk")``."""
    marker = f"{PROJECT}_spec"
    return {
        name: value
        for name, value in vars(module).items()
        if callable(value) and getattr(value, marker, None) is not None
    }


def _annotation(value: Any) -> str:
    if value is inspect.Parameter.empty or value is inspect.Signature.empty:
        return ""
    return value if isinstance(value, str) else inspect.formatannotation(value)


def render_spec(function: Callable[..., Any]) -> str:
    """The decorator and signature line of a hookspec, as the docs must show them."""
    options = getattr(function, f"{PROJECT}_spec", None) or {}
    flags = [f"{key}=True" for key in ("firstresult", "historic") if options.get(key)]
    decorator = "@hookspec" + (f"({', '.join(flags)})" if flags else "")
    signature = inspect.signature(function)
    params = []
    for param in signature.parameters.values():
        annotation = _annotation(param.annotation)
        text = f"{param.name}: {annotation}" if annotation else param.name
        if param.default is not inspect.Parameter.empty:
            text += f" = {param.default!r}"
        params.append(text)
    returns = _annotation(signature.return_annotation)
    arrow = f" -> {returns}" if returns else ""
    return f"{decorator}\ndef {function.__name__}({', '.join(params)}){arrow}: ..."


def rst_to_markdown(text: str) -> str:
    """Turn the reST of a docstring into Markdown: ``x`` -> `x`, :class:`~a.B` -> `B`."""

    def role(match: re.Match[str]) -> str:
        target = match["target"]
        if match["tilde"]:
            target = target.rsplit(".", 1)[-1]
        return f"`{target}`"

    return _LITERAL.sub(lambda m: f"`{m['text']}`", _ROLE.sub(role, text))


def _normalise(text: str) -> str:
    return " ".join(text.split())


def sections(markdown: str) -> dict[str, str]:
    """The ``## `NAME` `` sections of the page, by hook name (text up to the next ``## ``)."""
    found: dict[str, str] = {}
    matches = list(_SECTION.finditer(markdown))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(markdown)
        body = markdown[match.end() : end]
        following = re.search(r"^## ", body, re.MULTILINE)
        found[match["name"]] = body[: following.start()] if following else body
    return found


def problems(module: ModuleType, markdown: str) -> list[str]:
    """Every way ``markdown`` fails to document the hookspecs of ``module``; [] when it is right."""
    specs = hookspecs_of(module)
    documented = sections(markdown)
    found: list[str] = []
    for name in sorted(set(documented) - set(specs)):
        found.append(f"{name}: documented, but {module.__name__} has no such hook")
    for name, function in sorted(specs.items()):
        body = documented.get(name)
        if body is None:
            found.append(f"{name}: not documented (add a '## `{name}`' section)")
            continue
        expected = render_spec(function)
        blocks = [m["code"].strip() for m in _PYTHON_BLOCK.finditer(body)]
        if expected not in blocks:
            shown = blocks[0] if blocks else "(no python code block)"
            found.append(f"{name}: signature differs: documented {shown!r}, actual {expected!r}")
        docstring = rst_to_markdown(inspect.getdoc(function) or "")
        if not docstring:
            found.append(f"{name}: the hookspec has no docstring")
        elif _normalise(docstring) not in _normalise(body):
            found.append(f"{name}: docstring differs from the hookspec's (or is missing)")
    return found
