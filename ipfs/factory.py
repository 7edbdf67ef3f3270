"""Open a content store from a spec string: ``embedded:/path/dir`` or ``kubo:http://127.0.0.1:5001``."""

from __future__ import annotations

from fedledger.abci_app.errors import ConfigError, Family
from fedledger.ipfs.base import ContentStore, StoreError

__all__ = ["SPEC_HELP", "StoreSpecError", "open_store"]

SPEC_HELP = "expected 'embedded:/path/to/dir' or 'kubo:http://127.0.0.1:5001'"


class StoreSpecError(StoreError, ConfigError):
    """A content-store spec string is malformed or names an unknown backend."""

    family = Family.CONFIG
    error_code = "STORE_SPEC"


def open_store(spec: str) -> ContentStore:
    """Return the content store ``spec`` describes; StoreSpecError for anything else.

    Opening a Kubo store does not contact the daemon; the first call does (and raises
    StoreUnavailableError when it is down).
    """
    if not isinstance(spec, str):
        raise StoreSpecError(f"content store spec must be a string, got {type(spec).__name__}; {SPEC_HELP}")
    kind, sep, rest = spec.strip().partition(":")
    if not sep:
        raise StoreSpecError(f"content store spec {spec!r} has no backend prefix; {SPEC_HELP}")
    kind = kind.lower()
    if kind == "embedded":
        if not rest:
            raise StoreSpecError(f"content store spec {spec!r} names no directory; {SPEC_HELP}")
        from fedledger.ipfs.embedded import EmbeddedStore

        return EmbeddedStore(rest)
    if kind == "kubo":
        if not rest.startswith(("http://", "https://")):
            raise StoreSpecError(f"content store spec {spec!r} needs an http(s) API URL; {SPEC_HELP}")
        # Imported lazily so embedded-only users never load ipfshttpclient (and its requests stack).
        from fedledger.ipfs.kubo import KuboStore

        try:
            return KuboStore(rest)
        except StoreError as exc:
            raise StoreSpecError(f"content store spec {spec!r}: {exc}") from exc
    raise StoreSpecError(f"unknown content store backend {kind!r} in {spec!r}; {SPEC_HELP}")
