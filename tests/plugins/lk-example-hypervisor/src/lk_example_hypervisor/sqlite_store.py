"""An opt-in state store that keeps container records in SQLite.

Not registered through the entry point (installing the example must not move
anyone's state): load it with ``LK_PLUGIN_MODULES=lk_example_hypervisor.sqlite_store``.
It answers ``open_state_store`` before lk's JSON store (which answers last), so
records then live in ``containers.sqlite`` beside where ``containers.json``
would be.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from lk_core.model import Container
from lk_core.serialize import container_from_dict, container_to_dict

from lk_core import hookimpl


# --8<-- [start:store]
class SqliteStateStore:
    """A :class:`lk_core.state.StateStore`: ``load`` and a locked ``transaction``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = str(path)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path.touch(mode=0o600, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        conn.execute("CREATE TABLE IF NOT EXISTS containers (id TEXT PRIMARY KEY, data TEXT)")
        return conn

    @staticmethod
    def _read(conn: sqlite3.Connection) -> dict[str, Container]:
        rows = conn.execute("SELECT data FROM containers").fetchall()
        records = [container_from_dict(json.loads(data)) for (data,) in rows]
        return {record.id: record for record in records}

    def load(self) -> dict[str, Container]:
        """A snapshot of every record by ID."""
        with closing(self._connect()) as conn:
            return self._read(conn)

    @contextmanager
    def transaction(self) -> Iterator[dict[str, Container]]:
        """Lock the database, yield its records, save them if the block succeeds."""
        with closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")  # the write lock: other writers wait here
            try:
                records = self._read(conn)
                yield records
                conn.execute("DELETE FROM containers")
                conn.executemany(
                    "INSERT INTO containers (id, data) VALUES (?, ?)",
                    [(cid, json.dumps(container_to_dict(c))) for cid, c in records.items()],
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")


@hookimpl
def open_state_store(path: Path) -> SqliteStateStore:
    """Keep records in ``containers.sqlite`` instead of lk's ``containers.json``."""
    return SqliteStateStore(path.with_suffix(".sqlite"))


# --8<-- [end:store]
