"""Bucketed sparse Merkle tree: hashing rules and the in-memory committed tree with cheap overlays."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

__all__ = [
    "BUCKET_BITS",
    "DEFAULT_HASHES",
    "EMPTY_BUCKET_HASH",
    "EMPTY_ROOT",
    "HASH_SIZE",
    "INNER_PREFIX",
    "LEAF_PREFIX",
    "MAX_KEY_SIZE",
    "NUM_BUCKETS",
    "MerkleTree",
    "TreeOverlay",
    "bucket_hash",
    "bucket_index",
    "inner_hash",
    "value_hash",
]

#: Depth of the binary tree above the buckets; bucket = first BUCKET_BITS bits of sha256(key).
BUCKET_BITS = 16
NUM_BUCKETS = 1 << BUCKET_BITS
HASH_SIZE = 32
#: Keys are bounded so that proofs stay small and a length prefix can never overflow.
MAX_KEY_SIZE = 4096
#: Domain separation: a bucket (leaf) preimage can never be confused with an inner node preimage.
LEAF_PREFIX = b"\x00"
INNER_PREFIX = b"\x01"

_sha256 = hashlib.sha256


def bucket_index(key: bytes) -> int:
    """Return the bucket (0 .. NUM_BUCKETS-1) of `key`: the first 16 bits of sha256(key), big-endian."""
    d = _sha256(key).digest()
    return (d[0] << 8) | d[1]


def value_hash(value: bytes) -> bytes:
    """Return the 32-byte commitment to a value stored in a bucket entry."""
    return _sha256(value).digest()


def bucket_hash(entries: Sequence[tuple[bytes, bytes]]) -> bytes:
    """Hash a bucket given its entries (key, value hash) sorted by key.

    Preimage: 0x00 || u32 count || for each entry: u32 len(key) || key || value_hash.
    The empty bucket therefore has the fixed hash EMPTY_BUCKET_HASH.
    """
    h = _sha256(LEAF_PREFIX)
    h.update(len(entries).to_bytes(4, "big"))
    for key, vh in entries:
        h.update(len(key).to_bytes(4, "big"))
        h.update(key)
        h.update(vh)
    return h.digest()


def inner_hash(left: bytes, right: bytes) -> bytes:
    """Hash an inner node: sha256(0x01 || left || right)."""
    return _sha256(INNER_PREFIX + left + right).digest()


EMPTY_BUCKET_HASH = bucket_hash(())


def _defaults() -> tuple[bytes, ...]:
    out = [EMPTY_BUCKET_HASH]
    for _ in range(BUCKET_BITS):
        out.append(inner_hash(out[-1], out[-1]))
    return tuple(out)


#: DEFAULT_HASHES[l] is the hash of an all-empty subtree whose top is at level l (0 = bucket level).
DEFAULT_HASHES = _defaults()
#: Root of the empty tree, the app hash at genesis.
EMPTY_ROOT = DEFAULT_HASHES[BUCKET_BITS]


class MerkleTree:
    """The committed tree: bucket contents (key -> value hash) and every level of node hashes.

    Levels are flat lists (level l has NUM_BUCKETS >> l slots); untouched slots all reference the one
    default hash object of their level, so an empty tree costs only the list pointers (~1 MiB).
    Values themselves are not kept here (they live in the database); only their hashes.
    """

    def __init__(self) -> None:
        self.buckets: dict[int, dict[bytes, bytes]] = {}
        self.levels: list[list[bytes]] = [
            [DEFAULT_HASHES[lvl]] * (NUM_BUCKETS >> lvl) for lvl in range(BUCKET_BITS + 1)
        ]

    @property
    def root(self) -> bytes:
        """Return the current root hash."""
        return self.levels[BUCKET_BITS][0]

    def __len__(self) -> int:
        return sum(len(b) for b in self.buckets.values())

    @classmethod
    def build(cls, items: Iterable[tuple[bytes, bytes]]) -> MerkleTree:
        """Build a tree from (key, value) pairs (any order, unique keys) in one bottom-up pass."""
        tree = cls()
        buckets = tree.buckets
        for key, value in items:
            idx = bucket_index(key)
            b = buckets.get(idx)
            if b is None:
                b = buckets[idx] = {}
            b[key] = value_hash(value)
        level0 = tree.levels[0]
        for idx, b in buckets.items():
            level0[idx] = bucket_hash(sorted(b.items()))
        dirty = sorted(buckets)
        for lvl in range(BUCKET_BITS):
            below, above = tree.levels[lvl], tree.levels[lvl + 1]
            parents = sorted({i >> 1 for i in dirty})
            for p in parents:
                above[p] = inner_hash(below[2 * p], below[2 * p + 1])
            dirty = parents
        return tree

    def value_hash_of(self, key: bytes) -> bytes | None:
        """Return the committed value hash of `key`, or None when absent."""
        b = self.buckets.get(bucket_index(key))
        return None if b is None else b.get(key)

    def bucket_entries(self, idx: int) -> tuple[tuple[bytes, bytes], ...]:
        """Return bucket `idx`'s entries (key, value hash) sorted by key."""
        b = self.buckets.get(idx)
        return () if b is None else tuple(sorted(b.items()))

    def siblings(self, idx: int) -> tuple[bytes, ...]:
        """Return the BUCKET_BITS sibling hashes on the path from bucket `idx` to the root, bottom first."""
        return tuple(self.levels[lvl][(idx >> lvl) ^ 1] for lvl in range(BUCKET_BITS))


