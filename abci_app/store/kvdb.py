"""SQLite persistence for the state store: one atomic transaction per committed block."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from fedledger.abci_app.errors import StorageError

__all__ = ["SCHEMA_VERSION", "KVDB", "StateStoreError", "prefix_upper_bound"]

SCHEMA_VERSION = 1
# Rows fetched per round trip by range scans; bounded so a huge prefix never sits in memory at once.
_CHUNK = 512


class StateStoreError(StorageError):
    """The state store was misused or its database is unusable."""

    error_code = "STATE_STORE"


def prefix_upper_bound(prefix: bytes) -> bytes | None:
    """Return the smallest byte string greater than every string starting with `prefix` (None: no bound)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


@contextmanager
def _db_errors(doing: str) -> Iterator[None]:
    """Turn sqlite3 errors into StateStoreError naming the operation."""
    try:
        yield
    except sqlite3.Error as e:
        raise StateStoreError(f"state database error while {doing}: {e}") from e


class KVDB:
    """A sqlite3 database with tables kv(key, value) and meta(height, app_hash).

    All methods are serialised by a lock so that a query thread and the consensus thread can share it.
    The connection is in autocommit mode; `write_block` opens its own explicit transaction.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(os.fspath(path), isolation_level=None, check_same_thread=False)
            # WAL: readers never block on the writer and a commit is one append + fsync.
            self._conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a returned commit survives power loss (CometBFT would otherwise see a lower height
            # and replay, which is safe too, but FULL keeps the reported height honest).
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(
                    "CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID"
                )
                self._conn.execute(
                    "CREATE TABLE IF NOT EXISTS meta (id INTEGER PRIMARY KEY CHECK (id = 0), "
                    "schema INTEGER NOT NULL, height INTEGER NOT NULL, app_hash BLOB NOT NULL)"
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as e:
            raise StateStoreError(f"cannot open state database {os.fspath(path)!r}: {e}") from e

    def load_meta(self) -> tuple[int, int, bytes] | None:
        """Return (schema version, height, app hash) of the last commit, or None for a fresh database."""
        with self._lock, _db_errors("reading the state metadata"):
            row = self._conn.execute("SELECT schema, height, app_hash FROM meta WHERE id = 0").fetchone()
        if row is None:
            return None
        return int(row[0]), int(row[1]), bytes(row[2])

    def get(self, key: bytes) -> bytes | None:
        """Return the committed value of `key`, or None."""
        with self._lock, _db_errors("reading a key"):
            row = self._conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def iter_range(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """Yield committed (key, value) with start <= key < end (end None: unbounded), sorted by key.

        Rows are fetched in chunks, each chunk resuming after the last key seen, so the iteration holds
        no cursor (and no lock) between chunks.
        """
        lower, inclusive = start, True
        while True:
            op = ">=" if inclusive else ">"
            with self._lock, _db_errors("scanning keys"):
                if end is None:
                    rows = self._conn.execute(
                        f"SELECT key, value FROM kv WHERE key {op} ? ORDER BY key LIMIT ?", (lower, _CHUNK)
                    ).fetchall()
                else:
                    rows = self._conn.execute(
                        f"SELECT key, value FROM kv WHERE key {op} ? AND key < ? ORDER BY key LIMIT ?",
                        (lower, end, _CHUNK),
                    ).fetchall()
            for k, v in rows:
                yield bytes(k), bytes(v)
            if len(rows) < _CHUNK:
                return
            lower, inclusive = bytes(rows[-1][0]), False

    def iter_all(self) -> Iterator[tuple[bytes, bytes]]:
        """Yield every committed (key, value), sorted by key."""
        return self.iter_range(b"", None)

    def write_block(
        self, changes: Iterable[tuple[bytes, bytes | None]], height: int, app_hash: bytes
    ) -> None:
        """Apply `changes` (value None = delete) and record (height, app_hash) in ONE transaction."""
        upserts: list[tuple[bytes, bytes]] = []
        deletes: list[tuple[bytes]] = []
        for k, v in changes:
            if v is None:
                deletes.append((k,))
            else:
                upserts.append((k, v))
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    if deletes:
                        self._conn.executemany("DELETE FROM kv WHERE key = ?", deletes)
                    if upserts:
                        self._conn.executemany(
                            "INSERT INTO kv (key, value) VALUES (?, ?) "
                            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                            upserts,
                        )
                    self._conn.execute(
                        "INSERT INTO meta (id, schema, height, app_hash) VALUES (0, ?, ?, ?) "
                        "ON CONFLICT(id) DO UPDATE SET schema = excluded.schema, height = excluded.height, "
                        "app_hash = excluded.app_hash",
                        (SCHEMA_VERSION, height, app_hash),
                    )
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as e:
                raise StateStoreError(f"writing block {height} to the state database failed: {e}") from e

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._conn.close()
