"""Checkpoint leaves: exact canonical bytes, which events make a version trusted, and reading them over CometBFT RPC."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fedledger.node.anchor.checkpoints import (
    Checkpoint,
    CheckpointError,
    CheckpointVersion,
    RPCCheckpoints,
    leaves,
    trusted_versions,
)
from fedledger.sdk.rpc import AbciQueryResult

APP = "ab" * 32


def test_leaf_bytes_are_canonical_json() -> None:
    cp = Checkpoint("fedledger-localnet", 42, APP, (CheckpointVersion("digits", 3, "bafkx", "cd" * 32, "promoted"),))
    assert cp.leaf_bytes() == (
        b'{"app_hash":"' + APP.encode() + b'","chain_id":"fedledger-localnet","height":42,'
        b'"scheme":"fedledger-checkpoint-v1","versions":[{"cid":"bafkx","sha256":"' + b"cd" * 32
        + b'","status":"promoted","task_id":"digits","version":3}]}')
    assert Checkpoint.from_json(json.loads(cp.leaf_bytes())) == cp
    assert cp.names("digits", 3) and not cp.names("digits", 2)


@pytest.mark.parametrize(("change", "message"), [
    ({"scheme": "v0"}, "unknown checkpoint scheme"),
    ({"height": 0}, "positive integer"),
    ({"app_hash": "AB" * 32}, "64 lower-case hex"),
    ({"chain_id": ""}, "non-empty string"),
    ({"versions": {}}, "must be a list"),
    ({"versions": [{"task_id": "t"}]}, "exactly task_id, version"),
    ({"extra": 1}, "exactly scheme, chain_id"),
])
def test_checkpoint_parsing_errors(change: dict[str, Any], message: str) -> None:
    raw = Checkpoint("c", 1, APP).to_json() | change
    with pytest.raises(CheckpointError, match=message):
        Checkpoint.from_json(raw)


def fl(**attrs: str) -> dict[str, Any]:
    return {"type": "fl", "attributes": [{"key": k, "value": v, "index": True} for k, v in attrs.items()]}


def test_trusted_versions() -> None:
    events = [
        fl(action="create_task", signer="s", task="digits", version="0"),
        fl(action="decide_version", signer="s", task="digits", version="4", status="promoted"),
        fl(action="decide_version", signer="s", task="digits", version="5", status="quarantined"),
        fl(action="propose_version", signer="s", task="digits", version="6"),
        {"type": "other", "attributes": [{"key": "action", "value": "create_task"}]},
    ]
    assert trusted_versions(events) == [("digits", 0, "initial"), ("digits", 4, "promoted")]


def test_leaves_need_consecutive_heights() -> None:
    with pytest.raises(CheckpointError, match="consecutive heights"):
        leaves([Checkpoint("c", 1, APP), Checkpoint("c", 3, APP)])


class FakeComet:
    """Just enough of a CometBFT RPC: /status, /blockchain (descending, at most 20), /block_results, abci_query."""

    def __init__(self, height: int) -> None:
        self.latest = height
        self.events: dict[int, list[dict[str, Any]]] = {}
        self.end_block: dict[int, list[dict[str, Any]]] = {}
        self.failed: dict[int, list[dict[str, Any]]] = {}
        self.versions = {("digits", 0): ("bafk0", "00" * 32), ("digits", 2): ("bafk2", "22" * 32)}
        self.calls: list[str] = []

    def status(self) -> dict[str, Any]:
        return {"node_info": {"network": "test-chain"}, "sync_info": {"latest_block_height": str(self.latest)}}

    def height(self) -> int:
        return self.latest

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.calls.append(method)
        if method == "blockchain":
            lo, hi = int(params["minHeight"]), int(params["maxHeight"])
            assert hi - lo < 20 and hi <= self.latest
            return {"block_metas": [{"header": {"height": str(h), "app_hash": f"{h:064X}"}}
                                    for h in range(hi, lo - 1, -1)]}
        if method == "block_results":
            h = int(params["height"])
            txs = [{"code": 0, "events": self.events.get(h, [])}]
            txs += [{"code": 9, "events": ev} for ev in self.failed.get(h, [])]
            return {"height": str(h), "txs_results": txs, "finalize_block_events": self.end_block.get(h, [])}
        raise AssertionError(method)

    def abci_query(self, path: str, data: bytes = b"", prove: bool = False, height: int = 0) -> AbciQueryResult:
        _, kind, task, version = path.split("/")
        assert kind == "version"
        cid, digest = self.versions[(task, int(version))]
        value = json.dumps({"cid": cid, "sha256": digest}).encode()
        return AbciQueryResult(0, "", b"", value, b"", self.latest)


def test_rpc_checkpoints() -> None:
    rpc = FakeComet(height=50)
    rpc.events[3] = [fl(action="create_task", signer="s", task="digits", version="0")]
    rpc.end_block[30] = [fl(action="decide_version", signer="governance", task="digits", version="2",
                            status="promoted")]
    rpc.failed[31] = [[fl(action="create_task", signer="s", task="ghost", version="0")]]
    source = RPCCheckpoints(rpc)
    assert source.chain_id == "test-chain" and source.latest_checkpoint_height() == 49
    cps = source.checkpoints(1, 49)
    assert [c.height for c in cps] == list(range(1, 50))
    # The app hash after block h is the one block h+1's header carries.
    assert cps[0].app_hash == f"{2:064x}" and cps[48].app_hash == f"{50:064x}"
    assert cps[2].versions == (CheckpointVersion("digits", 0, "bafk0", "00" * 32, "initial"),)
    assert cps[29].versions == (CheckpointVersion("digits", 2, "bafk2", "22" * 32, "promoted"),)
    assert all(not c.versions for c in cps if c.height not in (3, 30))  # a failed tx's events do not count
    assert rpc.calls.count("blockchain") == 3  # headers 2..50 in pages of 20


def test_rpc_checkpoints_refuses_heights_without_a_successor_header() -> None:
    source = RPCCheckpoints(FakeComet(height=10))
    with pytest.raises(CheckpointError, match="height 10 has no checkpoint yet: the chain's checkpoints reach 9"):
        source.checkpoints(5, 10)
    with pytest.raises(CheckpointError, match="no checkpoints in the height range 0..3"):
        source.checkpoints(0, 3)
