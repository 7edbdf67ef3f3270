"""localnet.divergence: majority, ties, unreachable nodes, height alignment and altered stores.

Each fake node is a real in-process state machine (tests/support.Chain) behind the NodeProbe
interface, so roots, answers and proofs are the ones a real app would serve.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fedledger.abci_app.query_proofs import PROOF_OP_TYPE
from fedledger.abci_app.store.state import CommittedStore
from fedledger.localnet.divergence import DEFAULT_QUERIES, check_state, majority
from fedledger.localnet.errors import NotRunningError
from fedledger.sdk.rpc import AbciQueryResult
from tests.support import Chain, genesis


class FakeNode:
    """A NodeProbe over a Chain; `dead` makes every call fail, `move_once` commits a block mid-sample."""

    def __init__(self, path: Path, blocks: int, cap: int = 100) -> None:
        self.path = path
        self.chain = Chain(CommittedStore(path), genesis(cap=cap))
        self.headers: dict[int, bytes] = {}
        self.dead = False
        self.move_once = False
        self.calls = 0
        for _ in range(blocks):
            self.step()

    def step(self) -> None:
        # Header h+1 carries the root after block h, as CometBFT's block store does.
        self.chain.block()
        self.headers[self.chain.height + 1] = self.chain.sm.app_hash

    def info(self) -> tuple[int, bytes]:
        self.calls += 1
        if self.dead:
            raise NotRunningError(f"{self.path.name}: connection refused")
        return self.chain.sm.height, self.chain.sm.app_hash

    def header_app_hash(self, height: int) -> bytes:
        if self.dead:
            raise NotRunningError("connection refused")
        return self.headers[height]

    def query(self, path: str, data: bytes) -> AbciQueryResult:
        if self.move_once:
            self.move_once = False
            self.step()
        r = self.chain.sm.query(path, data, True)
        return AbciQueryResult(code=r.code, log=r.log, key=r.key, value=r.value, proof=b"", height=r.height,
                               path=path, data=data,
                               proof_ops=tuple((PROOF_OP_TYPE, p.key, p.encode()) for p in r.proofs))


def _nodes(tmp_path: Path, *spec: tuple[int, int]) -> dict[str, FakeNode]:
    """(blocks, org cap) per node; a different cap is a different genesis, hence a different state."""
    return {f"node{i}": FakeNode(tmp_path / f"n{i}.db", blocks, cap) for i, (blocks, cap) in enumerate(spec)}


def test_majority_needs_more_than_half() -> None:
    assert majority({"a": 1, "b": 1, "c": 2}) == 1
    assert majority({"a": 1, "b": 2}) is None
    assert majority({"a": 1, "b": 1, "c": 2, "d": 2}) is None
    assert majority({}) is None


def test_agreement(tmp_path: Path) -> None:
    nodes = _nodes(tmp_path, (3, 100), (3, 100), (3, 100), (3, 100))
    r = check_state(nodes)
    assert r.agree and r.aligned and r.height == 3 and not r.unreachable
    assert len(set(r.roots.values())) == 1 and r.majority_root == r.roots["node0"]
    assert r.keys_compared >= len(DEFAULT_QUERIES)  # each reads at least one record


def test_one_diverged_node_is_named_by_root_and_key(tmp_path: Path) -> None:
    nodes = _nodes(tmp_path, (3, 100), (3, 100), (3, 99), (3, 100))
    r = check_state(nodes, (*DEFAULT_QUERIES, ("/org/test-org", b"")))
    assert r.divergent == ["node2"]
    assert any(f.subject == "app hash" and f.node == "node2" and f.height == 3 for f in r.findings)
    assert any(f.subject == "key 0x" + b"id/org/test-org".hex() for f in r.findings)
    assert r.majority_root == r.roots["node0"] != r.roots["node2"]


def test_tie_has_no_majority(tmp_path: Path) -> None:
    nodes = _nodes(tmp_path, (2, 100), (2, 100), (2, 99), (2, 99))
    r = check_state(nodes)
    assert r.majority_root is None and r.divergent == ["node0", "node1", "node2", "node3"]
    assert all("no majority" in f.detail for f in r.findings if f.subject == "app hash")


def test_unreachable_node_is_reported_not_compared(tmp_path: Path) -> None:
    nodes = _nodes(tmp_path, (2, 100), (2, 100), (2, 100), (2, 100))
    nodes["node1"].dead = True
    r = check_state(nodes)
    assert r.agree and "node1" not in r.roots and "connection refused" in r.unreachable["node1"]
    assert nodes["node1"].calls == 1  # a dead node is asked once, not retried


def test_all_unreachable(tmp_path: Path) -> None:
    nodes = _nodes(tmp_path, (1, 100), (1, 100))
    for n in nodes.values():
        n.dead = True
    r = check_state(nodes)
    assert r.height is None and not r.roots and set(r.unreachable) == {"node0", "node1"}


def test_lagging_diverged_node_compared_at_its_height_through_headers(tmp_path: Path) -> None:
    # node3 diverged and stalled at height 2 while the others went on to 4: no common sample height.
    nodes = _nodes(tmp_path, (4, 100), (4, 100), (4, 100), (2, 99))
    r = check_state(nodes, rounds=2, pause_s=0)
    assert r.height == 2 and not r.aligned
    assert r.divergent == ["node3"] and r.findings[0].subject == "app hash"


def test_healthy_laggard_agrees_at_its_height(tmp_path: Path) -> None:
    nodes = _nodes(tmp_path, (4, 100), (4, 100), (3, 100))
    r = check_state(nodes, rounds=2, pause_s=0)
    assert r.agree and r.height == 3


def test_a_block_during_the_sample_is_resampled(tmp_path: Path) -> None:
    nodes = _nodes(tmp_path, (3, 100), (4, 100), (4, 100))
    nodes["node0"].move_once = True  # reaches 4 mid-sample: that sample is discarded, the next aligns
    r = check_state(nodes, pause_s=0)
    assert r.agree and r.aligned and r.height == 4


def test_store_altered_behind_the_tree_is_named_with_the_key(tmp_path: Path) -> None:
    nodes = _nodes(tmp_path, (2, 100), (2, 100), (2, 100), (2, 100))
    con = sqlite3.connect(nodes["node1"].path)
    with con:
        assert con.execute("UPDATE kv SET value = ? WHERE key = ?", (b"{}", b"rep/params")).rowcount == 1
    con.close()
    r = check_state(nodes)
    assert r.divergent == ["node1"]
    assert len(set(r.roots.values())) == 1  # its root is unchanged: only the records show it
    subjects = {f.subject for f in r.findings}
    assert "key 0x" + b"rep/params".hex() in subjects and "query /reputation-params" in subjects


@pytest.mark.parametrize("rounds", [0, 1])
def test_rounds_floor(tmp_path: Path, rounds: int) -> None:
    nodes = _nodes(tmp_path, (1, 100), (1, 100))
    assert check_state(nodes, rounds=rounds).agree
