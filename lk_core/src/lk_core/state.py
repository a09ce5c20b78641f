"""The state-store interface every store plugin implements, and shared helpers.

A store needs only two methods: :meth:`StateStore.load` (a snapshot) and
:meth:`StateStore.transaction` (a locked read-modify-write). Everything else
(``get``, ``all``, ``add``, ``update``, ``remove``) is built on those two by
:class:`StoreOperations`, so a plugin author writes the storage, not the logic.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

from lk_core.errors import LkError, NotFoundError
from lk_core.model import Container


@runtime_checkable
class StateStore(Protocol):
    """Persistent storage of container records."""

    #: Where the state lives, for messages (a file path, a URL...).
    location: str

    def load(self) -> dict[str, Container]:
        """Return a snapshot of every record by ID (copies: changing them changes nothing)."""
        ...

    def transaction(self) -> AbstractContextManager[dict[str, Container]]:
        """Lock the store and yield its records for changing in place.

        The changed mapping is saved when the block exits normally; on an
        exception nothing is saved. No other transaction runs meanwhile, in
        this process or any other.
        """
        ...


class StoreOperations:
    """Record-level operations on top of any :class:`StateStore`."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def all(self) -> list[Container]:
        """Every record, oldest first (copies)."""
        return sorted(self.store.load().values(), key=lambda c: (c.started_at, c.id))

    def get(self, container_id: str) -> Container | None:
        """A copy of one record, or None."""
        return self.store.load().get(container_id)

    def add(self, container: Container) -> None:
        """Insert a new record; its ID and (non-empty) name must be unused."""
        with self.store.transaction() as records:
            if container.id in records:
                raise LkError(f"a container with ID {container.id} already exists")
            if container.name and any(c.name == container.name for c in records.values()):
                raise LkError(
                    f"the name {container.name!r} is already in use: "
                    "choose another with --name, or remove the old container with lk rm"
                )
            records[container.id] = copy.deepcopy(container)

    def update(self, container_id: str, change: Callable[[Container], None]) -> Container:
        """Apply ``change`` to one record under the lock and return a copy of the result."""
        with self.store.transaction() as records:
            record = records.get(container_id)
            if record is None:
                raise NotFoundError(f"no such container: {container_id}")
            change(record)
            return copy.deepcopy(record)

    def remove(self, container_id: str) -> bool:
        """Delete a record; return whether it existed."""
        with self.store.transaction() as records:
            return records.pop(container_id, None) is not None

    def iter_ids(self) -> Iterator[str]:
        """The IDs of every record."""
        yield from self.store.load()
