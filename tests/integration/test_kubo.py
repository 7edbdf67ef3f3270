"""Integration tests against a real Kubo v0.43.0 daemon started by the localnet launcher."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedledger.ipfs import (
    EmbeddedStore,
    IntegrityError,
    NotFoundError,
    StoreUnavailableError,
    open_store,
    parse_cid,
    raw_cid,
    sha256_hex,
)
from fedledger.ipfs.kubo import KuboStore
from fedledger.localnet.errors import AlreadyRunningError, PortInUseError
from fedledger.localnet.kubo import KUBO_VERSION, KuboDaemon, ensure_ipfs_binary, ipfs_version

# Building Kubo from source (when no binary is around yet) takes several minutes.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(2400)]

REPO_ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _two_free_ports() -> tuple[int, int]:
    a = _free_port()
    b = _free_port()
    while b == a:
        b = _free_port()
    return a, b


@pytest.fixture(scope="module")
def ipfs_bin() -> Path:
    return ensure_ipfs_binary(REPO_ROOT / "bin")


def _new_daemon(root: Path, binary: Path) -> KuboDaemon:
    api, gateway = _two_free_ports()
    daemon = KuboDaemon(root / "ipfs", api, gateway, binary)
    daemon.init()
    return daemon


@pytest.fixture(scope="module")
def daemon(ipfs_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KuboDaemon]:
    d = _new_daemon(tmp_path_factory.mktemp("kubo"), ipfs_bin)
    try:
        d.start(timeout=90)
        yield d
    finally:
        d.stop()


@pytest.fixture
def store(daemon: KuboDaemon) -> Iterator[KuboStore]:
    st = KuboStore(daemon.api_url, pin_on_put=False)
    try:
        yield st
    finally:
        st.close()


def test_binary_is_pinned_version(ipfs_bin: Path) -> None:
    assert ipfs_version(ipfs_bin) == KUBO_VERSION == "0.43.0"


def test_daemon_is_isolated(daemon: KuboDaemon) -> None:
    assert daemon.is_running()
    pid = daemon.pid()
    assert pid is not None and str(pid) == daemon.pid_path.read_text().strip()
    log = daemon.log_path.read_text()
    assert "Daemon is ready" in log
    assert f"RPC API server listening on /ip4/127.0.0.1/tcp/{daemon.api_port}" in log
    assert "Swarm not listening, running in offline mode." in log


def test_put_get_has_pin(store: KuboStore) -> None:
    data = b"federated update " + os.urandom(1000)
    cid = store.put(data)
    assert store.has(cid)
    assert store.get(cid, sha256_hex(data)) == data
    assert not store.is_pinned(cid)
    store.pin(cid)
    assert store.is_pinned(cid)
    assert "0.43.0" in store.describe() and store.api_url in store.describe()


def test_pin_on_put_default(daemon: KuboDaemon) -> None:
    st = KuboStore(daemon.api_url)
    cid = st.put(b"pinned at once " + os.urandom(16))
    assert st.is_pinned(cid)


def test_small_payload_cid_matches_embedded(store: KuboStore, tmp_path: Path) -> None:
    embedded = EmbeddedStore(tmp_path / "cas")
    for data in (b"", b"hello world", os.urandom(300_000), os.urandom(MIB)):
        cid = store.put(data)
        assert cid == raw_cid(data) == embedded.put(data)
        assert parse_cid(cid).is_raw


def test_one_mib_payloads_round_trip(store: KuboStore) -> None:
    exact = os.urandom(MIB)
    assert store.get(store.put(exact), sha256_hex(exact)) == exact
    # One byte past the chunk size: Kubo builds a dag-pb root, which is still fetched and verified.
    bigger = os.urandom(MIB + 1)
    cid = store.put(bigger)
    assert parse_cid(cid).codec_name == "dag-pb" and cid.startswith("bafybei")
    assert store.has(cid)
    assert store.get(cid, sha256_hex(bigger)) == bigger
    with pytest.raises(IntegrityError, match="commitment"):
        store.get(cid, sha256_hex(exact))


def test_mismatch_raises(store: KuboStore) -> None:
    data = b"honest update"
    cid = store.put(data)
    with pytest.raises(IntegrityError):
        store.get(cid, sha256_hex(b"tampered update"))


def test_missing_content(store: KuboStore) -> None:
    data = b"never added " + os.urandom(8)
    cid = raw_cid(data)
    assert not store.has(cid)
    started = time.monotonic()
    with pytest.raises(NotFoundError, match=cid):
        store.get(cid, sha256_hex(data))
    with pytest.raises(NotFoundError):
        store.pin(cid)
    assert time.monotonic() - started < 10


def test_factory_opens_kubo(daemon: KuboDaemon) -> None:
    st = open_store(f"kubo:{daemon.api_url}")
    data = b"via factory"
    assert st.get(st.put(data), sha256_hex(data)) == data


def test_taken_api_port_is_reported(daemon: KuboDaemon, ipfs_bin: Path, tmp_path: Path) -> None:
    other = KuboDaemon(tmp_path / "ipfs", daemon.api_port, _free_port(), ipfs_bin)
    other.init()
    with pytest.raises(PortInUseError, match=rf"port {daemon.api_port} \(Kubo API\) is already in use"):
        other.start(timeout=30)
    assert not other.is_running()


def test_stop_then_unavailable_quickly(ipfs_bin: Path, tmp_path: Path) -> None:
    d = _new_daemon(tmp_path, ipfs_bin)
    try:
        pid = d.start(timeout=90)
        with pytest.raises(AlreadyRunningError):
            d.start(timeout=5)
        st = KuboStore(d.api_url, connect_timeout=1.0)
        data = b"before shutdown"
        cid = st.put(data)
        # A second handle (as `localnet down` would have) finds and stops the daemon via its pid file.
        handle = KuboDaemon(d.ipfs_path, d.api_port, d.gateway_port, ipfs_bin)
        assert handle.pid() == pid
        handle.stop()
        assert not handle.is_running() and not d.is_running()
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match=d.api_url):
            st.get(cid, sha256_hex(data))
        with pytest.raises(StoreUnavailableError, match="ipfs daemon"):
            st.has(cid)
        assert time.monotonic() - started < 5
        # The repo is reusable: the same daemon starts again and still serves the content.
        d.start(timeout=90)
        assert KuboStore(d.api_url).get(cid, sha256_hex(data)) == data
    finally:
        d.stop()