class TreeOverlay:
    """Pending changes on top of a MerkleTree, with an incrementally maintained root.

    The base tree is never modified until `apply` (so proofs against the committed root stay valid while
    a block is executing). Changes are recorded per key with `touch`; `root()` rehashes only the buckets
    touched since the previous call and the paths above them.
    """

    def __init__(self, base: MerkleTree) -> None:
        self.base = base
        # New full contents of every bucket ever touched (key -> value hash).
        self._buckets: dict[int, dict[bytes, bytes]] = {}
        # New node hashes, per level, for every node above a touched bucket.
        self._nodes: list[dict[int, bytes]] = [{} for _ in range(BUCKET_BITS + 1)]
        # key -> new value (None = absent) not yet folded into bucket hashes; values overwritten
        # before the next root() are never hashed.
        self._pending: dict[bytes, bytes | None] = {}
        self._root: bytes = base.root

    def touch(self, key: bytes, value: bytes | None) -> None:
        """Record that `key` now holds `value` (None = absent); hashing is deferred to `root()`."""
        self._pending[key] = value

    def root(self) -> bytes:
        """Return the root with all touched keys folded in (cached while nothing new is touched)."""
        if not self._pending:
            return self._root
        pending, self._pending = self._pending, {}
        base = self.base
        buckets = self._buckets
        touched: set[int] = set()
        for key, value in pending.items():
            idx = bucket_index(key)
            b = buckets.get(idx)
            if b is None:
                old = base.buckets.get(idx)
                b = buckets[idx] = {} if old is None else dict(old)
            if value is None:
                b.pop(key, None)
            else:
                b[key] = value_hash(value)
            touched.add(idx)
        nodes0 = self._nodes[0]
        for idx in sorted(touched):
            b = buckets[idx]
            nodes0[idx] = bucket_hash(sorted(b.items())) if b else EMPTY_BUCKET_HASH
        dirty: list[int] | set[int] = touched
        for lvl in range(BUCKET_BITS):
            below_new, below_old = self._nodes[lvl], base.levels[lvl]
            above_new = self._nodes[lvl + 1]
            parents = sorted({i >> 1 for i in dirty})
            for p in parents:
                left = below_new.get(2 * p)
                if left is None:
                    left = below_old[2 * p]
                right = below_new.get(2 * p + 1)
                if right is None:
                    right = below_old[2 * p + 1]
                above_new[p] = inner_hash(left, right)
            dirty = parents
        self._root = self._nodes[BUCKET_BITS][0]
        return self._root

    def apply(self) -> None:
        """Fold every change into the base tree (call only after the changes are durably stored)."""
        self.root()
        base = self.base
        for idx, b in self._buckets.items():
            if b:
                base.buckets[idx] = b
            else:
                base.buckets.pop(idx, None)
        for lvl, nodes in enumerate(self._nodes):
            level = base.levels[lvl]
            for i, h in nodes.items():
                level[i] = h
        # The overlay's dicts now belong to the base; start afresh so later use cannot alias them.
        self._buckets = {}
        self._nodes = [{} for _ in range(BUCKET_BITS + 1)]
