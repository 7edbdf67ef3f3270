"""Integration tests of the localnet manager against real cometbft processes."""

from __future__ import annotations

import base64
import importlib.util
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fedledger.localnet import manager
from fedledger.localnet.cometbft import COMETBFT_VERSION
from fedledger.localnet.config import AppKind, NetSpec
from fedledger.localnet.errors import (
    AlreadyRunningError,
    LocalnetError,
    NotRunningError,
    PortInUseError,
)
from fedledger.localnet.ports import find_free_base_port
from fedledger.localnet.supervisor import read_run_state
from tests.support import find_cometbft, find_ipfs

pytestmark = pytest.mark.integration




@pytest.fixture(autouse=True)
def cometbft_env(monkeypatch: pytest.MonkeyPatch) -> Path:
    found = find_cometbft()
    if found is None:
        pytest.skip(f"no cometbft {COMETBFT_VERSION} binary (set COMETBFT_BIN)")
    monkeypatch.setenv("COMETBFT_BIN", str(found))
    return found


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    h = tmp_path / "net"
    yield h
    # Teardown: whatever happened, leave no process behind.
    if manager.is_running(h) is not None or (h / "run.json").exists():
        try:
            manager.down(h)
        except NotRunningError:
            pass


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _recorded_pids(h: Path) -> set[int]:
    run = read_run_state(h)
    assert run is not None
    pids = {int(run["supervisor_pid"])}
    for n in run["nodes"]:
        pids |= {int(p) for p in (n["app_pid"], n["cometbft_pid"]) if p}
    return pids


def _heights(spec: NetSpec, nodes: list[int]) -> dict[int, int]:
    return {
        i: int(manager.rpc_get(spec.nodes[i].rpc_url, "status")["sync_info"]["latest_block_height"])
        for i in nodes
    }


def _assert_same_block(spec: NetSpec, height: int) -> str:
    """All nodes hold the same block (hence the same app hash) at ``height``; return the app hash."""
    app_hashes: set[str] = set()
    block_hashes: set[str] = set()
    for n in spec.nodes:
        commit = manager.rpc_get(n.rpc_url, "commit", {"height": height})
        app_hashes.add(commit["signed_header"]["header"]["app_hash"])
        block_hashes.add(commit["signed_header"]["commit"]["block_id"]["hash"])
    assert len(app_hashes) == 1, f"app hashes differ at height {height}: {app_hashes}"
    assert len(block_hashes) == 1, f"block hashes differ at height {height}: {block_hashes}"
    return str(app_hashes.pop())


def _kv_value(spec: NetSpec, i: int, key: str) -> str:
    res = manager.rpc_get(spec.nodes[i].rpc_url, "abci_query", {"data": f'"{key}"'})
    value = res["response"].get("value") or ""
    return base64.b64decode(value).decode()


_HAS_APP = importlib.util.find_spec("fedledger.abci_app.__main__") is not None
_APPS = [
    pytest.param("kvstore", id="kvstore"),
    pytest.param(
        "fedledger", id="fedledger",
        marks=pytest.mark.skipif(not _HAS_APP, reason="fedledger.abci_app has no __main__ yet"),
    ),
]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("app", _APPS)
def test_lifecycle(home: Path, app: AppKind) -> None:
    kv = app == "kvstore"
    base = find_free_base_port(40)
    spec = manager.up(home, validators=4, app=app, base_port=base, timeout=90)
    pids = _recorded_pids(home)
    assert len(pids) == (5 if kv else 9)  # supervisor + 4 cometbft (+ 4 apps)

    # Heights advance on every node.
    first = _heights(spec, [0, 1, 2, 3])
    manager.wait_for_height(home, max(first.values()) + 2, 30)
    if kv:
        for k in range(4):
            res = manager.rpc_get(spec.nodes[k].rpc_url, "broadcast_tx_sync", {"tx": f'"key{k}=val{k}"'})
            assert res["code"] == 0, res

    with pytest.raises(AlreadyRunningError, match="already running"):
        manager.up(home, validators=4, app=app, base_port=base)

    # One of four down: 3/4 > 2/3 of the power, blocks continue.
    manager.stop_node(home, 3)
    st = manager.status(home)
    assert not st[3].alive and st[3].desired == "down" and st[3].cometbft_pid is None
    assert all(s.alive for s in st[:3])
    h1 = max(_heights(spec, [0, 1, 2]).values())
    manager.wait_for_height(home, h1 + 3, 30, nodes=[0, 1, 2])

    # Two of four down: 1/2 < 2/3, the chain halts.
    manager.stop_node(home, 2)
    time.sleep(1.5)  # let a block already in flight finish
    halted = _heights(spec, [0, 1])
    time.sleep(3.0)
    assert _heights(spec, [0, 1]) == halted, "the chain must not advance with half of the power offline"

    # Both back: the chain resumes and every node agrees.
    manager.start_node(home, 2)
    manager.start_node(home, 3)
    target = max(halted.values()) + 3
    manager.wait_for_height(home, target, 60)
    app_hash = _assert_same_block(spec, target)
    assert app_hash, "the app hash must be set"
    if kv:
        # The restarted node replayed the txs committed before it went down.
        assert _kv_value(spec, 3, "key1") == "val1"
    st = manager.status(home)
    assert all(s.alive and s.height is not None and s.height >= target for s in st)
    assert all(s.restarts == 0 for s in st)
    assert len({s.app_hash for s in st if s.height == st[0].height}) == 1

    pids |= _recorded_pids(home)
    manager.down(home)
    assert manager.is_running(home) is None
    assert not (home / "run.json").exists()
    left = [p for p in pids if not _pid_gone(p)]
    assert not left, f"processes survived down: {left}"
    with pytest.raises(NotRunningError):
        manager.down(home)

    # A second `up` on the same home continues the same chain.
    manager.up(home, validators=4, app=app, base_port=base, timeout=60)
    again = _heights(spec, [0, 1, 2, 3])
    assert min(again.values()) >= target
    _assert_same_block(spec, target)
    if kv:
        assert _kv_value(spec, 0, "key2") == "val2"
    manager.down(home)


