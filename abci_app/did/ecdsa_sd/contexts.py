"""The JSON-LD contexts consensus may use, bundled as files: a document loader that never fetches.

An ecdsa-sd-2023 proof signs RDF statements, so verifying one expands the credential's JSON-LD,
which needs its @context documents. Validators must all expand identically and offline, so the
loader serves only the files in contexts/ (sources in contexts/README.md) and refuses any other URL.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fedledger.abci_app.errors import ConfigError

__all__ = ["BUNDLED_CONTEXTS", "UnknownContextError", "document_loader"]

_DIR = Path(__file__).parent / "contexts"

# URL -> bundled file. Adding a context is a consensus change: every validator must ship it.
BUNDLED_CONTEXTS: dict[str, str] = {
    "https://www.w3.org/ns/credentials/v2": "credentials-v2.jsonld",
    "https://w3id.org/citizenship/v4rc1": "citizenship-v4rc1.jsonld",
    "https://fedledger.dev/contexts/org/v1": "fedledger-org-v1.jsonld",
}

_CACHE: dict[str, Any] = {}


class UnknownContextError(ConfigError):
    """A credential names a JSON-LD context that is not bundled with the chain."""

    error_code = "SD_CONTEXT_UNKNOWN"


def _load(url: str) -> Any:
    if url not in _CACHE:
        _CACHE[url] = json.loads((_DIR / BUNDLED_CONTEXTS[url]).read_text(encoding="utf-8"))
    return _CACHE[url]


def document_loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """pyld document loader serving only bundled contexts; any other URL raises UnknownContextError."""
    if url not in BUNDLED_CONTEXTS:
        raise UnknownContextError(f"JSON-LD context {url!r} is not bundled; bundled: {sorted(BUNDLED_CONTEXTS)}")
    # pyld mutates nothing it is given, but hand out a copy so no caller can poison the cache.
    return {"contextUrl": None, "documentUrl": url, "document": json.loads(json.dumps(_load(url)))}
