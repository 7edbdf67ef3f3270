"""The federation state machine driven block by block: a full round, each rejection, queries and proofs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fedledger.abci_app.errors import Code
from fedledger.abci_app.store import ProofError, verify_proof
from tests.support import DP, POLICY, Chain, Signer, credential, model_ref

TASK = "digits"


def setup_task(chain: Chain, round_size: int = 3, min_contributions: int = 2, deadline: int = 5,
               n_trainers: int | None = None) -> tuple[Signer, Signer, list[Signer]]:
    """Owner, aggregator and trainers (as many as the round size unless given: then all are selected)."""
    owner, agg = Signer(10), Signer(11)
    trainers = [Signer(20 + i) for i in range(n_trainers if n_trainers is not None else round_size)]
    chain.ok(owner.admit("validator-admin"), agg.admit("aggregator"), *[t.admit("trainer") for t in trainers])
    chain.ok(owner.tx("create_task", {
        "task_id": TASK, "model_spec": "mlp-digits", "round_size": round_size,
        "min_contributions": min_contributions, "deadline_blocks": deadline, "aggregator": agg.hex,
        "initial_model": model_ref("v0"), "privacy": POLICY}))
    return owner, agg, trainers


def commit_body(number: int, tag: str, base: int = 0, examples: int = 10) -> dict[str, Any]:
    return {"task_id": TASK, "round": number, "base_version": base, "num_examples": examples, "dp": DP,
            **model_ref(tag)}


def query(chain: Chain, path: str) -> Any:
    res = chain.sm.query(path, b"", False)
    assert res.code == 0, res.log
    return json.loads(res.value)


def test_full_round_and_lineage(chain: Chain) -> None:
    owner, agg, trainers = setup_task(chain)
    chain.ok(agg.tx("open_round", {"task_id": TASK, "round": 1}))
    chain.ok(*[t.tx("commit_contribution", commit_body(1, f"u{i}", examples=10 + i))
               for i, t in enumerate(trainers[:3])])
    assert query(chain, f"/round/{TASK}/1")["contributions"] == 3
    chain.ok(agg.tx("close_round", {"task_id": TASK, "round": 1}))  # full: closes before the deadline
    included = sorted(t.hex for t in trainers[:2])  # the aggregator dropped one (say, hash mismatch)
    results = chain.ok(agg.tx("propose_version", {"task_id": TASK, "round": 1, **model_ref("v1"),
                                                  "contributors": included}))
    assert ("version", "1") in results[0].events[0].attributes
    lineage = query(chain, f"/lineage/{TASK}/1")
    assert [c["participant"] for c in lineage["contributions"]] == included
    assert lineage["version"]["total_examples"] == sum(10 + i for i, t in enumerate(trainers[:3])
                                                       if t.hex in included)
    assert [a["version"] for a in lineage["ancestors"]] == [0]
    assert query(chain, f"/task/{TASK}")["latest_version"] == 1
    assert query(chain, f"/version/{TASK}/latest")["version"] == 1


def codes(results: list[Any]) -> list[int]:
    return [r.code for r in results]


def selected_first(chain: Chain, trainers: list[Signer], number: int = 1) -> list[Signer]:
    """The trainers, selected ones first (in key order), then the others."""
    chosen = query(chain, f"/round/{TASK}/{number}")["selected"]
    return sorted(trainers, key=lambda t: (t.hex not in chosen, t.hex))


def test_rejections_have_codes_and_leave_state_alone(chain: Chain) -> None:
    owner, agg, trainers = setup_task(chain, round_size=2, deadline=30, n_trainers=4)
    # commit before any round exists
    assert codes(chain.block(trainers[0].tx("commit_contribution", commit_body(1, "x")))) == [Code.NOT_FOUND]
    # only owner/aggregator open rounds; rounds open in order
    assert codes(chain.block(trainers[1].tx("open_round", {"task_id": TASK, "round": 1}))) == [Code.UNAUTHORIZED]
    assert codes(chain.block(agg.tx("open_round", {"task_id": TASK, "round": 2}))) == [Code.WRONG_STATE]
    chain.ok(agg.tx("open_round", {"task_id": TASK, "round": 1}))
    t0, t1, t2, t3 = selected_first(chain, trainers)
    before = chain.sm.app_hash
    # the aggregator may not train (its role); wrong base version; unknown task
    assert codes(chain.block(agg.tx("commit_contribution", commit_body(1, "a")))) == [Code.UNAUTHORIZED]
    assert codes(chain.block(t0.tx("commit_contribution", commit_body(1, "a", base=7)))) == [Code.WRONG_STATE]
    bad_task = dict(commit_body(1, "a"), task_id="nope")
    assert codes(chain.block(t0.tx("commit_contribution", bad_task))) == [Code.NOT_FOUND]
    # body schema
    assert codes(chain.block(t0.tx("commit_contribution", {"task_id": TASK}))) == [Code.INVALID_BODY]
    assert codes(chain.block(t0.tx("no_such_type", {}))) == [Code.UNKNOWN_TYPE]
    # Failed txs consumed nonces (replay protection) but touched no federation state.
    assert query(chain, f"/round/{TASK}/1")["contributions"] == 0
    assert before != chain.sm.app_hash  # nonces moved
    # one contribution per participant; the round fills up
    chain.ok(t0.tx("commit_contribution", commit_body(1, "a")))
    assert codes(chain.block(t0.tx("commit_contribution", commit_body(1, "b")))) == [Code.ALREADY_EXISTS]
    chain.ok(t1.tx("commit_contribution", commit_body(1, "c")))
    # the round is full (and t2 was not among the 2 drawn anyway)
    assert codes(chain.block(t2.tx("commit_contribution", commit_body(1, "d")))) == [Code.ROUND_FULL]
    # propose before close; a non-aggregator proposes; a contributor who did not contribute
    prop = {"task_id": TASK, "round": 1, **model_ref("v1"), "contributors": sorted([t0.hex, t1.hex])}
    assert codes(chain.block(agg.tx("propose_version", prop))) == [Code.WRONG_STATE]
    chain.ok(t3.tx("close_round", {"task_id": TASK, "round": 1}))
    assert codes(chain.block(owner.tx("propose_version", prop))) == [Code.UNAUTHORIZED]
    stranger = dict(prop, contributors=sorted([t0.hex, t2.hex]))
    assert codes(chain.block(agg.tx("propose_version", stranger))) == [Code.NOT_FOUND]
    unsorted = dict(prop, contributors=sorted([t0.hex, t1.hex], reverse=True))
    assert codes(chain.block(agg.tx("propose_version", unsorted))) == [Code.INVALID_BODY]
    chain.ok(agg.tx("propose_version", prop))


def test_deadline_closes_commits_and_too_few_fails_round(chain: Chain) -> None:
    owner, agg, trainers = setup_task(chain, round_size=3, min_contributions=2, deadline=2)
    chain.ok(agg.tx("open_round", {"task_id": TASK, "round": 1}))
    opened = chain.height
    # not full, before the deadline: cannot close yet
    assert codes(chain.block(agg.tx("close_round", {"task_id": TASK, "round": 1}))) == [Code.WRONG_STATE]
    chain.ok(trainers[0].tx("commit_contribution", commit_body(1, "a")))
    while chain.height <= opened + 2:
        chain.block()
    assert codes(chain.block(trainers[1].tx("commit_contribution", commit_body(1, "b")))) == [Code.DEADLINE]
    results = chain.ok(agg.tx("close_round", {"task_id": TASK, "round": 1}))
    assert ("status", "failed") in results[0].events[0].attributes
    # a failed round lets the next round open, from the same base version
    chain.ok(agg.tx("open_round", {"task_id": TASK, "round": 2}))
    assert query(chain, f"/round/{TASK}/2")["base_version"] == 0


def test_nonces_replay_and_gap(chain: Chain) -> None:
    s = Signer(1)
    first = s.admit("trainer")
    chain.ok(first)
    assert codes(chain.block(first)) == [Code.NONCE_REPLAY]  # the very same bytes again
    assert codes(chain.block(s.tx("open_round", {"task_id": "x", "round": 1}, nonce=5))) == [Code.NONCE_GAP]
    # CheckTx tracks nonces of txs already in the mempool, so a sender can queue several.
    a = s.tx("open_round", {"task_id": "x", "round": 1})
    b = s.tx("open_round", {"task_id": "x", "round": 1})
    assert chain.sm.check_tx(a).code == Code.NOT_FOUND  # stateful check runs too: task x does not exist
    assert chain.sm.check_tx(b).code == Code.NONCE_GAP  # a was refused, so b skips ahead
    ok1 = s.tx("admit", {"credential": credential(s.key, "trainer")}, nonce=2)
    assert chain.sm.check_tx(ok1).code == Code.ALREADY_EXISTS


def test_mempool_accepts_a_burst_from_one_signer(chain: Chain) -> None:
    owner, agg, trainers = setup_task(chain)
    chain.ok(agg.tx("open_round", {"task_id": TASK, "round": 1}))
    t = trainers[0]
    commit = t.tx("commit_contribution", commit_body(1, "a"))
    close = t.tx("close_round", {"task_id": TASK, "round": 1})
    assert chain.sm.check_tx(commit).code == 0
    # nonce is fine (mempool view); the stateful check still says the round cannot close yet
    assert chain.sm.check_tx(close).code == Code.WRONG_STATE


def test_query_proofs_verify_against_app_hash(chain: Chain) -> None:
    setup_task(chain)
    res = chain.sm.query(f"/task/{TASK}", b"", True)
    assert res.code == 0 and res.proof
    from fedledger.abci_app.store import Proof

    verify_proof(chain.sm.app_hash, res.key, res.value, Proof.decode(res.proof))
    with pytest.raises(ProofError):
        verify_proof(chain.sm.app_hash, res.key, res.value.replace(b"mlp", b"cnn"), Proof.decode(res.proof))
    missing = chain.sm.query("/task/none", b"", False)
    assert missing.code == Code.QUERY_NOT_FOUND
    assert chain.sm.query("/../etc", b"", False).code == Code.BAD_QUERY


def test_same_blocks_give_same_app_hash(chain: Chain) -> None:
    from fedledger.abci_app.store import CommittedStore

    other = Chain(CommittedStore(":memory:"))
    for c in (chain, other):
        setup_task(c)
    assert chain.sm.app_hash == other.sm.app_hash


def test_aggregator_can_fail_a_closed_round(chain: Chain) -> None:
    owner, agg, trainers = setup_task(chain, round_size=1, min_contributions=1)
    chain.ok(agg.tx("open_round", {"task_id": TASK, "round": 1}))
    fail = {"task_id": TASK, "round": 1, "reason": "no payload verified"}
    assert codes(chain.block(agg.tx("fail_round", fail))) == [Code.WRONG_STATE]  # still open
    chain.ok(trainers[0].tx("commit_contribution", commit_body(1, "a")))
    chain.ok(agg.tx("close_round", {"task_id": TASK, "round": 1}))
    assert codes(chain.block(owner.tx("fail_round", fail))) == [Code.UNAUTHORIZED]
    chain.ok(agg.tx("fail_round", fail))
    assert query(chain, f"/round/{TASK}/1")["status"] == "failed"
    chain.ok(agg.tx("open_round", {"task_id": TASK, "round": 2}))


def test_checktx_rate_limits_one_signer(chain: Chain) -> None:
    from fedledger.abci_app.state_machine import MAX_PENDING

    owner, agg, trainers = setup_task(chain, round_size=1, min_contributions=1)
    chain.ok(agg.tx("open_round", {"task_id": TASK, "round": 1}))
    chain.ok(trainers[0].tx("commit_contribution", commit_body(1, "a")))
    # The round is full, so close_round passes CheckTx's state check every time: each one is accepted
    # into the mempool and the signer's pending count grows until the limit.
    t = owner
    seen = [chain.sm.check_tx(t.tx("close_round", {"task_id": TASK, "round": 1})).code
            for _ in range(MAX_PENDING + 1)]
    assert seen[:MAX_PENDING] == [Code.OK] * MAX_PENDING
    assert seen[MAX_PENDING] == Code.RATE_LIMITED
    chain.block()  # a commit resets the mempool view; the signer may send again
    assert chain.sm.check_tx(t.tx("close_round", {"task_id": TASK, "round": 1}, nonce=3)).code == Code.OK


def test_selection_draws_round_size_from_the_block_hash(chain: Chain) -> None:
    owner, agg, trainers = setup_task(chain, round_size=2, min_contributions=1, n_trainers=4)
    # One trainer opts out; it must never be drawn.
    chain.ok(trainers[3].tx("declare_availability", {"task_id": TASK, "available": False}))
    chain.ok(agg.tx("open_round", {"task_id": TASK, "round": 1}))
    rnd = query(chain, f"/round/{TASK}/1")
    assert len(rnd["selected"]) == 2 and trainers[3].hex not in rnd["selected"]
    # Anyone can recompute it: the same draw from the same state and block hash.
    from fedledger.abci_app.context import BlockContext
    from fedledger.abci_app.modules.federation.selection import eligible
    from fedledger.abci_app.modules.reputation.selection import select

    pool = eligible(chain.store, TASK, BlockContext(chain.height + 1, chain.height * 10**9, b"", "test-chain"))
    assert sorted(k for _, k, ok in pool if not ok) == [trainers[3].hex]
    import hashlib

    seed = hashlib.sha256(b"%d" % rnd["opened_height"]).digest()  # tests.support's block hash
    by_did = {did: key for did, key, _ in pool}
    drawn = select([(did, 1_000_000, ok) for did, _, ok in pool], seed, 2)
    assert sorted(by_did[d] for d in drawn) == rnd["selected"]
    outsider = next(t for t in trainers if t.hex not in rnd["selected"])
    assert codes(chain.block(outsider.tx("commit_contribution", commit_body(1, "x")))) == [Code.NOT_SELECTED]
    insider = next(t for t in trainers if t.hex in rnd["selected"])
    chain.ok(insider.tx("commit_contribution", commit_body(1, "y")))


def test_aggregation_moves_reputation(chain: Chain) -> None:
    from fedledger.abci_app.did.didkey import did_from_private_key

    owner, agg, trainers = setup_task(chain, round_size=3, min_contributions=1)
    chain.ok(agg.tx("open_round", {"task_id": TASK, "round": 1}))
    chain.ok(*[t.tx("commit_contribution", commit_body(1, f"u{i}")) for i, t in enumerate(trainers[:3])])
    chain.ok(agg.tx("close_round", {"task_id": TASK, "round": 1}))
    kept = sorted(t.hex for t in trainers[:2])
    bad = trainers[2].hex
    chain.ok(agg.tx("propose_version", {"task_id": TASK, "round": 1, **model_ref("v1"), "contributors": kept,
                                        "dropped": [{"participant": bad, "reason": "hash_mismatch"}]}))
    scores = {t.hex: query(chain, f"/reputation/{did_from_private_key(t.key)}")["score"] for t in trainers[:3]}
    assert scores[kept[0]] > 1_000_000 and scores[kept[1]] > 1_000_000
    assert scores[bad] < 1_000_000
    version = query(chain, f"/version/{TASK}/1")
    assert version["dropped"] == [{"participant": bad, "reason": "hash_mismatch"}]
