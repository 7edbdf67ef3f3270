"""State-sync snapshots: produce, serve and restore chunked, hash-verified copies of committed state.

Format 1 serializes every committed (key, value) in key order as ``len(key) u32be | key | len(value)
u32be | value`` and cuts the stream into fixed-size chunks. A manifest (canonical JSON: format,
height, app hash, chunk size, the SHA-256 of every chunk, total bytes, key count) travels as the
ABCI ``Snapshot.metadata``; ``Snapshot.hash`` is the SHA-256 of the manifest. A restoring node checks
each chunk against the manifest as it arrives and, after the last one, rebuilds the Merkle tree and
accepts only if its root equals the app hash CometBFT's light client trusts for that height.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from fedledger.abci_app.errors import StorageError
from fedledger.abci_app.proto import types as pb

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "SNAPSHOT_FORMAT",
    "Manifest",
    "Restorer",
    "SnapshotError",
    "SnapshotManager",
    "SnapshotSource",
    "decode_state",
    "encode_state",
]

SNAPSHOT_FORMAT = 1
DEFAULT_CHUNK_SIZE = 2 << 20  # 2 MiB: well under CometBFT's 16 MiB chunk message limit
_LEN = struct.Struct(">I")
# A chunk that keeps failing its hash is refetched this many times before the snapshot is given up.
_MAX_CHUNK_RETRIES = 3


class SnapshotError(StorageError):
    """A snapshot could not be written, read or decoded."""

    error_code = "SNAPSHOT"


class SnapshotSource(Protocol):
    """What snapshot production needs from the committed store."""

    @property
    def height(self) -> int:
        """Last committed height."""

    @property
    def app_hash(self) -> bytes:
        """Merkle root at that height."""

    def iter_all(self) -> Iterator[tuple[bytes, bytes]]:
        """Every committed (key, value), sorted by key."""


def encode_state(items: Iterable[tuple[bytes, bytes]]) -> Iterator[bytes]:
    """Yield the format-1 serialization of `items` (which must be sorted by key), one record at a time."""
    for key, value in items:
        yield _LEN.pack(len(key)) + key + _LEN.pack(len(value)) + value


def decode_state(data: bytes) -> list[tuple[bytes, bytes]]:
    """Parse a whole format-1 stream; keys must be strictly increasing and no byte may be left over."""
    items: list[tuple[bytes, bytes]] = []
    pos, end = 0, len(data)
    last: bytes | None = None
    while pos < end:
        fields: list[bytes] = []
        for what in ("key", "value"):
            if pos + 4 > end:
                raise SnapshotError(f"snapshot stream ends inside a {what} length at byte {pos}")
            (size,) = _LEN.unpack_from(data, pos)
            pos += 4
            if pos + size > end:
                raise SnapshotError(f"snapshot stream ends inside a {size}-byte {what} at byte {pos}")
            fields.append(data[pos:pos + size])
            pos += size
        key, value = fields
        if last is not None and key <= last:
            raise SnapshotError("snapshot keys are not strictly increasing")
        last = key
        items.append((key, value))
    return items


@dataclass(frozen=True)
class Manifest:
    """What a snapshot claims: its height and app hash, and the hash of each of its chunks."""

    height: int
    app_hash: bytes
    chunk_size: int
    chunk_hashes: tuple[bytes, ...]
    total_bytes: int
    keys: int
    format: int = SNAPSHOT_FORMAT

    def encode(self) -> bytes:
        """Canonical JSON (sorted keys, no spaces): the bytes whose SHA-256 is the snapshot hash."""
        body: dict[str, Any] = {
            "app_hash": self.app_hash.hex(), "chunk_size": self.chunk_size,
            "chunks": [h.hex() for h in self.chunk_hashes], "format": self.format, "height": self.height,
            "keys": self.keys, "total_bytes": self.total_bytes,
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("ascii")

    @property
    def hash(self) -> bytes:
        """SHA-256 of the encoded manifest (ABCI Snapshot.hash)."""
        return hashlib.sha256(self.encode()).digest()

    @classmethod
    def decode(cls, raw: bytes) -> Manifest:
        """Parse an encoded manifest; raises SnapshotError for anything malformed."""
        try:
            body = json.loads(raw)
            m = cls(height=int(body["height"]), app_hash=bytes.fromhex(body["app_hash"]),
                    chunk_size=int(body["chunk_size"]),
                    chunk_hashes=tuple(bytes.fromhex(h) for h in body["chunks"]),
                    total_bytes=int(body["total_bytes"]), keys=int(body["keys"]), format=int(body["format"]))
        except (ValueError, KeyError, TypeError) as e:
            raise SnapshotError(f"malformed snapshot manifest: {e}") from e
        if m.encode() != raw:
            raise SnapshotError("snapshot manifest is not in canonical form")
        if m.height < 1 or m.chunk_size < 1 or not m.chunk_hashes or any(len(h) != 32 for h in m.chunk_hashes):
            raise SnapshotError("snapshot manifest has an invalid height, chunk size or chunk list")
        return m

    def to_pb(self) -> pb.Snapshot:
        """The ABCI Snapshot advertised by ListSnapshots."""
        return pb.Snapshot(height=self.height, format=self.format, chunks=len(self.chunk_hashes),
                           hash=self.hash, metadata=self.encode())


class SnapshotManager:
    """Writes a snapshot every `interval` heights under `root`, keeps the newest `keep`, serves chunks.

    Layout: ``root/<height, 20 digits>/manifest.json`` and ``chunk-<index, 6 digits>``. A snapshot
    is written under a temporary name and renamed into place, so a crash never leaves a partial one
    that ListSnapshots would advertise.
    """

    def __init__(self, root: str | os.PathLike[str], interval: int, keep: int = 2,
                 chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        if interval < 0 or keep < 1 or chunk_size < 1:
            raise SnapshotError(f"bad snapshot settings: interval={interval} keep={keep} chunk_size={chunk_size}")
        self.root = Path(root)
        self.interval, self.keep, self.chunk_size = interval, keep, chunk_size
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in self.root.glob("*.tmp"):  # left by a crash mid-write
            shutil.rmtree(stale, ignore_errors=True)
        self._manifests: dict[int, Manifest] = {}
        for d in sorted(self.root.iterdir()):
            if d.is_dir() and d.name.isdigit() and (d / "manifest.json").is_file():
                m = Manifest.decode((d / "manifest.json").read_bytes())
                self._manifests[m.height] = m

    def maybe_take(self, store: SnapshotSource) -> Manifest | None:
        """Take a snapshot if the store's height is a multiple of the interval (0: never)."""
        if self.interval == 0 or store.height == 0 or store.height % self.interval != 0:
            return None
        return self.take(store)

    def take(self, store: SnapshotSource) -> Manifest:
        """Serialize the committed state at the store's current height into chunks plus a manifest.

        Runs inside Commit, so the state read is exactly the one committed at that height.
        """
        height, app_hash = store.height, store.app_hash
        final = self.root / f"{height:020d}"
        tmp = self.root / f"{height:020d}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        hashes: list[bytes] = []
        buf = bytearray()
        total = keys = 0

        def flush(part: bytes) -> None:
            (tmp / f"chunk-{len(hashes):06d}").write_bytes(part)
            hashes.append(hashlib.sha256(part).digest())

        for record in encode_state(store.iter_all()):
            buf += record
            total += len(record)
            keys += 1
            while len(buf) >= self.chunk_size:
                flush(bytes(buf[:self.chunk_size]))
                del buf[:self.chunk_size]
        if buf or not hashes:  # an empty state is still one (empty) chunk, so the snapshot has chunks
            flush(bytes(buf))
        m = Manifest(height=height, app_hash=app_hash, chunk_size=self.chunk_size,
                     chunk_hashes=tuple(hashes), total_bytes=total, keys=keys)
        (tmp / "manifest.json").write_bytes(m.encode())
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        self._manifests[height] = m
        for old in sorted(self._manifests)[:-self.keep]:
            shutil.rmtree(self.root / f"{old:020d}", ignore_errors=True)
            del self._manifests[old]
        return m

    def list(self) -> list[pb.Snapshot]:
        """Every kept snapshot, newest first (CometBFT tries them in the order given)."""
        return [self._manifests[h].to_pb() for h in sorted(self._manifests, reverse=True)]

    def load_chunk(self, height: int, fmt: int, index: int) -> bytes:
        """Return chunk `index` of the snapshot at `height`, or b"" when there is no such chunk."""
        m = self._manifests.get(height)
        if m is None or fmt != m.format or not 0 <= index < len(m.chunk_hashes):
            return b""
        try:
            return (self.root / f"{height:020d}" / f"chunk-{index:06d}").read_bytes()
        except OSError:
            return b""


