"""The content-store interface shared by every backend, its exceptions and the sha256 helpers."""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod

from fedledger.abci_app.errors import Family, StorageError, UnavailableError

__all__ = [
    "ContentStore",
    "IntegrityError",
    "NotFoundError",
    "StoreError",
    "StoreUnavailableError",
    "normalize_sha256_hex",
    "sha256_hex",
    "verify_sha256",
]

_SHA256_HEX_RE = re.compile(r"[0-9a-f]{64}")


class StoreError(StorageError):
    """Base class of every error a content store raises on purpose."""

    error_code = "STORE"


class IntegrityError(StoreError):
    """Fetched (or stored) bytes do not hash to what the CID or the commitment says."""

    family = Family.CRYPTO
    error_code = "CONTENT_INTEGRITY"


class NotFoundError(StoreError):
    """The store does not hold (and could not fetch) the content behind a CID."""

    error_code = "CONTENT_NOT_FOUND"


class StoreUnavailableError(StoreError, UnavailableError):
    """The store's backend (e.g. the Kubo daemon) cannot be reached."""

    family = Family.NETWORK
    error_code = "STORE_UNAVAILABLE"


def sha256_hex(data: bytes | bytearray | memoryview) -> str:
    """Return the lowercase hex sha256 digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def normalize_sha256_hex(value: str) -> str:
    """Return ``value`` lowercased after checking it is 64 hex digits; StoreError otherwise."""
    if not isinstance(value, str):
        raise StoreError(f"expected sha256 as a hex string, got {type(value).__name__}")
    lowered = value.strip().lower()
    if not _SHA256_HEX_RE.fullmatch(lowered):
        raise StoreError(f"expected sha256 as 64 hex digits, got {value!r}")
    return lowered


def verify_sha256(data: bytes, expected_hex: str, cid: str) -> None:
    """Raise IntegrityError unless ``sha256(data)`` equals ``expected_hex`` (the commitment's hash)."""
    expected = normalize_sha256_hex(expected_hex)
    actual = sha256_hex(data)
    if actual != expected:
        raise IntegrityError(
            f"content of {cid} ({len(data)} bytes) has sha256 {actual}, but the commitment says {expected}"
        )


class ContentStore(ABC):
    """Off-chain, content-addressed storage for model updates; callers refer to payloads by CID.

    Every ``get`` verifies the returned bytes against the sha256 carried by the on-chain commitment,
    whatever the backend, so a faulty or malicious store can withhold data but never substitute it.
    """

    @abstractmethod
    def put(self, data: bytes) -> str:
        """Store ``data`` and return its CID string (CIDv1, base32)."""

    @abstractmethod
    def get(self, cid: str, sha256_hex: str) -> bytes:
        """Return the bytes behind ``cid`` after checking they hash to ``sha256_hex``.

        Raises NotFoundError when the content is absent, IntegrityError when the bytes do not match.
        """

    @abstractmethod
    def has(self, cid: str) -> bool:
        """Return True when the content behind ``cid`` is held locally by the store."""

    @abstractmethod
    def pin(self, cid: str) -> None:
        """Keep ``cid`` from being garbage-collected; NotFoundError when the store cannot obtain it."""

    @abstractmethod
    def describe(self) -> str:
        """Return a short human-readable description (backend and location) for logs and CLIs."""
