"""Committed, authenticated key/value state plus per-block working overlays with snapshot/revert."""

from __future__ import annotations

import bisect
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType

from fedledger.abci_app.store.kvdb import KVDB, SCHEMA_VERSION, StateStoreError, prefix_upper_bound
from fedledger.abci_app.store.merkle import EMPTY_ROOT, MAX_KEY_SIZE, MerkleTree, TreeOverlay, bucket_index
from fedledger.abci_app.store.proof import Proof

__all__ = [
    "CommittedStore",
    "CorruptStoreError",
    "HeightError",
    "Snapshot",
    "StaleStateError",
    "StateStoreError",
    "WorkingState",
]


class HeightError(StateStoreError):
    """A commit was attempted at a height other than committed height + 1."""

    error_code = "STATE_HEIGHT"


class StaleStateError(StateStoreError):
    """A working state was used after it was committed, or after another one was committed."""

    error_code = "STATE_STALE"


class CorruptStoreError(StateStoreError):
    """The database contents do not match the app hash recorded with them."""

    error_code = "STATE_CORRUPT"


def _check_key(key: object) -> bytes:
    if not isinstance(key, bytes):
        raise StateStoreError(f"store keys must be bytes, got {type(key).__name__}")
    if not 0 < len(key) <= MAX_KEY_SIZE:
        raise StateStoreError(f"store key length {len(key)} outside 1..{MAX_KEY_SIZE}")
    return key


def _check_value(value: object) -> bytes:
    if not isinstance(value, bytes):
        raise StateStoreError(f"store values must be bytes, got {type(value).__name__}")
    return value


def _check_prefix(prefix: object) -> bytes:
    if not isinstance(prefix, bytes):
        raise StateStoreError(f"key prefixes must be bytes, got {type(prefix).__name__}")
    return prefix


class _Missing:
    """Marker for 'key had no pending change' in the undo journal."""


_MISSING = _Missing()


@dataclass(frozen=True, eq=False)
class Snapshot:
    """Opaque token from WorkingState.snapshot(); compared by identity."""

    position: int


_CACHE_LIMIT = 1 << 20


