"""Reading container records quickly, without building the cattrs converter.

``lk ps`` reads every record of the state file on each call, and importing
cattrs and generating its converter (:mod:`lk_core.serialize`) costs more
than reading a thousand records. A record in the shape lk writes is built
here straight from the model's field types. Anything else (a missing field,
a value of another type, the reference tool's ``"ports": {"8080": 80}`` map,
an unknown status, an unknown key inside a port mapping) is handed to the
cattrs converter, which reads the tolerant forms and names the bad field in
its errors. Both paths give the same :class:`~lk_core.model.Container` for
every record; ``tests/lk_core/test_records.py`` holds them to that.
"""

from __future__ import annotations

import enum
import functools
import typing
from collections.abc import Callable
from typing import Any

import attrs

from lk_core.model import Container

__all__ = ["OPTIONAL_NUMBERS", "Unusual", "container_from_dict", "fast_container_from_dict"]

#: Number fields whose ``null`` means "not set": read as the field's default.
OPTIONAL_NUMBERS = ("pid", "supervisor_pid", "memory", "cpus", "ssh_port")

_Reader = Callable[[Any], Any]


class Unusual(Exception):
    """A record (or value) this module does not read itself: the converter will."""


def container_from_dict(data: dict[str, Any]) -> Container:
    """Build a container from a state-file record (unknown fields kept in ``extra``).

    The same result as :func:`lk_core.serialize.container_from_dict`, which
    is used for any record not in the shape lk writes.
    """
    try:
        return fast_container_from_dict(data)
    except Unusual:
        from lk_core.serialize import container_from_dict as convert

        return convert(data)


def fast_container_from_dict(data: Any) -> Container:
    """Build a container from a record in the shape lk writes; raise :class:`Unusual` if not."""
    if type(data) is not dict:
        raise Unusual("not an object")
    readers = _readers(Container)
    known: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in data.items():
        reader = readers.get(key)
        if reader is None:
            if key != "extra":
                extra[key] = value
        elif value is None and key in OPTIONAL_NUMBERS:
            continue
        else:
            known[key] = reader(value)
    _check_required(Container, known)
    container = Container(**known)
    container.extra = extra
    return container


def _check_required(cls: type, values: dict[str, Any]) -> None:
    for field in attrs.fields(cls):
        if field.default is attrs.NOTHING and field.name not in values:
            raise Unusual(f"{field.name} is missing")


@functools.cache
def _readers(cls: type) -> dict[str, _Reader]:
    """One reader per field of attrs class ``cls`` (``extra`` excluded)."""
    hints = typing.get_type_hints(cls)
    return {f.name: _reader_for(hints[f.name]) for f in attrs.fields(cls) if f.name != "extra"}


def _reader_for(hint: Any) -> _Reader:
    """A function that returns a value of type ``hint`` as lk writes it, or raises Unusual."""
    if hint is Any:
        return _same
    if hint in (str, int, bool, float):
        return functools.partial(_exactly, hint)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is list and len(args) == 1:
        return functools.partial(_list_of, _reader_for(args[0]))
    if origin is dict and len(args) == 2 and args[0] is str:
        return functools.partial(_dict_of, _reader_for(args[1]))
    if args and type(None) in args and len(args) == 2:
        inner = _reader_for(next(a for a in args if a is not type(None)))
        return functools.partial(_optional, inner)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return functools.partial(_member_of, hint)
    if attrs.has(hint):
        return functools.partial(_instance_of, hint)
    raise TypeError(f"lk_core.records cannot read a field of type {hint!r}")


def _same(value: Any) -> Any:
    return value


def _exactly(kind: type, value: Any) -> Any:
    if type(value) is not kind:
        raise Unusual(f"{value!r} is not a {kind.__name__}")
    return value


def _list_of(item: _Reader, value: Any) -> list[Any]:
    if type(value) is not list:
        raise Unusual("not a list")
    return [item(v) for v in value]


def _dict_of(item: _Reader, value: Any) -> dict[str, Any]:
    if type(value) is not dict:
        raise Unusual("not an object")
    result = {}
    for key, v in value.items():
        if type(key) is not str:
            raise Unusual("a key is not a string")
        result[key] = item(v)
    return result


def _optional(inner: _Reader, value: Any) -> Any:
    return None if value is None else inner(value)


def _member_of(kind: type[enum.Enum], value: Any) -> enum.Enum:
    try:
        return kind(value)
    except ValueError:
        raise Unusual(f"{value!r} is not a {kind.__name__}") from None


def _instance_of(cls: type, value: Any) -> Any:
    if type(value) is not dict:
        raise Unusual(f"a {cls.__name__} is not an object")
    readers = _readers(cls)
    known = {}
    for key, v in value.items():
        reader = readers.get(key)
        if reader is None:
            raise Unusual(f"unknown key {key!r} in a {cls.__name__}")
        known[key] = reader(v)
    _check_required(cls, known)
    return cls(**known)
