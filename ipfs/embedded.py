"""The default content store: a local directory of raw blocks keyed by CIDv1, no daemon needed."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

from fedledger.ipfs.base import (
    ContentStore,
    IntegrityError,
    NotFoundError,
    StoreError,
    normalize_sha256_hex,
    verify_sha256,
)
from fedledger.ipfs.cid import parse_cid, raw_cid

__all__ = ["EmbeddedStore"]


def _as_bytes(data: object) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise TypeError(f"content store payloads must be bytes, got {type(data).__name__}")


def _fsync_dir(path: Path) -> None:
    # Makes the rename itself durable; some filesystems refuse O_RDONLY fsync on a directory,
    # which only costs durability, never correctness, so that failure is ignored.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class EmbeddedStore(ContentStore):
    """Content-addressed files under ``root``: ``blocks/<shard>/<cid>`` plus ``pins/<cid>`` markers.

    Every payload is stored whole as one raw block, so its CID is the raw CIDv1 of its bytes. Writes
    go to a temporary file in the destination directory and are renamed into place with os.replace,
    so readers never see a partial file and several processes may store the same CID at once (they
    write identical bytes; the last rename wins). Reads re-hash the file, so on-disk corruption is
    reported instead of served. Nothing is ever garbage-collected; pins are recorded for parity with
    Kubo.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().absolute()
        self._blocks = self.root / "blocks"
        self._pins = self.root / "pins"
        try:
            self._blocks.mkdir(parents=True, exist_ok=True)
            self._pins.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create embedded content store at {self.root}: {exc}") from exc

    # -- layout -------------------------------------------------------------------------------

    def block_path(self, cid: str) -> Path:
        """Return the file that holds (or would hold) ``cid``; sharded like Kubo's flatfs next-to-last/2."""
        text = parse_cid(cid).encode()
        # The leading characters of a CID are the same for every raw sha2-256 CID, so shard on the
        # tail, which comes from the digest and is uniformly distributed.
        return self._blocks / text[-3:-1] / text

    # -- ContentStore -------------------------------------------------------------------------

    def put(self, data: bytes) -> str:
        """Store ``data`` as one raw block and return its raw CIDv1 (idempotent, atomic)."""
        payload = _as_bytes(data)
        cid = raw_cid(payload)
        path = self.block_path(cid)
        if self._holds_intact(path, payload):
            return cid
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
        except OSError as exc:
            raise StoreError(f"cannot write {cid} under {path.parent}: {exc}") from exc
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp_name, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise StoreError(f"cannot write {cid} to {path}: {exc}") from exc
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise
        _fsync_dir(path.parent)
        return cid

    def get(self, cid: str, sha256_hex: str) -> bytes:
        """Return the bytes of ``cid`` after re-hashing the file and checking the commitment's sha256."""
        expected = normalize_sha256_hex(sha256_hex)
        parsed = parse_cid(cid)
        if not parsed.is_raw:
            raise NotFoundError(
                f"{cid} is a {parsed.codec_name} CID (a multi-chunk Kubo DAG); the embedded store only "
                f"holds raw blocks, so fetch it from the Kubo store that produced it"
            )
        if parsed.digest.hex() != expected:
            # A raw CID's digest is the payload's sha256, so no bytes can satisfy both.
            raise IntegrityError(
                f"{cid} names content with sha256 {parsed.digest.hex()}, but the commitment says {expected}"
            )
        path = self.block_path(cid)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"{cid} is not in the embedded store at {self.root}") from None
        except OSError as exc:
            raise StoreError(f"cannot read {cid} from {path}: {exc}") from exc
        if hashlib.sha256(data).digest() != parsed.digest:
            raise IntegrityError(
                f"stored file {path} is corrupt: its bytes no longer hash to {cid}; "
                f"store the payload again to repair it"
            )
        verify_sha256(data, expected, cid)
        return data

    def has(self, cid: str) -> bool:
        """Return True when a block file for ``cid`` exists (dag-pb CIDs are never held here)."""
        parsed = parse_cid(cid)
        if not parsed.is_raw:
            return False
        return self.block_path(cid).is_file()

    def pin(self, cid: str) -> None:
        """Record a pin for ``cid``; NotFoundError when the block is not stored."""
        if not self.has(cid):
            raise NotFoundError(f"cannot pin {cid}: it is not in the embedded store at {self.root}")
        marker = self._pins / parse_cid(cid).encode()
        try:
            # O_CREAT without O_EXCL: pinning twice, or from two processes, is harmless.
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT, 0o644)
            os.close(fd)
        except OSError as exc:
            raise StoreError(f"cannot record pin for {cid} at {marker}: {exc}") from exc

    def describe(self) -> str:
        """Return a one-line description naming the store directory."""
        return f"embedded content store at {self.root}"

    # -- extras -------------------------------------------------------------------------------

    def is_pinned(self, cid: str) -> bool:
        """Return True when ``cid`` has been pinned in this store."""
        return (self._pins / parse_cid(cid).encode()).is_file()

    def _holds_intact(self, path: Path, payload: bytes) -> bool:
        # An existing, intact copy makes put a no-op; a damaged one is rewritten (self-repair).
        try:
            current = path.read_bytes()
        except OSError:
            return False
        return current == payload
