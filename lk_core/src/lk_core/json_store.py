"""The built-in JSON state store.

One JSON document ``{"schema": 1, "containers": {"<id>": {...}}}`` (the
reference tool's layout plus a schema number). Safe under concurrency and
crashes:

- every read-modify-write holds an exclusive ``flock`` on ``<file>.lock``;
- every write goes to a temporary file in the same folder, is fsynced, then
  renamed over the state file, so readers see the old or the new document,
  never a truncated one;
- the file is mode 0600 and its folder 0700;
- a corrupt or unreadable file is reported with its path and what to do, and
  never overwritten.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lk_core.errors import StateError
from lk_core.model import Container
from lk_core.paths import ensure_private_dir

SCHEMA_VERSION = 1


def _describe(exc: Exception) -> str:
    """A structuring error as one line that names the bad field."""
    try:
        from cattrs import transform_error

        return "; ".join(transform_error(exc)) or str(exc)
    except Exception:
        return str(exc)


class JsonStateStore:
    """A :class:`lk_core.state.StateStore` backed by one JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        #: Top-level keys written by a newer lk, kept on write.
        self._other_keys: dict[str, Any] = {}

    # -- reading -----------------------------------------------------------
    def load(self) -> dict[str, Container]:
        """Return a snapshot of every record by ID."""
        return self._read()

    def _read(self) -> dict[str, Container]:
        from lk_core.records import container_from_dict

        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise StateError(
                f"cannot read state file {self.path}: {exc.strerror}; check its permissions"
            ) from exc
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self._corrupt(
                f"it is not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start}"
            ) from exc
        if not text.strip():
            # lk never writes an empty file (it writes a whole document, then
            # renames it into place): an empty one was truncated, and reading it
            # as "no containers" would forget running VMs.
            raise self._corrupt("it is empty" if not data else "it holds only blank space")
        try:
            document = json.loads(text)
            if not isinstance(document, dict):
                raise ValueError("the document is not a JSON object")
            raw = document.get("containers", {})
            if not isinstance(raw, dict):
                raise ValueError("'containers' is not an object")
            self._other_keys = {
                k: v for k, v in document.items() if k not in ("schema", "containers")
            }
            version = document.get("schema", SCHEMA_VERSION)
            if isinstance(version, int) and version > SCHEMA_VERSION:
                raise StateError(
                    f"state file {self.path} was written by a newer lk (schema {version}); "
                    "upgrade lk to use it"
                )
            records = {}
            for cid, entry in raw.items():
                if isinstance(entry, dict) and "id" in entry and entry["id"] != cid:
                    # Keeping either would silently drop or merge a record on the next write.
                    raise ValueError(
                        f"record {cid!r} has the id {entry['id']!r}: "
                        "a record's key and its id must be the same"
                    )
                try:
                    record = container_from_dict({"id": cid, **entry})
                except Exception as exc:
                    raise ValueError(f"record {cid!r} is invalid: {_describe(exc)}") from exc
                records[record.id] = record
            return records
        except StateError:
            raise
        except Exception as exc:
            raise self._corrupt(f"{type(exc).__name__}: {exc}") from exc

    def _corrupt(self, reason: str) -> StateError:
        """The one-line error for a state file lk cannot use as it is."""
        return StateError(
            f"state file {self.path} is corrupt ({reason}); "
            "move it aside to start with an empty state (running VMs will be forgotten)"
        )

    # -- writing -----------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        from contextlib import ExitStack

        from lk_core.locking import locked

        with ExitStack() as stack:
            try:
                ensure_private_dir(self.path.parent)
                stack.enter_context(locked(self._lock_path))
            except OSError as exc:
                raise StateError(f"cannot lock state file {self.path}: {exc.strerror}") from exc
            yield

    @contextmanager
    def transaction(self) -> Iterator[dict[str, Container]]:
        """Lock the file and yield its records; save them if the block succeeds."""
        with self._locked():
            self._remove_stale_temp_files()
            records = self._read()
            before = copy.deepcopy(records)
            yield records
            if records != before:
                self._write(records)

    def _remove_stale_temp_files(self) -> None:
        """Delete temp files left by a writer killed mid-save (only writers hold the lock)."""
        for stale in self.path.parent.glob(".containers-*.tmp"):
            stale.unlink(missing_ok=True)

    def _write(self, records: dict[str, Container]) -> None:
        from lk_core.serialize import container_to_dict

        document: dict[str, Any] = {
            **self._other_keys,
            "schema": SCHEMA_VERSION,
            "containers": {cid: container_to_dict(c) for cid, c in sorted(records.items())},
        }
        data = json.dumps(document, indent=2, sort_keys=False) + "\n"
        import tempfile

        fd, tmp = tempfile.mkstemp(prefix=".containers-", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise StateError(f"cannot write state file {self.path}: {exc.strerror}") from exc
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
