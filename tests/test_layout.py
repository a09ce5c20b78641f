"""The test tree itself: module basenames are unique (pytest's default import mode needs it)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).parent


def test_test_module_basenames_are_unique() -> None:
    names = Counter(p.name for p in TESTS.rglob("test_*.py") if "site-packages" not in p.parts)
    duplicates = sorted(name for name, count in names.items() if count > 1)
    assert not duplicates, f"rename these test modules, their basenames clash: {duplicates}"
