"""report_encrypted_inference: the chain records a CKKS answer only when its stage receipts prove one."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

from fedledger.abci_app.errors import Code
from fedledger.abci_app.modules.inference.he_receipts import HEReceipt, parse_he_receipt, receipt_signing_bytes
from fedledger.abci_app.store import CommittedStore
from fedledger.sdk.he.errors import HEReceiptError
from fedledger.sdk.he.records import parse_receipt, sign_receipt, sign_request
from tests.inference_support import TASK, InferenceWorld, inference_genesis, query
from tests.support import Chain, Signer

METRICS = "ab" * 32
GOOD = {"canary_accuracy_ppm": 900_000, "backdoor_asr_ppm": 20_000}
CTX = "cc" * 32
RID = "0123456789abcdef" * 2


@pytest.fixture
def world() -> Iterator[InferenceWorld]:
    store = CommittedStore(":memory:")
    try:
        w = InferenceWorld(Chain(store, inference_genesis()), nodes=3)
        evals = [Signer(40 + i) for i in range(2)]
        w.chain.ok(*[e.admit("evaluator") for e in evals])
        w.chain.ok(*[e.tx("attest_version", {"task_id": TASK, "version": 1, "metrics_sha256": METRICS, **GOOD})
                     for e in evals])
        assert query(w.chain, f"/version/{TASK}/1")["status"] == "promoted"
        w.chain.ok(w.owner.tx("set_inference_policy", {"task_id": TASK, "tier": "critical", "k": 1,
                                                       "guarantees": ["ckks"]}))
        yield w
    finally:
        store.close()


def digest(tag: str) -> str:
    return hashlib.sha256(tag.encode()).hexdigest()


def stage_receipts(w: InferenceWorld, nodes: tuple[int, ...] = (0, 1), *, version: int = 1, rid: str = RID,
                   model: str = TASK) -> list[HEReceipt]:
    """Nodes[i] evaluated stage i; stage i's output ciphertext is stage i+1's input."""
    out = []
    for stage, n in enumerate(nodes):
        request = sign_request(w.client.key, request_id=rid, model=model, version=version, stage=stage,
                               params="ckks-8192-test", input_sha256=digest(f"ct{stage}"), eval_context_sha256=CTX)
        out.append(sign_receipt(w.nodes[n].key, request, digest(f"ct{stage + 1}")))
    return out


def report(w: InferenceWorld, receipts: list[Any], rid: str = RID) -> bytes:
    return w.client.tx("report_encrypted_inference", {
        "task_id": TASK, "request_id": rid,
        "receipts": [r.to_json() if isinstance(r, HEReceipt) else r for r in receipts]
        if isinstance(receipts, list) else receipts})


def test_a_chained_two_stage_answer_is_recorded_with_its_guarantee(world: InferenceWorld) -> None:
    receipts = stage_receipts(world)
    world.chain.ok(report(world, receipts))
    rec = query(world.chain, f"/inference-encrypted/{RID}")
    assert rec["guarantee"] == "ckks" and rec["stages"] == 2 and rec["version"] == 1
    assert rec["nodes"] == [world.did(0), world.did(1)]
    assert rec["input_sha256"] == digest("ct0") and rec["output_sha256"] == digest("ct2")
    assert rec["receipts"] == [r.hash() for r in receipts]
    (res,) = world.chain.block(report(world, receipts))
    assert res.code == Code.INFERENCE_REPLAY


def test_the_client_side_parser_is_the_chains(world: InferenceWorld) -> None:
    (r,) = stage_receipts(world, (0,))[:1]
    assert parse_receipt(r.to_json()) == parse_he_receipt(r.to_json()) == r
    forged = {**r.to_json(), "output_sha256": digest("other")}
    with pytest.raises(HEReceiptError, match="signature does not verify"):
        parse_receipt(forged)
    # the signed bytes are domain-separated canonical JSON of every field but the signature
    assert receipt_signing_bytes(r.unsigned()).startswith(b"fedledger/he-receipt/v1\n")


@pytest.mark.parametrize(("mutate", "code", "log"), [
    (lambda rs: [{**rs[0].to_json(), "output_sha256": digest("x")}, rs[1]], Code.INFERENCE_RECEIPT,
     "signature does not verify"),
    (lambda rs: [rs[1], rs[0]], Code.INFERENCE_RECEIPT, "stages run 0..n-1"),
    (lambda rs: rs[:1], Code.INVALID_BODY, "two or more nodes"),
    (lambda rs: [{**rs[0].to_json(), "stage": "0"}, rs[1]], Code.INFERENCE_RECEIPT, "'stage'"),
    (lambda rs: "nope", Code.INVALID_BODY, "receipts must be a list"),
])
def test_malformed_or_forged_reports_are_refused(world: InferenceWorld, mutate: Any, code: int, log: str) -> None:
    (res,) = world.chain.block(report(world, mutate(stage_receipts(world))))
    assert res.code == code and log in res.log, (res.code, res.log)
    assert world.chain.sm.query(f"/inference-encrypted/{RID}", b"", False).code == Code.QUERY_NOT_FOUND


def test_receipts_that_do_not_chain_or_describe_another_request_are_refused(world: InferenceWorld) -> None:
    a, _ = stage_receipts(world)
    request = sign_request(world.client.key, request_id=RID, model=TASK, version=1, stage=1, params="ckks-8192-test",
                           input_sha256=digest("elsewhere"), eval_context_sha256=CTX)
    b = sign_receipt(world.nodes[1].key, request, digest("ct2"))
    (res,) = world.chain.block(report(world, [a, b]))
    assert res.code == Code.INFERENCE_RECEIPT and "do not chain" in res.log
    other = stage_receipts(world, rid="f" * 32)
    (res,) = world.chain.block(report(world, [a, other[1]]))
    assert res.code == Code.INFERENCE_RECEIPT and "name this request" in res.log
    (res,) = world.chain.block(report(world, stage_receipts(world, model="other-task")))
    assert res.code == Code.INFERENCE_RECEIPT


def test_one_node_may_not_hold_every_stage(world: InferenceWorld) -> None:
    (res,) = world.chain.block(report(world, stage_receipts(world, (2, 2))))
    assert res.code == Code.INFERENCE_RECEIPT and "held more of the model" in res.log


def test_nodes_must_be_registered_and_serve_the_task(world: InferenceWorld) -> None:
    outsider = Signer(77)
    world.chain.ok(outsider.admit("inference"))  # admitted, never registered
    world.nodes.append(outsider)
    (res,) = world.chain.block(report(world, stage_receipts(world, (0, 3))))
    assert res.code == Code.INFERENCE_NODE and "not a registered inference node" in res.log


def test_the_policy_must_accept_ckks_and_the_version_be_promoted(world: InferenceWorld) -> None:
    (res,) = world.chain.block(report(world, stage_receipts(world, version=2)))
    assert res.code == Code.NOT_FOUND
    world.chain.ok(world.owner.tx("set_inference_policy", {"task_id": TASK, "tier": "critical", "k": 1,
                                                           "guarantees": ["zk"]}))
    (res,) = world.chain.block(report(world, stage_receipts(world)))
    assert res.code == Code.INFERENCE_TIER and "does not accept the ckks guarantee" in res.log
    world.chain.ok(world.owner.tx("set_inference_policy", {"task_id": TASK, "tier": "general", "k": 1}))
    (res,) = world.chain.block(report(world, stage_receipts(world)))
    assert res.code == Code.INFERENCE_TIER


def test_a_proposed_version_is_not_served(world: InferenceWorld) -> None:
    w = world
    w.chain.ok(w.agg.tx("open_round", {"task_id": TASK, "round": 2}))
    w.chain.ok(*[t.tx("commit_contribution", {"task_id": TASK, "round": 2, "base_version": 1, "num_examples": 10,
                                               "dp": {"noise_multiplier": "1", "sample_rate": "0.1", "steps": 10,
                                                      "clip_norm": "1"},
                                               "cid": "bafkreigh2akiscaildc" + "a" * 39, "sha256": digest(f"u{i}"),
                                               "size": 10}) for i, t in enumerate(w.trainers)])
    w.chain.ok(w.agg.tx("close_round", {"task_id": TASK, "round": 2}))
    w.chain.ok(w.agg.tx("propose_version", {"task_id": TASK, "round": 2, "cid": "bafkreigh2akiscaildc" + "b" * 39,
                                             "sha256": digest("v2"), "size": 10,
                                             "contributors": sorted(t.hex for t in w.trainers)}))
    (res,) = w.chain.block(report(w, stage_receipts(w, version=2)))
    assert res.code == Code.WRONG_STATE and "not promoted" in res.log


def test_query_errors(world: InferenceWorld) -> None:
    res = world.chain.sm.query("/inference-encrypted/xyz", b"", False)
    assert res.code == Code.BAD_QUERY
    res = world.chain.sm.query("/inference-encrypted", b"", False)
    assert res.code == Code.BAD_QUERY