class CommittedStore:
    """The last committed state: sqlite-backed values plus the in-memory Merkle tree over them.

    It only changes in `commit`, so `get`, `iter_prefix` and `prove` answer for `height`/`app_hash`
    even while a WorkingState for the next block is pending.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._lock = threading.RLock()
        self._db = KVDB(path)
        self._closed = False
        try:
            meta = self._db.load_meta()
            if meta is None:
                self._height, self._app_hash = 0, EMPTY_ROOT
            else:
                schema, self._height, self._app_hash = meta
                if schema != SCHEMA_VERSION:
                    raise StateStoreError(
                        f"state database schema {schema} is not supported (want {SCHEMA_VERSION})"
                    )
            # The tree is not persisted: rebuild it and check it against the recorded app hash, which
            # also detects a database edited or damaged behind our back.
            self._tree = MerkleTree.build(self._db.iter_all())
            if self._tree.root != self._app_hash:
                raise CorruptStoreError(
                    f"state database at height {self._height}: contents hash to {self._tree.root.hex()}, "
                    f"but the recorded app hash is {self._app_hash.hex()}"
                )
        except BaseException:
            self._db.close()
            raise
        # Bumped on every commit so that working states built on an older state can be detected.
        self._generation = 0
        # Read cache of committed values (None = known absent). Point reads dominate tx checks, and a
        # sqlite round trip costs ~50 us; entries are refreshed by commit, so it never goes stale.
        self._cache: dict[bytes, bytes | None] = {}

    @property
    def height(self) -> int:
        """Height of the last committed block (0 before the first commit)."""
        return self._height

    @property
    def app_hash(self) -> bytes:
        """Merkle root of the committed state (EMPTY_ROOT before anything is committed)."""
        return self._app_hash

    def __len__(self) -> int:
        """Return the number of committed keys."""
        return len(self._tree)

    def _check_open(self) -> None:
        if self._closed:
            raise StateStoreError("state store is closed")

    def get(self, key: bytes) -> bytes | None:
        """Return the committed value of `key`, or None."""
        _check_key(key)
        with self._lock:
            self._check_open()
            try:
                return self._cache[key]
            except KeyError:
                pass
            value = self._db.get(key)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = value
            return value

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Yield committed (key, value) pairs whose key starts with `prefix`, sorted by key."""
        _check_prefix(prefix)
        self._check_open()
        return self._db.iter_range(prefix, prefix_upper_bound(prefix))

    def prove(self, key: bytes) -> tuple[bytes | None, Proof]:
        """Return the committed value of `key` (None if absent) and its proof against `app_hash`."""
        _check_key(key)
        with self._lock:
            self._check_open()
            value = self._db.get(key)
            idx = bucket_index(key)
            proof = Proof(key=key, entries=self._tree.bucket_entries(idx), siblings=self._tree.siblings(idx))
        return value, proof

    def working(self) -> WorkingState:
        """Return a fresh, empty overlay on the committed state (for executing the next block)."""
        self._check_open()
        return WorkingState(self)

    def commit(self, working: WorkingState, height: int) -> bytes:
        """Persist `working` as block `height` atomically and return the new app hash.

        `height` must be exactly `self.height + 1`. On failure nothing changes (neither the database
        nor the in-memory tree) and `working` stays usable.
        """
        with self._lock:
            self._check_open()
            if not isinstance(working, WorkingState) or working._store is not self:
                raise StateStoreError("commit() needs a WorkingState created by this store")
            working._check()
            if isinstance(height, bool) or not isinstance(height, int):
                raise HeightError(f"height must be an int, got {type(height).__name__}")
            if height != self._height + 1:
                raise HeightError(
                    f"cannot commit height {height}: committed height is {self._height}, "
                    f"so the next commit must be height {self._height + 1}"
                )
            root = working.root()
            changes = working._sorted_changes()
            self._db.write_block(changes, height, root)
            for key, value in changes:
                self._cache[key] = value
            # Only now that the block is durable does the in-memory tree move on.
            working._overlay.apply()
            self._height, self._app_hash = height, root
            self._generation += 1
            working._committed = True
            return root

    def iter_all(self) -> Iterator[tuple[bytes, bytes]]:
        """Yield every committed (key, value), sorted by key (what a state-sync snapshot serializes)."""
        self._check_open()
        return self._db.iter_all()

    def restore(self, items: list[tuple[bytes, bytes]], height: int, app_hash: bytes) -> None:
        """Install a whole state received by state sync as committed block `height`.

        Only an empty store (height 0, no keys) may be restored. The Merkle root of `items` must equal
        `app_hash` (the hash CometBFT's light client trusts); otherwise nothing is written.
        """
        with self._lock:
            self._check_open()
            if self._height != 0 or len(self._tree) != 0:
                raise StateStoreError(f"cannot restore a snapshot into a store at height {self._height}")
            if isinstance(height, bool) or not isinstance(height, int) or height < 1:
                raise HeightError(f"a restored height must be a positive int, got {height!r}")
            for key, value in items:
                _check_key(key)
                _check_value(value)
            tree = MerkleTree.build(items)
            if tree.root != app_hash:
                raise CorruptStoreError(
                    f"restored state hashes to {tree.root.hex()}, not the trusted app hash {app_hash.hex()}"
                )
            self._db.write_block(items, height, app_hash)
            self._tree = tree
            self._cache.clear()
            self._height, self._app_hash = height, app_hash
            self._generation += 1

    def close(self) -> None:
        """Close the database; uncommitted working states are discarded (idempotent)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()

    def __enter__(self) -> CommittedStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class WorkingState:
    """Uncommitted writes on top of a CommittedStore, with a cached incremental Merkle root.

    Use `snapshot()`/`revert()`/`release()` (or the `atomic()` context manager) to discard the writes of
    a failing transaction; snapshots nest.
    """

    def __init__(self, store: CommittedStore) -> None:
        self._store = store
        self._generation = store._generation
        self._committed = False
        # key -> new value, None meaning deleted.
        self._changes: dict[bytes, bytes | None] = {}
        # The keys of _changes; new keys are appended and the list re-sorted lazily when a scan needs it
        # (Timsort on a sorted run plus a short tail is linear), so writes stay O(1).
        self._sorted: list[bytes] = []
        self._unsorted = False
        self._overlay = TreeOverlay(store._tree)
        # Undo records (key, previous entry in _changes); only kept while a snapshot is live.
        self._journal: list[tuple[bytes, bytes | None | _Missing]] = []
        self._marks: list[Snapshot] = []

    def _check(self) -> None:
        if self._committed:
            raise StaleStateError("this working state was already committed; call store.working() again")
        if self._store._closed:
            raise StateStoreError("state store is closed")
        if self._store._generation != self._generation:
            raise StaleStateError(
                "this working state is stale: another working state was committed since it was created"
            )

    def get(self, key: bytes) -> bytes | None:
        """Return the value of `key` as seen by this block so far (None if absent or deleted)."""
        _check_key(key)
        self._check()
        if key in self._changes:
            return self._changes[key]
        return self._store.get(key)

    def _record(self, key: bytes, value: bytes | None) -> None:
        changes = self._changes
        prev = changes.get(key, _MISSING)
        if self._marks:
            self._journal.append((key, prev))
        if prev is _MISSING:
            self._sorted.append(key)
            self._unsorted = True
        changes[key] = value
        self._overlay.touch(key, value)

    def set(self, key: bytes, value: bytes) -> None:
        """Set `key` to `value`."""
        _check_key(key)
        _check_value(value)
        self._check()
        self._record(key, value)

    def delete(self, key: bytes) -> None:
        """Delete `key` (a no-op for the root if it does not exist)."""
        _check_key(key)
        self._check()
        self._record(key, None)

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Yield (key, value) for keys starting with `prefix`, sorted, pending writes over committed ones.

        Pending writes under the prefix are captured when the iteration starts, so writing while
        iterating is safe (later writes are not seen by this iteration).
        """
        _check_prefix(prefix)
        self._check()
        end = prefix_upper_bound(prefix)
        self._sort_keys()
        lo = bisect.bisect_left(self._sorted, prefix)
        hi = len(self._sorted) if end is None else bisect.bisect_left(self._sorted, end)
        pending = [(k, self._changes[k]) for k in self._sorted[lo:hi]]
        return self._merge(pending, self._store._db.iter_range(prefix, end))

    def _sort_keys(self) -> None:
        if self._unsorted:
            self._sorted.sort()
            self._unsorted = False

    @staticmethod
    def _merge(
        pending: list[tuple[bytes, bytes | None]], committed: Iterator[tuple[bytes, bytes]]
    ) -> Iterator[tuple[bytes, bytes]]:
        i, n = 0, len(pending)
        for ck, cv in committed:
            while i < n and pending[i][0] < ck:
                pk, pv = pending[i]
                i += 1
                if pv is not None:
                    yield pk, pv
            if i < n and pending[i][0] == ck:
                pv = pending[i][1]
                i += 1
                if pv is not None:
                    yield ck, pv
            else:
                yield ck, cv
        for pk, pv in pending[i:]:
            if pv is not None:
                yield pk, pv

    def root(self) -> bytes:
        """Return the app hash this state would have if committed now (committed tree untouched)."""
        self._check()
        return self._overlay.root()

    def snapshot(self) -> Snapshot:
        """Mark the current state; `revert(token)` returns to it, `release(token)` keeps the writes."""
        self._check()
        token = Snapshot(len(self._journal))
        self._marks.append(token)
        return token

    def _find_mark(self, token: Snapshot) -> int:
        for i in range(len(self._marks) - 1, -1, -1):
            if self._marks[i] is token:
                return i
        raise StateStoreError("unknown snapshot: not from this working state, or already reverted/released")

    def revert(self, token: Snapshot) -> None:
        """Undo every write made since `token` was taken; `token` and snapshots taken after it end."""
        self._check()
        i = self._find_mark(token)
        journal, changes = self._journal, self._changes
        self._sort_keys()
        while len(journal) > token.position:
            key, prev = journal.pop()
            if isinstance(prev, _Missing):
                del changes[key]
                del self._sorted[bisect.bisect_left(self._sorted, key)]
                # Back to the committed value, which the overlay must see to restore the bucket.
                self._overlay.touch(key, self._store._db.get(key))
            else:
                changes[key] = prev
                self._overlay.touch(key, prev)
        del self._marks[i:]
        if not self._marks:
            journal.clear()

    def release(self, token: Snapshot) -> None:
        """Keep the writes made since `token`, ending `token` and the snapshots taken after it."""
        self._check()
        i = self._find_mark(token)
        del self._marks[i:]
        if not self._marks:
            self._journal.clear()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Run a block of writes that is reverted if it raises (the exception propagates)."""
        token = self.snapshot()
        try:
            yield
        except BaseException:
            self.revert(token)
            raise
        self.release(token)

    def _sorted_changes(self) -> list[tuple[bytes, bytes | None]]:
        self._sort_keys()
        return [(k, self._changes[k]) for k in self._sorted]

    def __len__(self) -> int:
        """Return the number of keys written or deleted in this working state."""
        return len(self._changes)
