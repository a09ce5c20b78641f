"""Helpers for tests of the ``lk`` command line: the state file, waiting, a fake terminal,
and running ``lk`` in a subprocess that records the modules it imported."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Runs ``lk`` with ``sys.argv[1:]``, like the console script does.
_LK = "import sys; from lk_core.cli import main; raise SystemExit(main(sys.argv[1:]))"
#: Prepended to record, at exit, every module the process imported (one line, spaces).
_RECORD_MODULES = (
    "import atexit, sys; "
    "atexit.register(lambda: open({out!r}, 'w').write(' '.join(sorted(sys.modules)))); "
)


def state(home: Path) -> dict[str, Any]:
    """The records of the state file in ``home`` (empty when there is none)."""
    path = home / "containers.json"
    return json.loads(path.read_text())["containers"] if path.exists() else {}


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, step: float = 0.05) -> Any:
    """Call ``condition`` until it returns something true, and return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


class FakeTerminal:
    """A stand-in for a stream that says whether it is a terminal and records what is written."""

    def __init__(self, tty: bool = True) -> None:
        self.tty = tty
        self.text = ""

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass


def run_lk_recording(
    args: list[str] | tuple[str, ...],
    env: dict[str, str] | None = None,
    modules_file: Path | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run ``lk ARGS`` in a new Python; with ``modules_file``, write there what it imported."""
    prelude = _RECORD_MODULES.format(out=str(modules_file)) if modules_file else ""
    return subprocess.run(
        [sys.executable, "-c", prelude + _LK, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
