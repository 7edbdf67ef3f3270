"""FedLedger ipfs package: off-chain, content-addressed storage for model updates (embedded or Kubo)."""

from fedledger.ipfs.base import (
    ContentStore,
    IntegrityError,
    NotFoundError,
    StoreError,
    StoreUnavailableError,
    normalize_sha256_hex,
    sha256_hex,
    verify_sha256,
)
from fedledger.ipfs.cid import CID, CIDError, parse_cid, raw_cid
from fedledger.ipfs.embedded import EmbeddedStore
from fedledger.ipfs.factory import StoreSpecError, open_store

__all__ = [
    "CID",
    "CIDError",
    "ContentStore",
    "EmbeddedStore",
    "IntegrityError",
    "KuboStore",
    "NotFoundError",
    "StoreError",
    "StoreSpecError",
    "StoreUnavailableError",
    "normalize_sha256_hex",
    "open_store",
    "parse_cid",
    "raw_cid",
    "sha256_hex",
    "verify_sha256",
]


def __getattr__(name: str) -> object:
    # KuboStore pulls in ipfshttpclient (and requests); load it only when someone asks for it.
    if name == "KuboStore":
        from fedledger.ipfs.kubo import KuboStore

        return KuboStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
