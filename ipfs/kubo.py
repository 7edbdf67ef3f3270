"""Content store backed by a Kubo (IPFS) daemon, spoken to through ipfshttpclient over its RPC API."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import threading
import warnings
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import ipfshttpclient
import ipfshttpclient.exceptions as ipfs_exc

from fedledger.ipfs.base import (
    ContentStore,
    IntegrityError,
    NotFoundError,
    StoreError,
    StoreUnavailableError,
    normalize_sha256_hex,
    verify_sha256,
)
from fedledger.ipfs.cid import parse_cid, raw_cid

__all__ = [
    "ADD_OPTIONS",
    "TESTED_KUBO_VERSION",
    "KuboStore",
    "api_url_to_multiaddr",
]

log = logging.getLogger(__name__)

# The Kubo release this backend is tested against (kept in step with localnet.kubo.KUBO_VERSION).
TESTED_KUBO_VERSION = "0.43.0"

# Import settings of the IPIP-499 "unixfs-v1-2025" profile, sent with every add so the CID does not
# depend on the daemon's Import.* config: CIDv1, raw leaves, sha2-256, 1 MiB chunks, balanced DAG.
# A payload of at most 1 MiB is therefore a single raw block, whose CID equals the embedded store's
# raw CIDv1; larger payloads get a dag-pb UnixFS root ("bafybei...") that only Kubo can serve.
ADD_OPTIONS: dict[str, str] = {
    "cid-version": "1",
    "raw-leaves": "true",
    "hash": "sha2-256",
    "chunker": "size-1048576",
    "max-file-links": "1024",
    "trickle": "false",
    "inline": "false",
}

_T = TypeVar("_T")

# ipfshttpclient 0.8.0a2 builds its urllib3 PoolManager with strict=True (requests_wrapper.py); urllib3
# 2.x ignores the argument but emits this FutureWarning for every request, which would litter CLI
# output. (urllib3 3.0 is announced to reject the argument, so urllib3 must stay < 3.)
warnings.filterwarnings(
    "ignore", message="The 'strict' parameter is no longer needed", category=FutureWarning
)


def api_url_to_multiaddr(api_url: str) -> str:
    """Turn ``http://host:port`` into the multiaddr ipfshttpclient wants (``/ip4/host/tcp/port/http``)."""
    if not isinstance(api_url, str) or not api_url:
        raise StoreError(
            f"Kubo API URL must be a non-empty string like http://127.0.0.1:5001, got {api_url!r}"
        )
    parts = urlsplit(api_url)
    if parts.scheme not in ("http", "https"):
        raise StoreError(f"Kubo API URL {api_url!r} must start with http:// or https://")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise StoreError(f"Kubo API URL {api_url!r} must be just scheme://host:port (no path or query)")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise StoreError(f"Kubo API URL {api_url!r} has an invalid port: {exc}") from exc
    if not host:
        raise StoreError(f"Kubo API URL {api_url!r} has no host")
    if port is None:
        port = 5001
    try:
        addr = ipaddress.ip_address(host)
        proto = "ip4" if addr.version == 4 else "ip6"
    except ValueError:
        proto = "dns"
    return f"/{proto}/{host}/tcp/{port}/{parts.scheme}"


