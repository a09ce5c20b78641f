"""Sizes given by users: ``1024``, ``512M``, ``1G``, ``1.5g``."""

from __future__ import annotations

import re

from lk_core.errors import UsageError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(?:[iI]?[bB])?\s*$")
_MB_PER_UNIT = {"": 1.0, "k": 1 / 1024, "m": 1.0, "g": 1024.0, "t": 1024.0 * 1024}


def parse_memory(text: str | int) -> int:
    """Memory in MB from a number of MB or a size with a K/M/G/T suffix (powers of 1024)."""
    if isinstance(text, int):
        value = text
    else:
        match = _SIZE.match(text)
        if not match:
            raise UsageError(
                f"invalid memory size {text!r}: use MB or a suffix, e.g. 1024, 512M, 2G"
            )
        value = int(float(match.group(1)) * _MB_PER_UNIT[match.group(2).lower()])
    if value < 16:
        raise UsageError(f"invalid memory size {text!r}: at least 16 MB is needed")
    return value
