"""Four real validators under tx load: one down, two down (halt), recovery, SIGKILL of an app and of a CometBFT.

Every node must report the same app hash at every height, and the app hash must actually move
(txs change state), so agreement is not the trivial agreement of empty blocks. Then, under a mixed
load, each node's OWN state (ABCI Info root and proved records, `localnet check-state`) is
compared directly, and a node whose store is altered on disk is named by comparison at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fedledger.localnet import manager
from fedledger.localnet.consortium import dev_issuer_key
from fedledger.localnet.dev import dev_credential
from fedledger.localnet.divergence import DEFAULT_QUERIES, CometProbe, StateReport, check_state
from fedledger.localnet.ports import find_free_base_port
from fedledger.sdk.errors import ClientError
from fedledger.sdk.keys import Key
from fedledger.sdk.rpc import CometRPC
from fedledger.sdk.submit import Submitter
from tests.support import payload_ref

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


def _check(net: Path, queries: tuple[tuple[str, bytes], ...] = DEFAULT_QUERIES) -> StateReport:
    probes = {f"node{i}": CometProbe(manager.rpc_url(net, i)) for i in range(4)}
    try:
        return check_state(probes, queries)
    finally:
        for p in probes.values():
            p.close()


def _cli(net: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fedledger.apps.cli", "localnet", "check-state", "--home",
                           str(net), *args], capture_output=True, text=True, timeout=120, check=False)


def _mixed_load(net: Path) -> tuple[list[tuple[str, bytes]], str]:
    """Admissions, a task, a round, a DP-debited contribution, a version (reputation), a proposal and a vote.

    Returns the queries whose records these txs wrote, and the trainer's DID.
    """
    from fedledger.abci_app.did.didkey import did_from_private_key

    rpc = CometRPC(manager.rpc_url(net, 0), timeout=10)
    key = lambda name: Key(name, Ed25519PrivateKey.from_private_bytes(hashlib.sha256(name.encode()).digest()))  # noqa: E731
    agg, trainer = key("mix-agg"), key("mix-trainer")
    admin = Key("local-admin", dev_issuer_key(net))
    task = "mix"
    subs = {k.name: Submitter(rpc, k) for k in (agg, trainer, admin)}
    subs["mix-agg"].send("admit", {"credential": dev_credential(net, agg, "aggregator")})
    subs["mix-trainer"].send("admit", {"credential": dev_credential(net, trainer, "trainer", tasks=[task])})
    subs["mix-agg"].send("create_task", {
        "task_id": task, "model_spec": "mlp-digits", "round_size": 1, "min_contributions": 1,
        "deadline_blocks": 100_000, "aggregator": agg.public_hex, "initial_model": payload_ref(f"{task}-v0"),
        "privacy": {"epsilon": "10", "delta": "1e-5", "org_epsilon": None}})
    subs["mix-agg"].send("open_round", {"task_id": task, "round": 1})
    # The round draws its participant among every admitted trainer, the load's own included (their
    # keys are derived from their names, as in Load), so the selected one contributes.
    selected = json.loads(rpc.abci_query(f"/round/{task}/1").value)["selected"][0]
    pool = {k.public_hex: k for k in [trainer, *(Key(f"load{i}", Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(b"load%d" % i).digest())) for i in range(1, 2000))]}
    trainer = pool[selected]
    subs[trainer.name] = Submitter(rpc, trainer)
    subs[trainer.name].send("commit_contribution", {
        "task_id": task, "round": 1, "base_version": 0, "num_examples": 100,
        "dp": {"noise_multiplier": "1", "sample_rate": "0.05", "steps": 60, "clip_norm": "1"},
        **payload_ref(f"{task}/1/trainer")})
    subs["mix-agg"].send("close_round", {"task_id": task, "round": 1})
    subs["mix-agg"].send("propose_version", {"task_id": task, "round": 1, **payload_ref(f"{task}-v1"),
                                             "contributors": [trainer.public_hex]})
    out = subs["local-admin"].send("submit_proposal", {"title": "looser", "action": {
        "type": "set_task_policy", "task_id": task, "changes": {"epsilon": "12"}}})
    pid = int(out.attr("fl", "proposal") or 0)
    subs["local-admin"].send("vote", {"proposal_id": pid, "option": "yes"})
    rpc.close()
    did = did_from_private_key(trainer.private)
    return [(f"/task/{task}", b""), (f"/round/{task}/1", b""), (f"/budget/{task}/{did}", b""),
            (f"/reputation/{trainer.public_hex}", b""), (f"/proposal/{pid}", b""), (f"/member/{did}", b"")], did


@pytest.mark.timeout(300)
def test_each_node_reports_its_own_state_and_a_corrupted_node_is_named(net: Path) -> None:
    with Load(net, 4) as load:
        manager.wait_for_height(net, 3, 60)
        extra, _did = _mixed_load(net)
    assert load.sent > 5, f"load generator sent only {load.sent} txs"
    queries = (*DEFAULT_QUERIES, *extra)
    report = _check(net, queries)
    assert report.agree and report.aligned and not report.unreachable, report.summary()
    assert report.keys_compared >= 10, report.summary()
    cli = _cli(net, "--json")
    assert cli.returncode == 0, cli.stdout + cli.stderr

    # Alter one record in node3's state database on disk, behind its app (its Merkle tree and root
    # are untouched, so consensus goes on): only a comparison of what each node serves can see it.
    db = manager.load_spec(net).node(3).app_home / "state.db"
    budget_key = next(k for k in _record_keys(net, queries) if k.startswith(b"dp/spend/"))
    con = sqlite3.connect(db, timeout=10)
    with con:
        assert con.execute("UPDATE kv SET value = ? WHERE key = ?", (b'{"forged":1}', budget_key)).rowcount == 1
    con.close()
    t0 = time.monotonic()
    report = _check(net, queries)
    took = time.monotonic() - t0
    assert report.divergent == ["node3"], report.summary()
    assert any(f.subject == f"key 0x{budget_key.hex()}" for f in report.findings), report.summary()
    assert took < 10, f"the check took {took:.1f} s"
    print(f"check-state named node3 in {took:.2f} s at height {report.height}, {report.keys_compared} keys")
    asked = [f"--query={path}" for path, _ in queries]
    cli = _cli(net, *asked)
    assert cli.returncode == 7 and "node3" in cli.stdout and "STATE_DIVERGED" in cli.stderr, cli.stdout + cli.stderr

    # A dead node is reported unreachable, by name, with exit status 4 (network), not a crash.
    manager.stop_node(net, 1)
    report = _check(net, queries)
    assert "node1" in report.unreachable and report.divergent == ["node3"], report.summary()
    cli = _cli(net, *asked)
    assert cli.returncode == 7 and "node1: UNREACHABLE" in cli.stdout, cli.stdout + cli.stderr


def _record_keys(net: Path, queries: tuple[tuple[str, bytes], ...]) -> list[bytes]:
    """Every store key node0's proved answers to `queries` read."""
    from fedledger.abci_app.store.proof import RecordProof

    rpc = CometRPC(manager.rpc_url(net, 0), timeout=10)
    keys = [RecordProof.decode(op[2]).key
            for path, data in queries for op in rpc.abci_query(path, data, True).proof_ops]
    rpc.close()
    return keys
