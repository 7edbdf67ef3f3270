"""`fedledger bench statesync`: time for a fresh node to join a grown chain by state sync vs by block sync.

A localnet of real CometBFT validators running the FedLedger app, with fast blocks, gets a state
of `members` admitted members (each a fully checked VC admission) and then grows to `heights`.
A fresh non-validator node joins twice on the same chain: once by state sync (restoring the newest
snapshot, then block-syncing the few blocks after it) and once by block sync from genesis (replaying
every block). Each time is measured from process start to CometBFT reporting ``catching_up: false``
at a height at or past the tip seen when the join started.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fedledger.abci_app.tx import sign_tx
from fedledger.bench.chain import _key
from fedledger.bench.load import run_load
from fedledger.localnet import manager
from fedledger.localnet.cometbft import default_bin_dir
from fedledger.localnet.errors import LocalnetError
from fedledger.localnet.ports import find_free_base_port
from fedledger.localnet.statesync import Joiner, start_joiner

__all__ = ["bench_statesync"]


def _height(url: str) -> int:
    return int(manager.rpc_get(url, "status")["sync_info"]["latest_block_height"])


def _wait_join(joiner: Joiner, target: int, timeout: float) -> float:
    """Seconds from the joiner's start until it is caught up at height >= target."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if joiner.comet.poll() is not None or joiner.app.poll() is not None:
            raise LocalnetError(f"joiner exited; see {joiner.node.cometbft_log} and {joiner.node.app_log}")
        try:
            st = manager.rpc_get(joiner.node.rpc_url, "status", timeout=5)["sync_info"]
            if not st["catching_up"] and int(st["latest_block_height"]) >= target:
                return time.monotonic() - joiner.started
        except LocalnetError:
            pass
        time.sleep(0.25)
    raise LocalnetError(f"joiner not caught up at height {target} after {timeout:.0f}s")


def _snapshot_size(spec: Any) -> tuple[int, int, int]:
    """(height, bytes, chunks) of node 0's newest snapshot."""
    root = spec.nodes[0].app_home / "snapshots"
    newest = max(d for d in root.iterdir() if d.is_dir() and d.name.isdigit())
    chunks = sorted(newest.glob("chunk-*"))
    return int(newest.name), sum(c.stat().st_size for c in chunks), len(chunks)


def bench_statesync(heights: int = 10_000, members: int = 2000, validators: int = 2, block_time_ms: int = 10,
                    snapshot_interval: int = 500, join_timeout: float = 900,
                    log: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Grow a chain to `heights` with `members` admitted members; time state-sync and block-sync joins."""
    from fedledger.localnet.dev import dev_credential

    comet = default_bin_dir() / "cometbft"
    env_bin = os.environ.get("COMETBFT_BIN")
    if env_bin:
        comet = Path(env_bin)
    work = Path(tempfile.mkdtemp(prefix="fedledger-bench-statesync-"))
    home = work / "net"
    old = os.environ.get("FEDLEDGER_SNAPSHOT_INTERVAL")
    os.environ["FEDLEDGER_SNAPSHOT_INTERVAL"] = str(snapshot_interval)
    started = time.monotonic()
    ok = False
    try:
        spec = manager.up(home, validators, block_time_ms=block_time_ms, base_port=find_free_base_port(40),
                          timeout=180, reset=True, log=log)
        urls = [n.rpc_url for n in spec.nodes]
        lanes = [[sign_tx(k.private, "admit", {"credential": dev_credential(home, k, "trainer")},
                          spec.chain_id, 1)] for k in (_key(i) for i in range(members))]
        load = run_load(urls, lanes, concurrency=4, batch=50, timeout_s=600)
        log(f"admitted {load.committed} members at {load.tps} tx/s; growing to height {heights}")
        while _height(urls[0]) < heights:
            time.sleep(2.0)
        grow_s = time.monotonic() - started
        snap_height, snap_bytes, snap_chunks = _snapshot_size(spec)
        results: dict[str, Any] = {}
        for mode in ("statesync", "blocksync"):
            target = _height(urls[0])
            joiner = start_joiner(spec, comet, statesync=mode == "statesync", directory=work / f"join-{mode}")
            try:
                results[mode] = {"join_s": round(_wait_join(joiner, target, join_timeout), 1),
                                 "tip_at_start": target}
            finally:
                joiner.stop()
            log(f"{mode}: caught up at {target} in {results[mode]['join_s']} s")
        ok = True
        return {
            "heights": heights, "members": members, "validators": validators, "block_time_ms": block_time_ms,
            "grow_s": round(grow_s, 1),
            "snapshot": {"height": snap_height, "bytes": snap_bytes, "chunks": snap_chunks,
                         "interval": snapshot_interval},
            "statesync": results["statesync"], "blocksync": results["blocksync"],
            "speedup": round(results["blocksync"]["join_s"] / max(results["statesync"]["join_s"], 0.1), 1),
            "cpus": os.cpu_count(),
        }
    finally:
        try:
            manager.down(home)
        except LocalnetError:
            pass
        if old is None:
            os.environ.pop("FEDLEDGER_SNAPSHOT_INTERVAL", None)
        else:
            os.environ["FEDLEDGER_SNAPSHOT_INTERVAL"] = old
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work} for its logs")


def time_snapshot_roundtrip(keys: int = 50_000, value_size: int = 200) -> dict[str, Any]:
    """In process: seconds to snapshot a `keys`-key state at Commit and to restore it into an empty store."""
    from fedledger.abci_app.proto import types as pb
    from fedledger.abci_app.snapshots import Restorer, SnapshotManager
    from fedledger.abci_app.store import CommittedStore

    work = Path(tempfile.mkdtemp(prefix="fedledger-bench-snapshot-"))
    try:
        src = CommittedStore(work / "src.db")
        w = src.working()
        for i in range(keys):
            w.set(b"bench/%010d" % i, hashlib.sha256(b"%d" % i).digest() * (value_size // 32 + 1))
        src.commit(w, 1)
        mgr = SnapshotManager(work / "snaps", interval=1)
        t0 = time.perf_counter()
        m = mgr.take(src)
        take_s = time.perf_counter() - t0
        (snap,) = mgr.list()
        dst = CommittedStore(work / "dst.db")
        restorer = Restorer(dst)
        t0 = time.perf_counter()
        restorer.offer(pb.RequestOfferSnapshot(snapshot=snap, app_hash=src.app_hash))
        for i in range(snap.chunks):
            restorer.apply(pb.RequestApplySnapshotChunk(index=i, chunk=mgr.load_chunk(1, 1, i)))
        restore_s = time.perf_counter() - t0
        if dst.app_hash != src.app_hash:
            raise LocalnetError("restored app hash differs from the source's")
        src.close()
        dst.close()
        return {"keys": keys, "bytes": m.total_bytes, "chunks": len(m.chunk_hashes), "take_s": round(take_s, 2),
                "restore_s": round(restore_s, 2)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(time_snapshot_roundtrip(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000)))
