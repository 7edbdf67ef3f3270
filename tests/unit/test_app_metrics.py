"""The ABCI app's Prometheus observer: counters follow what consensus decided, and observing changes nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from prometheus_client import generate_latest

from fedledger.abci_app.app import FedLedgerApp
from fedledger.abci_app.errors import Code
from fedledger.abci_app.observer import AppMetrics, ObservedApp, code_name
from fedledger.abci_app.proto import types as pb
from fedledger.abci_app.store import CommittedStore
from tests.support import DP, POLICY, Chain, Signer, payload_ref

TASK = "digits"


class Driver:
    """Feeds ABCI requests to an app over one chain, like CometBFT: CheckTx, then FinalizeBlock + Commit."""

    def __init__(self, app: FedLedgerApp) -> None:
        self.app = app
        self.height = 0

    def check(self, tx: bytes) -> int:
        return int(self.app.check_tx(pb.RequestCheckTx(tx=tx, type=pb.CheckTxType.NEW)).code)

    def block(self, *txs: bytes) -> pb.ResponseFinalizeBlock:
        self.height += 1
        resp = self.app.finalize_block(pb.RequestFinalizeBlock(
            txs=list(txs), height=self.height, time=Timestamp(seconds=1000 + 2 * self.height),
            hash=hashlib.sha256(b"%d" % self.height).digest()))
        self.app.commit(pb.RequestCommit())
        return resp


def _round(d: Driver) -> tuple[list[Signer], Signer]:
    agg, trainers = Signer(1), [Signer(10 + i) for i in range(2)]
    d.block(agg.admit("aggregator"), *[t.admit("trainer") for t in trainers])
    d.block(agg.tx("create_task", {"task_id": TASK, "model_spec": "mlp-digits", "round_size": 2,
                                   "min_contributions": 1, "deadline_blocks": 100, "aggregator": agg.hex,
                                   "initial_model": payload_ref("v0"), "privacy": POLICY}))
    d.block(agg.tx("open_round", {"task_id": TASK, "round": 1}))
    return trainers, agg


def _commit(t: Signer, tag: str) -> bytes:
    return t.tx("commit_contribution", {"task_id": TASK, "round": 1, "base_version": 0, "num_examples": 50,
                                        "dp": DP, **payload_ref(tag)})


def _value(metrics: AppMetrics, name: str, labels: dict[str, str] | None = None) -> float:
    got = metrics.registry.get_sample_value(name, labels or {})
    return 0.0 if got is None else got


@pytest.fixture
def store() -> Iterator[CommittedStore]:
    s = CommittedStore(":memory:")
    try:
        yield s
    finally:
        s.close()


def test_counters_follow_blocks_commitments_rounds_and_epsilon(store: CommittedStore) -> None:
    metrics = AppMetrics()
    d = Driver(ObservedApp(Chain(store).sm, metrics))
    trainers, agg = _round(d)
    # Two commitments accepted in a block, one refused at the mempool (not a member), one failed in the block.
    outsider = Signer(99)
    refused = d.check(_commit(outsider, "x"))
    assert refused == Code.UNAUTHORIZED
    resp = d.block(_commit(trainers[0], "a"), _commit(trainers[1], "b"), _commit(trainers[1], "b2"))
    codes = [r.code for r in resp.tx_results]
    assert codes[:2] == [0, 0] and codes[2] != 0
    (closed_tx,) = d.block(agg.tx("close_round", {"task_id": TASK, "round": 1})).tx_results
    assert closed_tx.code == 0, closed_tx.log
    accepted = {"result": "accepted", "reason": "OK", "stage": "block"}
    assert _value(metrics, "fedledger_app_commitments_total", accepted) == 2
    rejected = {"result": "rejected", "reason": code_name(codes[2]), "stage": "block"}
    assert _value(metrics, "fedledger_app_commitments_total", rejected) == 1
    assert _value(metrics, "fedledger_app_commitments_total",
                  {"result": "rejected", "reason": "UNAUTHORIZED", "stage": "checktx"}) == 1
    assert _value(metrics, "fedledger_app_height") == d.height == 5
    assert _value(metrics, "fedledger_app_blocks_total") == 5
    assert _value(metrics, "fedledger_app_txs_total", {"type": "admit", "code": "OK"}) == 3
    assert _value(metrics, "fedledger_app_rounds_total", {"event": "opened", "status": "open"}) == 1
    closed = [s for s in metrics.registry.collect() if s.name == "fedledger_app_rounds"][0].samples
    assert sum(s.value for s in closed if s.labels.get("event") == "closed" and s.name.endswith("_total")) == 1
    # Opened in block 3, closed in block 5: 2 blocks, 4 s of block time.
    assert _value(metrics, "fedledger_app_round_duration_blocks_sum") == 2
    assert _value(metrics, "fedledger_app_round_duration_seconds_sum") == 4
    spent = _value(metrics, "fedledger_app_epsilon_spent_total", {"task": TASK})
    assert spent > 0
    assert b"fedledger_app_commitments_total" in generate_latest(metrics.registry)


def test_observing_changes_no_answer_and_survives_its_own_failure() -> None:
    stores = [CommittedStore(":memory:"), CommittedStore(":memory:")]
    try:
        plain, observed = Driver(FedLedgerApp(Chain(stores[0]).sm)), Driver(ObservedApp(Chain(stores[1]).sm,
                                                                                      AppMetrics()))
        for d in (plain, observed):
            _round(d)
        trainers = [Signer(10 + i) for i in range(2)]
        txs = [_commit(trainers[0], "a"), _commit(trainers[0], "a"), b"not a tx"]
        broken = observed.app
        assert isinstance(broken, ObservedApp)
        broken.metrics.observe_block = None  # type: ignore[assignment,method-assign]  # observing now raises
        a, b = plain.block(*txs), observed.block(*txs)
        assert a.SerializeToString() == b.SerializeToString()  # same results, events and app hash
        assert [r.code for r in a.tx_results][2] == Code.ENCODING
    finally:
        for s in stores:
            s.close()


def test_code_names() -> None:
    assert code_name(0) == "OK" and code_name(int(Code.ANCHOR_RANGE)) == "ANCHOR_RANGE" and code_name(999) == "CODE_999"
