"""State sync on a real 4-validator CometBFT v0.38 localnet: a fresh 5th node joins from a snapshot.

Validators snapshot every 10 heights (FEDLEDGER_SNAPSHOT_INTERVAL, read by the app process). The
joiner restores the newest snapshot (its app log says so), then block-syncs the rest, and its app's
hash at its height equals the app hash the validators' next header commits to.
"""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path

import pytest

from fedledger.localnet import manager
from fedledger.localnet.errors import LocalnetError, NotRunningError
from fedledger.localnet.ports import find_free_base_port
from fedledger.localnet.statesync import start_joiner
from tests.integration.conftest import pinned_binary
from tests.support import use_pinned_cometbft

pytestmark = pytest.mark.integration


def _height(url: str) -> int:
    return int(manager.rpc_get(url, "status")["sync_info"]["latest_block_height"])


def _wait(pred: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():  # type: ignore[operator]
                return
        except LocalnetError:
            pass
        time.sleep(1.0)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def test_fifth_node_joins_by_state_sync(tmp_path: Path) -> None:
    restore_env = use_pinned_cometbft()
    old = os.environ.get("FEDLEDGER_SNAPSHOT_INTERVAL")
    os.environ["FEDLEDGER_SNAPSHOT_INTERVAL"] = "10"
    home = tmp_path / "net"
    joiner = None
    try:
        spec = manager.up(home, 4, block_time_ms=200, base_port=find_free_base_port(40), timeout=120,
                          log=lambda _msg: None)
        v0 = spec.nodes[0].rpc_url
        _wait(lambda: _height(v0) >= 23, 150, "height 23 on the validators")
        comet = pinned_binary("COMETBFT_BIN", "cometbft")
        assert comet is not None
        joiner = start_joiner(spec, comet)
        j = joiner.node.rpc_url

        def caught_up() -> bool:
            st = manager.rpc_get(j, "status")["sync_info"]
            return not st["catching_up"] and int(st["latest_block_height"]) >= 22

        _wait(caught_up, 120, "the joiner to catch up")
        log = joiner.node.app_log.read_text()
        assert "restored state at height" in log, log[-3000:]
        # The joiner never executed blocks 1..snapshot height: it has no block 1.
        with pytest.raises(LocalnetError):
            manager.rpc_get(j, "block", {"height": 1})
        for _ in range(3):  # compare at a few heights while the chain moves on
            info = manager.rpc_get(j, "abci_info")["response"]
            h = int(info["last_block_height"])
            _wait(lambda h=h: _height(v0) >= h + 1, 30, f"validator height {h + 1}")
            header = manager.rpc_get(v0, "block", {"height": h + 1})["block"]["header"]
            assert base64.b64decode(info["last_block_app_hash"]).hex().upper() == header["app_hash"]
            time.sleep(1.0)
    finally:
        if joiner is not None:
            joiner.stop()
        try:
            manager.down(home)
        except NotRunningError:
            pass
        restore_env()
        if old is None:
            os.environ.pop("FEDLEDGER_SNAPSHOT_INTERVAL", None)
        else:
            os.environ["FEDLEDGER_SNAPSHOT_INTERVAL"] = old
