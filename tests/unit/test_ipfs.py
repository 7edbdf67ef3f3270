"""Unit tests for the content store: CIDs, the embedded backend, the factory and Kubo error mapping."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedledger.ipfs import (
    CID,
    CIDError,
    ContentStore,
    EmbeddedStore,
    IntegrityError,
    NotFoundError,
    StoreError,
    StoreSpecError,
    StoreUnavailableError,
    normalize_sha256_hex,
    open_store,
    parse_cid,
    raw_cid,
    sha256_hex,
)
from fedledger.ipfs.cid import DAG_PB_CODEC, RAW_CODEC, decode_varint, encode_varint
from fedledger.ipfs.kubo import KuboStore, api_url_to_multiaddr

EMPTY_RAW_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def _b32(raw: bytes) -> str:
    return "b" + base64.b32encode(raw).decode().rstrip("=").lower()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- CID ---------------------------------------------------------------------------------------


def test_empty_payload_vector() -> None:
    assert raw_cid(b"") == EMPTY_RAW_CID
    parsed = parse_cid(EMPTY_RAW_CID)
    assert parsed.is_raw and parsed.codec == RAW_CODEC and parsed.version == 1
    assert parsed.digest == hashlib.sha256(b"").digest()


def test_raw_cid_binary_layout() -> None:
    data = b"model update bytes"
    cid = raw_cid(data)
    assert cid.startswith("bafkrei")
    raw = base64.b32decode(cid[1:].upper() + "=" * (-len(cid[1:]) % 8))
    assert raw == bytes([0x01, 0x55, 0x12, 0x20]) + hashlib.sha256(data).digest()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048))
def test_cid_round_trip(data: bytes) -> None:
    cid = raw_cid(data)
    parsed = parse_cid(cid)
    assert parsed.encode() == cid == str(parsed)
    assert parsed.digest.hex() == sha256_hex(data)
    assert raw_cid(bytearray(data)) == cid == raw_cid(memoryview(data))


def test_dag_pb_cid_round_trip() -> None:
    digest = hashlib.sha256(b"root").digest()
    cid = CID(codec=DAG_PB_CODEC, digest=digest).encode()
    assert cid.startswith("bafybei")
    parsed = parse_cid(cid)
    assert parsed.codec_name == "dag-pb" and not parsed.is_raw and parsed.digest == digest


@pytest.mark.parametrize("value", [0, 1, 0x55, 127, 128, 300, 16384, 2**63 - 1])
def test_varint_round_trip(value: int) -> None:
    enc = encode_varint(value)
    assert decode_varint(enc + b"\xff") == (value, len(enc))


@pytest.mark.parametrize(
    ("buf", "msg"),
    [(b"", "truncated"), (b"\x80", "truncated"), (b"\x80\x00", "non-minimal"), (b"\xff" * 10, "longer")],
)
def test_varint_rejects(buf: bytes, msg: str) -> None:
    with pytest.raises(CIDError, match=msg):
        decode_varint(buf)


def _cid_bytes(version: int, codec: int, mh: int, digest: bytes, length: int | None = None) -> str:
    n = len(digest) if length is None else length
    return _b32(encode_varint(version) + encode_varint(codec) + encode_varint(mh) + encode_varint(n) + digest)


DIGEST = hashlib.sha256(b"x").digest()


@pytest.mark.parametrize(
    ("text", "msg"),
    [
        ("", "empty"),
        (" " + EMPTY_RAW_CID, "whitespace"),
        ("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", "CIDv0"),
        ("zb2rhe5P4gXftAwvA4eXQ5HJwsER2owDyS9sKaQRRVQPn93bA", "base58btc"),
        ("B" + EMPTY_RAW_CID[1:].upper(), "base32 upper"),
        ("x" + EMPTY_RAW_CID[1:], "unknown"),
        ("b" + EMPTY_RAW_CID[1:].upper(), "lowercase"),
        ("bafkrei!!", "base32"),
        (EMPTY_RAW_CID[:-1], "impossible"),
        (EMPTY_RAW_CID[:-1] + "v", "non-canonical"),
        (_cid_bytes(2, RAW_CODEC, 0x12, DIGEST), "CIDv1"),
        (_cid_bytes(1, 0x71, 0x12, DIGEST), "codec 0x71"),
        (_cid_bytes(1, RAW_CODEC, 0x13, DIGEST), "multihash 0x13"),
        (_cid_bytes(1, RAW_CODEC, 0x12, DIGEST[:20]), "32 bytes"),
        (_cid_bytes(1, RAW_CODEC, 0x12, DIGEST + b"\x00", length=32), "declares 32"),
        ("b", "truncated"),
    ],
)
def test_parse_errors(text: str, msg: str) -> None:
    with pytest.raises(CIDError, match=msg):
        parse_cid(text)


def test_parse_rejects_non_string() -> None:
    with pytest.raises(CIDError, match="must be a string"):
        parse_cid(b"bafk")  # type: ignore[arg-type]


def test_cid_error_is_store_error_and_value_error() -> None:
    with pytest.raises(StoreError):
        parse_cid("nope")
    with pytest.raises(ValueError):
        parse_cid("nope")


def test_sha256_helpers() -> None:
    assert sha256_hex(b"abc") == hashlib.sha256(b"abc").hexdigest()
    assert normalize_sha256_hex(sha256_hex(b"abc").upper()) == sha256_hex(b"abc")
    for bad in ["", "abc", "g" * 64, sha256_hex(b"") + "0"]:
        with pytest.raises(StoreError, match="64 hex digits"):
            normalize_sha256_hex(bad)


# -- embedded store -----------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    return EmbeddedStore(tmp_path / "cas")


def test_embedded_put_get_has_pin(store: EmbeddedStore) -> None:
    data = os.urandom(5000)
    assert isinstance(store, ContentStore)
    cid = raw_cid(data)
    assert not store.has(cid)
    assert store.put(data) == cid
    assert store.has(cid)
    assert store.get(cid, sha256_hex(data)) == data
    assert store.get(cid, sha256_hex(data).upper()) == data
    assert not store.is_pinned(cid)
    store.pin(cid)
    store.pin(cid)
    assert store.is_pinned(cid)
    assert store.put(data) == cid  # idempotent
    assert store.put(bytearray(data)) == cid  # type: ignore[arg-type]
    assert str(store.root) in store.describe()


def test_embedded_empty_payload(store: EmbeddedStore) -> None:
    assert store.put(b"") == EMPTY_RAW_CID
    assert store.get(EMPTY_RAW_CID, sha256_hex(b"")) == b""


def test_embedded_layout_is_sharded_and_clean(store: EmbeddedStore) -> None:
    cids = [store.put(b"payload %d" % i) for i in range(20)]
    for cid in cids:
        path = store.block_path(cid)
        assert path.is_file() and path.name == cid and path.parent.name == cid[-3:-1]
    leftovers = [p for p in store.root.rglob("*") if p.name.startswith(".tmp-")]
    assert leftovers == []
    assert len({store.block_path(c).parent for c in cids}) > 1


def test_embedded_get_wrong_sha_raises(store: EmbeddedStore) -> None:
    cid = store.put(b"honest update")
    with pytest.raises(IntegrityError, match="commitment"):
        store.get(cid, sha256_hex(b"some other update"))


def test_embedded_get_malformed_sha_raises(store: EmbeddedStore) -> None:
    cid = store.put(b"honest update")
    with pytest.raises(StoreError, match="64 hex digits"):
        store.get(cid, "not-a-hash")


def test_embedded_tampered_file_detected_and_repaired(store: EmbeddedStore) -> None:
    data = b"weights" * 100
    cid = store.put(data)
    path = store.block_path(cid)
    path.write_bytes(b"evil" + data[4:])
    with pytest.raises(IntegrityError, match="corrupt"):
        store.get(cid, sha256_hex(data))
    # Storing the payload again rewrites the damaged block.
    assert store.put(data) == cid
    assert store.get(cid, sha256_hex(data)) == data


def test_embedded_missing(store: EmbeddedStore) -> None:
    cid = raw_cid(b"never stored")
    with pytest.raises(NotFoundError, match="not in the embedded store"):
        store.get(cid, sha256_hex(b"never stored"))
    with pytest.raises(NotFoundError, match="cannot pin"):
        store.pin(cid)


def test_embedded_rejects_dag_pb_and_bad_input(store: EmbeddedStore) -> None:
    dag = CID(codec=DAG_PB_CODEC, digest=DIGEST).encode()
    assert not store.has(dag)
    with pytest.raises(NotFoundError, match="dag-pb"):
        store.get(dag, DIGEST.hex())
    with pytest.raises(CIDError):
        store.get("bogus", DIGEST.hex())
    with pytest.raises(CIDError):
        store.has("Qmbogus")
    with pytest.raises(TypeError, match="must be bytes"):
        store.put("text")  # type: ignore[arg-type]


def test_embedded_root_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create"):
        EmbeddedStore(blocker)


def _payload(i: int) -> bytes:
    return hashlib.sha256(b"%d" % i).digest() * 2048  # 64 KiB, distinct per i


def _put_many(root: str, count: int) -> list[str]:
    st = EmbeddedStore(root)
    cids = []
    for i in range(count):
        # All workers walk the same sequence, so each CID is written by several processes at once.
        cid = st.put(_payload(i))
        # Readers racing with writers must never see a partial file.
        assert st.get(cid, sha256_hex(_payload(i))) == _payload(i)
        cids.append(cid)
    return cids


def test_embedded_concurrent_writers_same_cid(tmp_path: Path) -> None:
    root = str(tmp_path / "cas")
    count = 40
    with ProcessPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(_put_many, [root] * 4, [count] * 4))
    expected = [raw_cid(_payload(i)) for i in range(count)]
    assert results == [expected] * 4
    st = EmbeddedStore(root)
    for i, cid in enumerate(expected):
        assert st.get(cid, sha256_hex(_payload(i))) == _payload(i)
    assert list(Path(root).rglob(".tmp-*")) == []


# -- factory ------------------------------------------------------------------------------------


def test_factory_embedded(tmp_path: Path) -> None:
    st = open_store(f"embedded:{tmp_path / 'dir'}")
    assert isinstance(st, EmbeddedStore)
    assert st.root == tmp_path / "dir"
    assert (tmp_path / "dir").is_dir()


def test_factory_kubo_does_not_connect() -> None:
    st = open_store("kubo:http://127.0.0.1:5001")
    assert isinstance(st, KuboStore)
    assert st.multiaddr == "/ip4/127.0.0.1/tcp/5001/http"
    assert "http://127.0.0.1:5001" in st.describe()


@pytest.mark.parametrize(
    ("spec", "msg"),
    [
        ("", "no backend prefix"),
        ("/tmp/dir", "no backend prefix"),
        ("s3:bucket", "unknown content store backend 's3'"),
        ("embedded:", "names no directory"),
        ("kubo:127.0.0.1:5001", "http"),
        ("kubo:ftp://127.0.0.1:5001", "http"),
        ("kubo:http://127.0.0.1:5001/api/v0", "no path"),
        ("kubo:http://127.0.0.1:99999", "invalid port"),
    ],
)
def test_factory_errors(spec: str, msg: str) -> None:
    with pytest.raises(StoreSpecError, match=msg):
        open_store(spec)


def test_factory_non_string() -> None:
    with pytest.raises(StoreSpecError, match="must be a string"):
        open_store(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "addr"),
    [
        ("http://127.0.0.1:5001", "/ip4/127.0.0.1/tcp/5001/http"),
        ("http://localhost:5002/", "/dns/localhost/tcp/5002/http"),
        ("https://[::1]:443", "/ip6/::1/tcp/443/https"),
        ("http://10.0.0.2", "/ip4/10.0.0.2/tcp/5001/http"),
    ],
)
def test_api_url_to_multiaddr(url: str, addr: str) -> None:
    assert api_url_to_multiaddr(url) == addr


# -- Kubo backend without a daemon -----------------------------------------------------------


def test_kubo_dead_daemon_is_unavailable_quickly() -> None:
    port = _free_port()
    st = KuboStore(f"http://127.0.0.1:{port}", connect_timeout=1.0)
    for call in (
        lambda: st.put(b"x"),
        lambda: st.get(EMPTY_RAW_CID, sha256_hex(b"")),
        lambda: st.has(EMPTY_RAW_CID),
        lambda: st.pin(EMPTY_RAW_CID),
    ):
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError) as info:
            call()
        assert time.monotonic() - started < 5.0
        assert f"127.0.0.1:{port}" in str(info.value)
        assert "ipfs daemon" in str(info.value)


def test_kubo_validates_before_network() -> None:
    st = KuboStore(f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(CIDError):
        st.get("bogus", DIGEST.hex())
    with pytest.raises(StoreError, match="64 hex digits"):
        st.get(EMPTY_RAW_CID, "zz")
    # A raw CID whose digest contradicts the commitment can never verify: refused without fetching.
    with pytest.raises(IntegrityError, match="commitment"):
        st.get(EMPTY_RAW_CID, DIGEST.hex())
    with pytest.raises(TypeError):
        st.put("text")  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="positive"):
        KuboStore("http://127.0.0.1:5001", timeout=0)