def test_port_in_use(home: Path) -> None:
    base = find_free_base_port(40)
    with socket.socket() as s:
        s.bind(("127.0.0.1", base + 11))  # node1 rpc
        s.listen(1)
        with pytest.raises(PortInUseError) as info:
            manager.up(home, validators=4, app="kvstore", base_port=base, timeout=30)
    assert info.value.port == base + 11
    assert "node1 rpc" in str(info.value)
    assert manager.is_running(home) is None
    assert not (home / "run.json").exists()


@pytest.mark.timeout(120)
def test_reuse_new_ports_and_orphan_cleanup(home: Path) -> None:
    base = find_free_base_port(40)
    first = manager.up(home, validators=2, app="kvstore", base_port=base, timeout=60)
    h_before = max(manager.wait_for_height(home, 3, 30).values())
    assert first.nodes[1].rpc_url == f"http://127.0.0.1:{base + 11}"
    manager.down(home)
    with pytest.raises(LocalnetError, match="reset"):
        manager.up(home, validators=3, app="kvstore", base_port=base)
    assert manager.is_running(home) is None

    # Same chain on other ports: config.toml is re-patched, the chain continues.
    base2 = find_free_base_port(40)
    spec = manager.up(home, validators=2, app="kvstore", base_port=base2, timeout=60)
    assert spec.nodes[1].rpc_url == f"http://127.0.0.1:{base2 + 11}"
    assert manager.rpc_url(home, 1) == spec.nodes[1].rpc_url
    assert min(_heights(spec, [0, 1]).values()) >= h_before

    # A supervisor killed outright leaves orphans; `down` still finds and stops them.
    run = read_run_state(home)
    assert run is not None
    children = {int(n["cometbft_pid"]) for n in run["nodes"]}
    os.kill(int(run["supervisor_pid"]), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while manager.is_running(home) is not None:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert not any(_pid_gone(p) for p in children), "children outlive a SIGKILLed supervisor"
    manager.down(home)
    assert all(_pid_gone(p) for p in children)
    with pytest.raises(NotRunningError, match="no localnet is running"):
        manager.down(home)


@pytest.mark.skipif(not _HAS_APP, reason="fedledger.abci_app has no __main__ yet")
@pytest.mark.timeout(240)
def test_fedledger_app_crash_restart(home: Path) -> None:
    base = find_free_base_port(40)
    spec = manager.up(home, validators=4, app="fedledger", base_port=base, timeout=90)
    pids = _recorded_pids(home)
    assert len(pids) == 9  # supervisor + 4 apps + 4 cometbft

    killed = manager.kill_app(home, 1)
    deadline = time.monotonic() + 60
    while True:
        st = manager.status(home)
        if st[1].restarts >= 1 and st[1].alive and st[1].app_pid not in (None, killed):
            break
        assert time.monotonic() < deadline, f"node1 was not restarted: {st[1]}"
        time.sleep(0.3)
    assert _pid_gone(killed)
    h = max(_heights(spec, [0, 1, 2, 3]).values())
    manager.wait_for_height(home, h + 3, 60)
    _assert_same_block(spec, h + 3)

    pids |= _recorded_pids(home)
    manager.down(home)
    left = [p for p in pids if not _pid_gone(p)]
    assert not left, f"processes survived down: {left}"




@pytest.mark.timeout(120)
def test_kubo_store(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ipfs = find_ipfs()
    if ipfs is None:
        pytest.skip("no Kubo binary of the pinned version (set IPFS_BIN)")
    monkeypatch.setenv("IPFS_BIN", str(ipfs))
    base = find_free_base_port(20)
    spec = manager.up(home, validators=2, app="kvstore", store="kubo", base_port=base, timeout=60)
    assert spec.store.api_url == f"http://127.0.0.1:{base + 3}"
    run = read_run_state(home)
    assert run is not None and run["kubo_pid"]
    kubo_pid = int(run["kubo_pid"])
    resp = httpx.post(f"{spec.store.api_url}/api/v0/version", timeout=5)
    assert resp.status_code == 200
    pids = _recorded_pids(home) | {kubo_pid}
    manager.down(home)
    left = [p for p in pids if not _pid_gone(p)]
    assert not left, f"processes survived down: {left}"
