"""lk_core knows no plugin: it imports none, and no identifier or bare string names one.

Prose in user messages ("install lk-qemu") and docstrings is fine; an identifier
(``hyperkit_options``), an attribute, or a bare constant such as ``"qemu"`` is not.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "lk_core" / "src" / "lk_core"
PLUGIN_PACKAGES = ("lk_qemu", "lk_hyperkit", "lk_templates", "lk_libvirt")
FORBIDDEN = re.compile(r"hyperkit|qemu|linuxkit|libvirt", re.IGNORECASE)
#: A string constant with no space is a name or a key, not prose.
NAME_LIKE = re.compile(r"^[\w.+:/-]+$")


def _modules() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _names(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Every identifier the code defines or uses, and every name-like string constant."""
    docstrings = _docstring_nodes(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            yield node.lineno, node.id
        elif isinstance(node, ast.Attribute):
            yield node.lineno, node.attr
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node.lineno, node.name
        elif isinstance(node, ast.arg):
            yield node.lineno, node.arg
        elif isinstance(node, ast.alias):
            yield node.lineno, node.asname or node.name
        elif isinstance(node, ast.keyword) and node.arg:
            yield node.value.lineno, node.arg
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and NAME_LIKE.match(node.value)
        ):
            yield node.lineno, node.value


def test_the_scan_finds_what_it_must_refuse() -> None:
    code = (
        'import lk_qemu\nx = {"qemu": 1}\ndef hyperkit_path(): pass\nmsg = "install lk-qemu now"\n'
    )
    found = [name for _line, name in _names(ast.parse(code)) if FORBIDDEN.search(name)]
    assert sorted(found) == ["hyperkit_path", "lk_qemu", "qemu"]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(CORE)))
def test_no_identifier_or_bare_constant_names_a_plugin(path: Path) -> None:
    tree = ast.parse(path.read_text(), str(path))
    found = [f"line {line}: {name!r}" for line, name in _names(tree) if FORBIDDEN.search(name)]
    assert not found, f"{path.name} names a plugin: {found}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(CORE)))
def test_no_import_of_a_plugin_package(path: Path) -> None:
    tree = ast.parse(path.read_text(), str(path))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            imported.add(node.module.split(".")[0])
    assert not imported & set(PLUGIN_PACKAGES), f"{path.name} imports {imported}"


def test_importing_every_core_module_loads_no_plugin() -> None:
    names = sorted(
        ".".join(("lk_core", *p.relative_to(CORE).with_suffix("").parts))
        for p in _modules()
        if p.name != "__main__.py"
    )
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name.removesuffix('.__init__'))\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {PLUGIN_PACKAGES!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