class RestoreTarget(Protocol):
    """What restoring needs from the committed store."""

    @property
    def height(self) -> int:
        """Last committed height (0: empty, the only state a snapshot may be restored into)."""

    def restore(self, items: list[tuple[bytes, bytes]], height: int, app_hash: bytes) -> None:
        """Install `items` as the state committed at `height`, checking its root against `app_hash`."""


class Restorer:
    """One state-sync restore in progress: OfferSnapshot, then ApplySnapshotChunk for each chunk in order."""

    def __init__(self, target: RestoreTarget) -> None:
        self.target = target
        self._manifest: Manifest | None = None
        self._trusted: bytes = b""
        self._chunks: list[bytes] = []
        self._failures = 0
        self.restored_height = 0

    def offer(self, req: pb.RequestOfferSnapshot) -> pb.ResponseOfferSnapshot:
        """Accept a format-1 snapshot whose manifest is consistent and names the trusted app hash."""
        r = pb.ResponseOfferSnapshot
        self._manifest = None
        if self.target.height != 0:
            return r(result=r.ABORT)  # state sync only ever fills an empty store
        snap = req.snapshot
        if snap.format != SNAPSHOT_FORMAT:
            return r(result=r.REJECT_FORMAT)
        try:
            m = Manifest.decode(snap.metadata)
        except SnapshotError:
            return r(result=r.REJECT)
        if (m.hash != snap.hash or m.height != snap.height or len(m.chunk_hashes) != snap.chunks
                or m.app_hash != req.app_hash):
            return r(result=r.REJECT)
        self._manifest, self._trusted = m, bytes(req.app_hash)
        self._chunks, self._failures = [], 0
        return r(result=r.ACCEPT)

    def apply(self, req: pb.RequestApplySnapshotChunk) -> pb.ResponseApplySnapshotChunk:
        """Check one chunk against the manifest; after the last, rebuild and verify the whole state."""
        r = pb.ResponseApplySnapshotChunk
        m = self._manifest
        if m is None:
            return r(result=r.ABORT)
        if req.index != len(self._chunks):
            # CometBFT applies chunks in order; anything else means our bookkeeping and its disagree.
            return r(result=r.RETRY_SNAPSHOT)
        if hashlib.sha256(req.chunk).digest() != m.chunk_hashes[req.index]:
            self._failures += 1
            if self._failures > _MAX_CHUNK_RETRIES:
                self._manifest = None
                return r(result=r.REJECT_SNAPSHOT, reject_senders=[req.sender] if req.sender else [])
            return r(result=r.RETRY, refetch_chunks=[req.index],
                     reject_senders=[req.sender] if req.sender else [])
        self._chunks.append(bytes(req.chunk))
        if len(self._chunks) < len(m.chunk_hashes):
            return r(result=r.ACCEPT)
        data = b"".join(self._chunks)
        self._chunks = []
        self._manifest = None
        try:
            if len(data) != m.total_bytes:
                raise SnapshotError(f"snapshot has {len(data)} bytes, manifest says {m.total_bytes}")
            items = decode_state(data)
            if len(items) != m.keys:
                raise SnapshotError(f"snapshot has {len(items)} keys, manifest says {m.keys}")
            self.target.restore(items, m.height, self._trusted)
        except StorageError:
            # Nothing was written (restore checks the root before touching the database).
            return r(result=r.REJECT_SNAPSHOT)
        self.restored_height = m.height
        return r(result=r.ACCEPT)
