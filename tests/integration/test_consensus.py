"""Four real validators under tx load: one down, two down (halt), recovery, SIGKILL of an app and of a CometBFT.

Every node must report the same app hash at every height, and the app hash must actually move
(txs change state), so agreement is not the trivial agreement of empty blocks.
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fedledger.localnet import manager
from fedledger.localnet.dev import dev_credential
from fedledger.localnet.ports import find_free_base_port
from fedledger.sdk.errors import ClientError
from fedledger.sdk.keys import Key
from fedledger.sdk.rpc import CometRPC
from fedledger.sdk.submit import Submitter

pytestmark = pytest.mark.integration


class Load:
    """Admits fresh keys (development credentials) continuously through whichever nodes are up."""

    def __init__(self, home: Path, nodes: int) -> None:
        self.home = home
        self.urls = [manager.rpc_url(home, i) for i in range(nodes)]
        self.stop = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            key = Key(f"load{i}", Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"load%d" % i).digest()))
            url = self.urls[i % len(self.urls)]
            try:
                rpc = CometRPC(url, timeout=2)
                Submitter(rpc, key).broadcast("admit", {"credential": dev_credential(self.home, key, "trainer")})
                self.sent += 1
            except ClientError:
                pass  # that node is down right now; the next tx goes elsewhere
            time.sleep(0.05)

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


def _heights(home: Path, nodes: list[int]) -> dict[int, int]:
    return {s.index: s.height or 0 for s in manager.status(home) if s.index in nodes}


def _app_hashes(url: str, top: int) -> dict[int, str]:
    """Header app hash at every height 1..top (header h carries the state after block h-1)."""
    out: dict[int, str] = {}
    lo = 1
    while lo <= top:
        hi = min(top, lo + 19)
        res = manager.rpc_get(url, "blockchain", {"minHeight": lo, "maxHeight": hi})
        for meta in res["block_metas"]:
            out[int(meta["header"]["height"])] = meta["header"]["app_hash"]
        lo = hi + 1
    return out


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "net"
    manager.up(home, validators=4, base_port=find_free_base_port(40), block_time_ms=300, timeout=90,
               log=lambda m: None)
    try:
        yield home
    finally:
        manager.down(home)


@pytest.mark.timeout(300)
def test_agreement_at_every_height_through_faults(net: Path) -> None:
    with Load(net, 4) as load:
        manager.wait_for_height(net, 5, 30)

        manager.stop_node(net, 3)  # 3/4 of the power: blocks continue
        h = max(_heights(net, [0, 1, 2]).values())
        manager.wait_for_height(net, h + 4, 30, nodes=[0, 1, 2])

        manager.stop_node(net, 2)  # 1/2 of the power: the chain halts
        time.sleep(1.5)
        halted = _heights(net, [0, 1])
        time.sleep(3)
        assert _heights(net, [0, 1]) == halted, "chain advanced with half the power offline"

        manager.start_node(net, 2)
        manager.start_node(net, 3)
        h = max(halted.values())
        manager.wait_for_height(net, h + 4, 60)

        killed = manager.kill_app(net, 1)  # SIGKILL the ABCI app mid-run; the supervisor restarts the pair
        deadline = time.monotonic() + 60
        while True:
            st = manager.status(net)[1]
            if st.restarts >= 1 and st.alive and st.app_pid not in (None, killed):
                break
            assert time.monotonic() < deadline, f"node1 did not come back: {st}"
            time.sleep(0.3)
        h = max(_heights(net, [0, 1, 2, 3]).values())
        manager.wait_for_height(net, h + 4, 60)

        # SIGKILL the other half of a node: CometBFT itself. Its block store and the app's state
        # may now disagree by a block; the handshake must reconcile them.
        victim = manager.status(net)[2].cometbft_pid
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while True:
            st = manager.status(net)[2]
            if st.alive and st.cometbft_pid not in (None, victim):
                break
            assert time.monotonic() < deadline, f"node2 did not come back: {st}"
            time.sleep(0.3)
        h = max(_heights(net, [0, 1, 2, 3]).values())
        manager.wait_for_height(net, h + 4, 60)
    assert load.sent > 20, f"load generator sent only {load.sent} txs"

    top = min(_heights(net, [0, 1, 2, 3]).values())
    per_node = [_app_hashes(manager.rpc_url(net, i), top) for i in range(4)]
    for height in range(1, top + 1):
        values = {node[height] for node in per_node}
        assert len(values) == 1, f"app hashes differ at height {height}: {values}"
    distinct = {per_node[0][height] for height in range(1, top + 1)}
    assert len(distinct) > 10, "state barely changed: the load did not reach the chain"
