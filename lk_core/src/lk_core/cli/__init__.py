"""The ``lk`` command line.

:func:`main` answers ``lk --help`` from the command catalog
(:mod:`lk_core.cli.catalog`) when it holds, without importing Click or any
plugin. Everything else runs the root Click group of
:mod:`lk_core.cli.root`, assembled from the loaded plugins. ``cli``,
``build_cli``, ``LkGroup`` and ``install_plugin_options`` are that module's,
importable from here.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing is not imported for a cached ``lk --help``
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from lk_core.cli.root import LkGroup, build_cli, cli, install_plugin_options

__all__ = ["LkGroup", "build_cli", "cli", "install_plugin_options", "main", "plugins_given", "run"]
_FROM_ROOT = ("cli", "build_cli", "LkGroup", "install_plugin_options")


def __getattr__(name: str) -> Any:
    if name not in _FROM_ROOT:
        raise AttributeError(f"module 'lk_core.cli' has no attribute {name!r}")
    from lk_core.cli import root

    return getattr(root, name)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``lk`` command line with ``argv`` and return its exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["--help"], ["-h"]) and not plugins_given():
        from lk_core.cli.catalog import cached_help

        text = cached_help()
        if text is not None:
            return _print(text)
    from lk_core.cli.root import run_command_line

    return run_command_line(args)


def plugins_given() -> bool:
    """Whether this process already has its plugins (loaded earlier or set by hand).

    Then ``lk --help`` lists those plugins' commands, not the cached list.
    """
    plugins_module = sys.modules.get("lk_core.plugins")
    return getattr(plugins_module, "_current", None) is not None


def _print(text: str) -> int:
    """Write ``text`` to stdout as Click would: nothing if it is closed; 1 if the reader left."""
    if sys.stdout is None:
        return 0
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # lk --help | head -1: the reader went away
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 1
    return 0


def run() -> None:
    """Console-script entry point: run :func:`main` and exit with its status."""
    sys.exit(main())
