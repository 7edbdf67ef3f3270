"""The inference module of the state machine: node registration, tiers, receipt tallies, slashing and fraud proofs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fedledger.abci_app.errors import Code
from fedledger.abci_app.modules.inference.receipts import agree, parse_receipt
from fedledger.abci_app.modules.inference.tally import tally
from fedledger.abci_app.store import CommittedStore
from tests.inference_support import TASK, InferenceWorld, inference_genesis, query
from tests.support import Chain, Signer

GOOD = [0.1, 2.5, -1.0]
BAD = [3.0, 0.0, 0.0]


@pytest.fixture
def world() -> Iterator[InferenceWorld]:
    store = CommittedStore(":memory:")
    try:
        yield InferenceWorld(Chain(store, inference_genesis()))
    finally:
        store.close()


def test_nodes_register_and_only_the_inference_role_may(world: InferenceWorld) -> None:
    listing = query(world.chain, "/inference-nodes")
    assert listing["count"] == 3 and [n["endpoint"] for n in listing["nodes"]] == [
        "http://127.0.0.1:8100", "http://127.0.0.1:8101", "http://127.0.0.1:8102"]
    node = query(world.chain, f"/inference-node/{world.did(0)}")
    assert node["status"] == "active" and node["key"] == world.nodes[0].hex
    assert query(world.chain, f"/inference-node/{world.nodes[0].hex}")["seq"] == 1
    (res,) = world.chain.block(world.trainers[0].tx("register_inference_node",
                                                    {"endpoint": "http://127.0.0.1:9", "tasks": [TASK]}))
    assert res.code == Code.UNAUTHORIZED and "needs one of ['inference']" in res.log
    (res,) = world.chain.block(world.nodes[0].tx("register_inference_node", {"endpoint": "ftp://x", "tasks": [TASK]}))
    assert res.code == Code.INVALID_BODY and "http(s) base URL" in res.log
    world.chain.ok(world.nodes[0].tx("register_inference_node",
                                     {"endpoint": "http://127.0.0.1:9000/", "tasks": [TASK]}))
    assert query(world.chain, "/inference-nodes")["count"] == 3  # moved, not added
    assert query(world.chain, f"/inference-node/{world.did(0)}")["endpoint"] == "http://127.0.0.1:9000"
    for tasks, log in ((["nope"], "does not exist"), (["b", "a"], "sorted"), ([], "1-16 task ids")):
        (res,) = world.chain.block(world.nodes[0].tx("register_inference_node",
                                                     {"endpoint": "http://127.0.0.1:9000", "tasks": tasks}))
        assert res.code != 0 and log in res.log, res.log


def test_unanimous_batch_is_tallied_with_a_merkle_root(world: InferenceWorld) -> None:
    reqs = [[world.receipt(i, f"r{j}", GOOD, x=float(j)) for i in range(3)] for j in range(4)]
    (res,) = world.chain.ok(world.report(reqs, cid="bafkrei" + "b" * 52))
    attrs = dict(res.events[0].attributes)
    assert attrs["requests"] == "4" and attrs["dissents"] == "0"
    batch = query(world.chain, "/inference-batch/latest")
    assert batch["receipts"] == 12 and len(batch["root"]) == 64 and batch["cid"].startswith("bafkrei")
    assert all(r["outcome"] == "unanimous" and len(r["majority"]) == 3 for r in batch["requests"])
    req = query(world.chain, f"/inference-request/{batch['requests'][2]['request']}")
    assert req["request_id"] == "r2" and req["version"] == 1 and req["batch"] == 1
    assert all(n["agreed"] == 4 and n["dissented"] == 0 for n in query(world.chain, "/inference-nodes")["nodes"])
    assert query(world.chain, "/inference-slashes")["count"] == 0
    # The same receipts again are a replay.
    (res,) = world.chain.block(world.report(reqs[:1]))
    assert res.code == Code.INFERENCE_REPLAY


def test_outvoted_node_is_slashed_in_the_block_and_suspended_after_repeats(world: InferenceWorld) -> None:
    liar = world.did(2)
    score_before = query(world.chain, f"/reputation/{liar}")["score"]
    (res,) = world.chain.ok(world.report([[world.receipt(0, "a", GOOD), world.receipt(1, "a", GOOD),
                                           world.receipt(2, "a", BAD)]]))
    kinds = [dict(e.attributes).get("action") for e in res.events]
    assert "slash_inference_node" in kinds
    slashes = query(world.chain, "/inference-slashes")
    assert slashes["count"] == 1 and slashes["slashes"][0]["node"] == liar
    assert slashes["slashes"][0]["reason"] == "dissent" and not slashes["slashes"][0]["suspended"]
    assert query(world.chain, f"/reputation/{liar}")["score"] == score_before - 50_000
    for j in range(2):  # max_dissents is 3 within 100 blocks by default
        world.chain.ok(world.report([[world.receipt(0, f"b{j}", GOOD), world.receipt(1, f"b{j}", GOOD),
                                      world.receipt(2, f"b{j}", BAD)]]))
    node = query(world.chain, f"/inference-node/{liar}")
    assert node["status"] == "suspended" and node["dissented"] == 3 and "outvoted 3 times" in node["suspended_reason"]
    assert query(world.chain, f"/inference-node/{world.did(0)}")["status"] == "active"
    # A suspended node's receipts are not counted (nor penalized again); the others' still are.
    world.chain.ok(world.report([[world.receipt(0, "c", GOOD), world.receipt(1, "c", GOOD),
                                  world.receipt(2, "c", BAD)]]))
    entry = query(world.chain, "/inference-batch/latest")["requests"][0]
    assert entry["excluded"] == [liar] and entry["outcome"] == "unanimous" and entry["dissenters"] == []
    assert query(world.chain, f"/inference-node/{liar}")["dissented"] == 3


def test_tolerance_keeps_float_noise_in_agreement(world: InferenceWorld) -> None:
    near = [v + 1e-4 for v in GOOD]  # a last-bits difference between CPUs
    a, b = world.receipt(0, "n", GOOD), world.receipt(1, "n", near)
    assert agree(a, b)
    far = [GOOD[0] + 0.02, GOOD[1], GOOD[2]]  # five quantization steps off
    assert not agree(a, world.receipt(1, "n", far))
    t = tally([a, b, world.receipt(2, "n", far)])
    assert t.outcome == "majority" and t.dissenters == (world.did(2),)
    assert tally([a, world.receipt(1, "n", far)]).outcome == "split"  # 1 vs 1: nobody can tell who lied


def test_split_requests_penalize_nobody(world: InferenceWorld) -> None:
    world.chain.ok(world.report([[world.receipt(0, "s", GOOD), world.receipt(1, "s", BAD)]]))
    assert query(world.chain, "/inference-batch/1")["requests"][0]["outcome"] == "split"
    assert query(world.chain, "/inference-slashes")["count"] == 0


def test_fraud_proof_slashes_and_suspends_once(world: InferenceWorld) -> None:
    a, b = world.receipt(1, "f1", GOOD), world.receipt(1, "f2", BAD)  # same input, same version
    fraud = {"a": a.to_json(), "b": b.to_json()}
    (res,) = world.chain.ok(world.client.tx("report_fraud", fraud))
    node = query(world.chain, f"/inference-node/{world.did(1)}")
    assert node["status"] == "suspended" and "fraud proof" in node["suspended_reason"]
    assert query(world.chain, "/inference-slashes")["slashes"][0]["reason"] == "fraud"
    (res,) = world.chain.block(world.client.tx("report_fraud", fraud))
    assert res.code == Code.INFERENCE_REPLAY
    agreeing = {"a": world.receipt(0, "g1", GOOD).to_json(), "b": world.receipt(0, "g2", GOOD).to_json()}
    (res,) = world.chain.block(world.client.tx("report_fraud", agreeing))
    assert res.code == Code.INFERENCE_NO_FRAUD
    other_input = {"a": world.receipt(0, "h1", GOOD).to_json(), "b": world.receipt(0, "h2", BAD, x=2.0).to_json()}
    (res,) = world.chain.block(world.client.tx("report_fraud", other_input))
    assert res.code == Code.INVALID_BODY and "same task, version, segment and input" in res.log


def test_forged_and_malformed_receipts_are_refused(world: InferenceWorld) -> None:
    good = world.receipt(0, "x", GOOD).to_json()
    forged = {**good, "output_hash": "0" * 64}
    (res,) = world.chain.block(world.client.tx("report_receipts", {"task_id": TASK, "requests": [[forged]]}))
    assert res.code == Code.BAD_SIGNATURE
    with pytest.raises(Exception, match="exactly the fields"):
        parse_receipt({k: v for k, v in good.items() if k != "q"})
    for requests, code, log in (
        ([], Code.INVALID_BODY, "1-256 requests"),
        ([[good, good]], Code.INVALID_BODY, "answered twice"),
        ([[good, world.receipt(1, "other", GOOD).to_json()]], Code.INVALID_BODY, "must share"),
        ([[world.receipt(0, "v", GOOD, version=7).to_json()]], Code.NOT_FOUND, "no version 7"),
        ([[world.receipt(0, "h", GOOD, height=10**6).to_json()]], Code.INVALID_BODY, "claims height"),
    ):
        (res,) = world.chain.block(world.client.tx("report_receipts", {"task_id": TASK, "requests": requests}))
        assert res.code == code and log in res.log, (res.code, res.log)
    stranger = Signer(99)
    (res,) = world.chain.block(stranger.tx("report_receipts", {"task_id": TASK, "requests": [[good]]}))
    assert res.code == Code.UNAUTHORIZED


def test_critical_tier_refuses_general_receipts(world: InferenceWorld) -> None:
    assert query(world.chain, f"/inference-policy/{TASK}") == {"task_id": TASK, "tier": "general", "k": 3,
                                                                "set_height": 0}
    (res,) = world.chain.block(world.client.tx("set_inference_policy", {"task_id": TASK, "tier": "critical", "k": 3,
                                                                        "guarantees": ["zk"]}))
    assert res.code == Code.UNAUTHORIZED
    world.chain.ok(world.owner.tx("set_inference_policy", {"task_id": TASK, "tier": "critical", "k": 3,
                                                           "guarantees": ["ckks", "zk"]}))
    pol = query(world.chain, f"/inference-policy/{TASK}")
    assert pol["tier"] == "critical" and pol["guarantees"] == ["ckks", "zk"]
    (res,) = world.chain.block(world.report([[world.receipt(0, "c", GOOD)]]))
    assert res.code == Code.INFERENCE_TIER and "requires the critical tier" in res.log


@pytest.mark.parametrize(("body", "log"), [
    ({"tier": "critical"}, "names the guarantees"),
    ({"tier": "critical", "guarantees": []}, "names the guarantees"),
    ({"tier": "critical", "guarantees": ["tee"]}, "guarantees must be"),
    ({"tier": "critical", "guarantees": ["zk", "ckks"]}, "guarantees must be"),
    ({"tier": "critical", "guarantees": ["zk", "zk"]}, "guarantees must be"),
    ({"tier": "critical", "guarantees": "zk"}, "guarantees must be"),
    ({"tier": "general", "guarantees": ["zk"]}, "belong to the critical tier"),
])
def test_policy_guarantees_are_checked(world: InferenceWorld, body: dict[str, object], log: str) -> None:
    (res,) = world.chain.block(world.owner.tx("set_inference_policy", {"task_id": TASK, "k": 3, **body}))
    assert res.code == Code.INVALID_BODY and log in res.log, (res.code, res.log)
    # a general policy keeps its old record shape: no guarantees key
    world.chain.ok(world.owner.tx("set_inference_policy", {"task_id": TASK, "tier": "general", "k": 2}))
    assert "guarantees" not in query(world.chain, f"/inference-policy/{TASK}")