class KuboStore(ContentStore):
    """Stores payloads in a Kubo daemon via ipfshttpclient 0.8.0a2 (the client the design names).

    ipfshttpclient's ``connect()`` only *warns* (``VersionMismatch``) for daemons >= 0.9.0 and makes a
    network call up front; this class instead builds ``ipfshttpclient.Client`` directly, so opening
    a store never touches the network, and checks the daemon's version itself on first use (one log
    warning when it is not the tested release). All calls use a short connect timeout so a dead daemon
    surfaces as StoreUnavailableError within ~``connect_timeout`` seconds instead of hanging.
    """

    def __init__(
        self,
        api_url: str = "http://127.0.0.1:5001",
        *,
        timeout: float = 120.0,
        connect_timeout: float = 3.0,
        fetch_timeout: float = 30.0,
        pin_on_put: bool = True,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.multiaddr = api_url_to_multiaddr(self.api_url)
        for name, value in (
            ("timeout", timeout),
            ("connect_timeout", connect_timeout),
            ("fetch_timeout", fetch_timeout),
        ):
            if not (isinstance(value, int | float) and 0 < value < math.inf):
                raise StoreError(f"{name} must be a positive number of seconds, got {value!r}")
        self.timeout = float(timeout)
        self.connect_timeout = float(connect_timeout)
        self.fetch_timeout = float(fetch_timeout)
        self.pin_on_put = pin_on_put
        self._client: Any = ipfshttpclient.Client(
            self.multiaddr, timeout=(self.connect_timeout, self.timeout)
        )
        self._version_checked = False
        self._lock = threading.Lock()
        self.daemon_version: str | None = None

    # -- plumbing -----------------------------------------------------------------------------

    def _unavailable(self, exc: BaseException) -> StoreUnavailableError:
        return StoreUnavailableError(
            f"Kubo daemon at {self.api_url} is not reachable ({type(exc).__name__}: {exc}); start it "
            f"with `IPFS_PATH=<repo> ipfs daemon --offline` (Kubo v{TESTED_KUBO_VERSION}) or the localnet "
            f"launcher (fedledger.localnet.kubo.KuboDaemon), or use an embedded:/dir store instead"
        )

    def _call(self, what: str, cid: str | None, fn: Callable[[], _T]) -> _T:
        self._check_version()
        return self._raw_call(what, cid, fn)

    def _raw_call(self, what: str, cid: str | None, fn: Callable[[], _T]) -> _T:
        try:
            return fn()
        except ipfs_exc.ConnectionError as exc:
            raise self._unavailable(exc) from exc
        except ipfs_exc.TimeoutError as exc:
            raise StoreUnavailableError(
                f"Kubo daemon at {self.api_url} did not answer {what} within the timeout "
                f"(connect {self.connect_timeout:g}s, read {self.timeout:g}s): {exc}"
            ) from exc
        except ipfs_exc.ErrorResponse as exc:
            message = str(exc)
            lowered = message.lower()
            if cid is not None and (
                "not found" in lowered
                or "could not find" in lowered
                or "context deadline exceeded" in lowered
                or "no link named" in lowered
            ):
                raise NotFoundError(
                    f"Kubo at {self.api_url} does not have {cid} ({what}: {message})"
                ) from exc
            raise StoreError(f"Kubo at {self.api_url} refused {what}: {message}") from exc
        except ipfs_exc.Error as exc:
            raise StoreError(
                f"{what} against Kubo at {self.api_url} failed: {type(exc).__name__}: {exc}"
            ) from exc

    def _check_version(self) -> None:
        if self._version_checked:
            return
        with self._lock:
            if self._version_checked:
                return
            info = self._raw_call("version", None, lambda: self._client.version())
            version = str(info.get("Version", "")) if hasattr(info, "get") else ""
            self.daemon_version = version or None
            if version != TESTED_KUBO_VERSION:
                # ipfshttpclient itself only knows daemons < 0.9.0; the calls used here (add, cat,
                # block/stat, pin/add, pin/ls) are stable RPC endpoints, so a different Kubo usually
                # works, but only the pinned release is tested.
                log.warning(
                    "Kubo at %s reports version %r; FedLedger is tested with Kubo %s",
                    self.api_url,
                    version,
                    TESTED_KUBO_VERSION,
                )
            self._version_checked = True

    def _kubo_timeout(self) -> str:
        # Server-side deadline for operations that may try to fetch missing blocks from peers, so
        # an online daemon answers "not found" instead of searching until our read timeout.
        return f"{self.fetch_timeout:g}s"

    # -- ContentStore -------------------------------------------------------------------------

    def put(self, data: bytes) -> str:
        """Add ``data`` with the pinned import settings and return Kubo's CID for it."""
        if isinstance(data, bytearray | memoryview):
            data = bytes(data)
        if not isinstance(data, bytes):
            raise TypeError(f"content store payloads must be bytes, got {type(data).__name__}")
        opts = dict(ADD_OPTIONS, pin="true" if self.pin_on_put else "false")
        result = self._call("add", None, lambda: self._client.add_bytes(data, opts=opts))
        if not isinstance(result, str):
            raise StoreError(f"Kubo at {self.api_url} answered add with {result!r} instead of a CID")
        parsed = parse_cid(result)
        if parsed.is_raw and result != raw_cid(data):
            raise IntegrityError(
                f"Kubo at {self.api_url} returned {result} for a payload whose raw CID is {raw_cid(data)}"
            )
        return result

    def get(self, cid: str, sha256_hex: str) -> bytes:
        """Fetch ``cid`` with ``cat`` and verify the bytes against the commitment's sha256."""
        expected = normalize_sha256_hex(sha256_hex)
        parsed = parse_cid(cid)
        if parsed.is_raw and parsed.digest.hex() != expected:
            raise IntegrityError(
                f"{cid} names content with sha256 {parsed.digest.hex()}, but the commitment says {expected}"
            )
        opts = {"timeout": self._kubo_timeout()}
        data = self._call("cat", cid, lambda: self._client.cat(parsed.encode(), opts=opts))
        if not isinstance(data, bytes):
            raise StoreError(f"Kubo at {self.api_url} answered cat {cid} with {type(data).__name__}")
        if parsed.is_raw and hashlib.sha256(data).digest() != parsed.digest:
            raise IntegrityError(f"Kubo at {self.api_url} returned bytes for {cid} that do not hash to it")
        verify_sha256(data, expected, cid)
        return data

    def has(self, cid: str) -> bool:
        """Return True when the daemon holds the CID's root block locally (checked offline, no search)."""
        parsed = parse_cid(cid)
        try:
            self._call(
                "block/stat", cid, lambda: self._client.block.stat(parsed.encode(), offline=True)
            )
        except NotFoundError:
            return False
        return True

    def pin(self, cid: str) -> None:
        """Pin ``cid`` recursively; NotFoundError when the daemon cannot obtain it in time."""
        parsed = parse_cid(cid)
        opts = {"timeout": self._kubo_timeout()}
        self._call("pin/add", cid, lambda: self._client.pin.add(parsed.encode(), opts=opts))

    def describe(self) -> str:
        """Return a one-line description naming the daemon's API URL (and version once known)."""
        version = f" (Kubo {self.daemon_version})" if self.daemon_version else ""
        return f"Kubo content store at {self.api_url}{version}"

    # -- extras -------------------------------------------------------------------------------

    def is_pinned(self, cid: str) -> bool:
        """Return True when ``cid`` is pinned (recursively or directly) on the daemon."""
        parsed = parse_cid(cid)
        try:
            result = self._call(
                "pin/ls", cid, lambda: self._client.pin.ls(parsed.encode(), type="all")
            )
        except StoreError as exc:
            if "not pinned" in str(exc).lower():
                return False
            raise
        keys = result.get("Keys", {}) if hasattr(result, "get") else {}
        return parsed.encode() in keys

    def close(self) -> None:
        """Release the HTTP client's resources."""
        self._client.close()
