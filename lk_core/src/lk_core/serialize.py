"""The one cattrs converter that turns model objects into JSON-ready data and back.

Tolerant by design: fields written by a newer lk are kept in
``Container.extra`` and written back unchanged, and the reference tool's
``"ports": {"8080": 80}`` form is read as port mappings.
"""

from __future__ import annotations

from typing import Any

import attrs
import cattrs

from lk_core.model import Container, PortMapping, Protocol, Status
from lk_core.records import OPTIONAL_NUMBERS


def _structure_status(value: Any, _type: type) -> Status:
    try:
        return Status(value)
    except ValueError:
        return Status.BROKEN


def _structure_ports(value: Any, _type: type) -> list[PortMapping]:
    if not value:
        return []
    if isinstance(value, dict):  # the reference's {"host": guest} map
        return [PortMapping(host_port=int(h), guest_port=int(g)) for h, g in value.items()]
    return [converter.structure(item, PortMapping) for item in value]


_CONTAINER_FIELDS = frozenset(f.name for f in attrs.fields(Container)) - {"extra"}


def _structure_container(data: Any, _type: type) -> Container:
    if not isinstance(data, dict):
        raise TypeError(f"a container record must be an object, not {type(data).__name__}")
    known = {k: v for k, v in data.items() if k in _CONTAINER_FIELDS}
    extra = {k: v for k, v in data.items() if k not in _CONTAINER_FIELDS and k != "extra"}
    ports = known.pop("ports", None)
    for key in OPTIONAL_NUMBERS:
        if known.get(key) is None:
            known.pop(key, None)
    container = _base_structure_container(known, Container)
    container.ports = _structure_ports(ports, list)
    container.extra = extra
    return container


def _unstructure_container(container: Container) -> dict[str, Any]:
    data: dict[str, Any] = dict(container.extra)
    data.update(_base_unstructure_container(container))
    data.pop("extra", None)
    return data


def make_converter() -> cattrs.Converter:
    """Build the converter used for the state file and ``--format json`` output."""
    conv = cattrs.Converter(forbid_extra_keys=False)
    conv.register_structure_hook(Status, _structure_status)
    conv.register_unstructure_hook(Status, lambda s: s.value)
    conv.register_unstructure_hook(Protocol, lambda p: p.value)
    return conv


converter = make_converter()
_base_structure_container = converter.gen_structure_attrs_fromdict(Container)
_base_unstructure_container = converter.gen_unstructure_attrs_fromdict(Container)
converter.register_structure_hook(Container, _structure_container)
converter.register_unstructure_hook(Container, _unstructure_container)


def container_to_dict(container: Container) -> dict[str, Any]:
    """Return a JSON-ready dict for a container (unknown fields preserved)."""
    result: dict[str, Any] = converter.unstructure(container)
    return result


def container_from_dict(data: dict[str, Any]) -> Container:
    """Build a container from a state-file record (unknown fields kept in ``extra``).

    Readers of many records use :func:`lk_core.records.container_from_dict`,
    which gives the same result without building this converter when it can.
    """
    return converter.structure(data, Container)
