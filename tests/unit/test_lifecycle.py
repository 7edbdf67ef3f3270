"""The model-version lifecycle driven through the state machine: attestations, quorum, promotion, rollback."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedledger.abci_app.canonical import canonical_bytes
from fedledger.abci_app.context import BlockContext, Event, Reader, Writer
from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.base import Module, Route
from fedledger.abci_app.modules.lifecycle.decisions import check_rollback, rollback, set_task_params, weighted_median
from fedledger.abci_app.modules.lifecycle.params import check_task_params, parse_params
from fedledger.abci_app.modules.lifecycle.pointer import last_good
from fedledger.abci_app.modules.registry import DEFAULT_MODULES
from fedledger.abci_app.modules.reputation.hooks import score_at
from fedledger.abci_app.state_machine import StateMachine
from fedledger.abci_app.store import CommittedStore
from tests.support import CHAIN, DP, ORG, POLICY, Chain, Signer, genesis, model_ref

TASK = "digits"
GOOD = {"canary_accuracy_ppm": 900_000, "backdoor_asr_ppm": 20_000}
BACKDOORED = {"canary_accuracy_ppm": 880_000, "backdoor_asr_ppm": 950_000}
INACCURATE = {"canary_accuracy_ppm": 150_000, "backdoor_asr_ppm": 10_000}
METRICS = "ab" * 32


# ----------------------------------------------------------------------------- a stand-in for governance

def _gov_rollback(view: Reader, state: Writer | None, ctx: BlockContext, signer: str, msg: Any) -> list[Event]:
    check_rollback(view, msg["task_id"], msg["to_version"])
    return rollback(state, msg["task_id"], msg["to_version"], ctx.height) if state is not None else []


def _gov_params(view: Reader, state: Writer | None, ctx: BlockContext, signer: str, msg: Any) -> list[Event]:
    check_task_params(view, msg["task_id"], msg["params"])
    return set_task_params(state, msg["task_id"], msg["params"], ctx.height) if state is not None else []


# Governance proper calls rollback / set_task_params from its own handlers; these routes do the same
# so the tests drive them through blocks (check, then execute) without depending on that module.
TEST_GOV = Module(name="test_gov", routes={"test_rollback": Route(parse=lambda b: b, handle=_gov_rollback),
                                           "test_params": Route(parse=lambda b: b, handle=_gov_params)})


class LcChain(Chain):
    """tests.support.Chain with the test governance module added."""

    def __init__(self, store: CommittedStore, app_state: bytes | None = None) -> None:
        self.store = store
        self.sm = StateMachine(store, CHAIN, modules=(*DEFAULT_MODULES, TEST_GOV))
        self.sm.init_chain(CHAIN, genesis() if app_state is None else app_state)
        self.height = 0


@pytest.fixture
def lc() -> Any:
    store = CommittedStore(":memory:")
    try:
        yield LcChain(store)
    finally:
        store.close()


class World:
    """An owner, an aggregator, two trainers and some evaluators on a task with proposed versions."""

    def __init__(self, chain: Chain, versions: int = 1, evaluators: int = 3) -> None:
        self.chain = chain
        self.owner, self.agg = Signer(10), Signer(11)
        self.trainers = [Signer(20 + i) for i in range(2)]
        self.evals = [Signer(40 + i) for i in range(evaluators)]
        chain.ok(self.owner.admit("validator-admin"), self.agg.admit("aggregator"),
                 *[t.admit("trainer") for t in self.trainers], *[e.admit("evaluator") for e in self.evals])
        chain.ok(self.owner.tx("create_task", {
            "task_id": TASK, "model_spec": "mlp-digits", "round_size": 2, "min_contributions": 1,
            "deadline_blocks": 30, "aggregator": self.agg.hex, "initial_model": model_ref("v0"), "privacy": POLICY}))
        for _ in range(versions):
            self.propose()

    def propose(self) -> int:
        """Run one round (open, two commits, close) and propose its version; returns the version number."""
        number = query(self.chain, f"/task/{TASK}")["current_round"] + 1
        self.chain.ok(self.agg.tx("open_round", {"task_id": TASK, "round": number}))
        base = query(self.chain, f"/round/{TASK}/{number}")["base_version"]
        self.chain.ok(*[t.tx("commit_contribution", {
            "task_id": TASK, "round": number, "base_version": base, "num_examples": 10, "dp": DP,
            **model_ref(f"u{number}-{i}")}) for i, t in enumerate(self.trainers)])
        self.chain.ok(self.agg.tx("close_round", {"task_id": TASK, "round": number}))
        results = self.chain.ok(self.agg.tx("propose_version", {
            "task_id": TASK, "round": number, **model_ref(f"v{number}"),
            "contributors": sorted(t.hex for t in self.trainers)}))
        return int(dict(results[0].events[0].attributes)["version"])

    def attest(self, who: Signer, version: int, metrics: dict[str, int]) -> Any:
        return who.tx("attest_version", {"task_id": TASK, "version": version, "metrics_sha256": METRICS, **metrics})


def query(chain: Chain, path: str) -> Any:
    res = chain.sm.query(path, b"", False)
    assert res.code == 0, res.log
    return json.loads(res.value)


def codes(results: list[Any]) -> list[int]:
    return [r.code for r in results]


def status(chain: Chain, version: int) -> str:
    result: str = query(chain, f"/version/{TASK}/{version}")["status"]
    return result


def pointer(chain: Chain) -> int:
    result: int = query(chain, f"/lifecycle/{TASK}")["last_good"]
    return result


# ----------------------------------------------------------------------------- attestations

def test_only_enrolled_evaluators_attest(chain: Chain) -> None:
    w = World(chain)
    stranger = Signer(99)  # never enrolled
    for who in (w.trainers[0], w.agg, w.owner, stranger):
        assert codes(chain.block(w.attest(who, 1, GOOD))) == [Code.UNAUTHORIZED]
    assert query(chain, f"/attestations/{TASK}/1") == []


def test_evaluator_credential_limited_to_other_tasks_is_refused(chain: Chain) -> None:
    w = World(chain)
    narrow = Signer(60)
    chain.ok(narrow.admit("evaluator", tasks=["other-task"]))
    assert codes(chain.block(w.attest(narrow, 1, GOOD))) == [Code.UNAUTHORIZED]


def test_duplicate_attestation_rejected(chain: Chain) -> None:
    w = World(chain)
    chain.ok(w.attest(w.evals[0], 1, GOOD))
    assert codes(chain.block(w.attest(w.evals[0], 1, BACKDOORED))) == [Code.ALREADY_EXISTS]
    # the same evaluator twice in one block: the second sees the first in the block's working state
    assert codes(chain.block(w.attest(w.evals[1], 1, GOOD), w.attest(w.evals[1], 1, GOOD))) == [0, Code.VERSION_DECIDED]
    atts = query(chain, f"/attestations/{TASK}/1")
    assert [a["canary_accuracy_ppm"] for a in atts] == [GOOD["canary_accuracy_ppm"]] * 2


def test_body_schema_and_missing_objects(chain: Chain) -> None:
    w = World(chain)
    e = w.evals[0]
    bad = [
        {"task_id": TASK, "version": 1, "metrics_sha256": METRICS, "canary_accuracy_ppm": 1_000_001,
         "backdoor_asr_ppm": 0},
        {"task_id": TASK, "version": 1, "metrics_sha256": METRICS, "canary_accuracy_ppm": 5, "backdoor_asr_ppm": -1},
        {"task_id": TASK, "version": 1, "metrics_sha256": "XY", **GOOD},
        {"task_id": TASK, "version": True, "metrics_sha256": METRICS, **GOOD},
        {"task_id": TASK, "version": 1, **GOOD},
    ]
    for body in bad:
        assert codes(chain.block(e.tx("attest_version", body))) == [Code.INVALID_BODY]
    assert codes(chain.block(w.attest(e, 7, GOOD))) == [Code.NOT_FOUND]
    assert codes(chain.block(e.tx("attest_version", {"task_id": "nope", "version": 1, "metrics_sha256": METRICS,
                                                     **GOOD}))) == [Code.NOT_FOUND]
    # version 0 is the initial model: good by definition, never attested
    assert codes(chain.block(w.attest(e, 0, GOOD))) == [Code.VERSION_DECIDED]


def test_check_tx_writes_nothing(chain: Chain) -> None:
    w = World(chain)
    before = chain.sm.app_hash
    assert chain.sm.check_tx(w.attest(w.evals[0], 1, GOOD)).code == 0
    assert chain.sm.app_hash == before
    assert query(chain, f"/attestations/{TASK}/1") == []


# ----------------------------------------------------------------------------- quorum and decisions

def test_quorum_promotes_on_good_metrics(chain: Chain) -> None:
    w = World(chain)
    res = chain.ok(w.attest(w.evals[0], 1, GOOD))
    assert [e.type for e in res[0].events] == ["fl"]  # one attestation is below the quorum of two
    assert status(chain, 1) == "proposed" and pointer(chain) == 0
    res = chain.ok(w.attest(w.evals[1], 1, {"canary_accuracy_ppm": 800_000, "backdoor_asr_ppm": 30_000}))
    actions = [dict(e.attributes).get("action") for e in res[0].events if e.type == "fl"]
    assert actions == ["attest_version", "decide_version"]
    rec = query(chain, f"/version/{TASK}/1")
    assert rec["status"] == "promoted" and rec["decided_height"] == chain.height
    d = rec["decision"]
    # two equal weights split exactly in half: the side less favourable to promotion is taken
    assert d["canary_accuracy_ppm"] == 800_000 and d["backdoor_asr_ppm"] == 30_000
    assert d["attestations"] == 2 and d["weight"] == 2_000_000 and d["reasons"] == []
    assert d["evaluators"] == sorted(did_from_private_key(e.key) for e in w.evals[:2])
    life = query(chain, f"/lifecycle/{TASK}")
    assert life["last_good"] == 1 and life["last_good_height"] == chain.height
    assert [(h["seq"], h["action"], h["version"]) for h in life["history"]] == [(1, "promoted", 1)]
    assert life["params"] == {"quorum_weight": 2_000_000, "min_canary_accuracy_ppm": 500_000,
                              "max_backdoor_asr_ppm": 200_000, "max_regression_ppm": 1_000_000}


def test_quorum_quarantines_on_failed_probe(chain: Chain) -> None:
    w = World(chain)
    chain.ok(w.attest(w.evals[0], 1, BACKDOORED), w.attest(w.evals[1], 1, BACKDOORED))
    rec = query(chain, f"/version/{TASK}/1")
    assert rec["status"] == "quarantined"
    assert rec["decision"]["reasons"] == ["backdoor_asr_above_max"]
    assert pointer(chain) == 0


def test_quorum_quarantines_on_low_accuracy(chain: Chain) -> None:
    w = World(chain)
    chain.ok(w.attest(w.evals[0], 1, INACCURATE), w.attest(w.evals[1], 1, INACCURATE))
    assert query(chain, f"/version/{TASK}/1")["decision"]["reasons"] == ["canary_accuracy_below_min"]
    assert pointer(chain) == 0


def test_median_resists_one_lying_evaluator(lc: LcChain) -> None:
    w = World(lc, versions=2)
    lc.ok(w.owner.tx("test_params", {"task_id": TASK, "params": {"quorum_weight": 3_000_000}}))
    # one evaluator claims a backdoor on v1, the two others measured a clean model: the median wins
    lc.ok(w.attest(w.evals[0], 1, BACKDOORED), w.attest(w.evals[1], 1, GOOD), w.attest(w.evals[2], 1, GOOD))
    assert status(lc, 1) == "promoted"
    # ...and one evaluator vouching for a backdoored v2 does not save it
    lc.ok(w.attest(w.evals[0], 2, GOOD), w.attest(w.evals[1], 2, BACKDOORED), w.attest(w.evals[2], 2, BACKDOORED))
    assert status(lc, 2) == "quarantined"
    assert pointer(lc) == 1


def test_decided_versions_refuse_attestations(chain: Chain) -> None:
    w = World(chain, versions=2)
    chain.ok(w.attest(w.evals[0], 1, GOOD), w.attest(w.evals[1], 1, GOOD))
    chain.ok(w.attest(w.evals[0], 2, BACKDOORED), w.attest(w.evals[1], 2, BACKDOORED))
    for version in (1, 2):
        res = chain.block(w.attest(w.evals[2], version, GOOD))
        assert codes(res) == [Code.VERSION_DECIDED], res[0].log
    assert len(query(chain, f"/attestations/{TASK}/1")) == 2


def test_weighted_median_rules() -> None:
    assert weighted_median([(5, 1)], upper=False) == 5
    assert weighted_median([(10, 1), (20, 1)], upper=False) == 10
    assert weighted_median([(10, 1), (20, 1)], upper=True) == 20
    assert weighted_median([(30, 1), (10, 1), (20, 1)], upper=False) == 20
    assert weighted_median([(30, 1), (10, 1), (20, 1)], upper=True) == 20
    # weight, not head count: one heavy evaluator outweighs two light ones
    assert weighted_median([(10, 1), (20, 1), (90, 3)], upper=False) == 90
    assert weighted_median([(10, 2), (90, 1), (95, 1)], upper=False) == 10
    assert weighted_median([(10, 2), (90, 1), (95, 1)], upper=True) == 90
    assert weighted_median([(10, 0), (90, 1)], upper=False) == 90  # zero weight does not count
    with pytest.raises(ValueError, match="no positive weight"):
        weighted_median([(10, 0)], upper=False)


def test_attestation_weight_is_reputation_and_outcome_moves_contributors(chain: Chain) -> None:
    w = World(chain, versions=2)
    chain.ok(w.attest(w.evals[0], 1, GOOD), w.attest(w.evals[1], 1, GOOD))
    atts = query(chain, f"/attestations/{TASK}/1")
    assert [a["weight"] for a in atts] == [score_at(chain.store, a["evaluator"], chain.height) for a in atts]
    assert atts[0]["weight"] == 1_000_000
    dids = [did_from_private_key(t.key) for t in w.trainers]
    after_promotion = [score_at(chain.store, d, chain.height) for d in dids]
    assert all(s > 1_000_000 for s in after_promotion)  # contributors of a promoted version gain
    chain.ok(w.attest(w.evals[0], 2, BACKDOORED), w.attest(w.evals[1], 2, BACKDOORED))
    after_quarantine = [score_at(chain.store, d, chain.height) for d in dids]
    assert all(a < b for a, b in zip(after_quarantine, after_promotion, strict=True))


# ----------------------------------------------------------------------------- last good and rollback

def test_last_good_moves_only_on_promotion(chain: Chain) -> None:
    w = World(chain, versions=3)
    assert last_good(chain.store, TASK) == 0
    chain.ok(w.attest(w.evals[0], 1, GOOD))
    assert pointer(chain) == 0 and status(chain, 1) == "proposed"  # below quorum: nothing decided
    chain.ok(w.attest(w.evals[0], 2, GOOD), w.attest(w.evals[1], 2, GOOD))
    assert pointer(chain) == 2
    chain.ok(w.attest(w.evals[0], 3, BACKDOORED), w.attest(w.evals[1], 3, BACKDOORED))
    assert pointer(chain) == 2  # a quarantine leaves it alone
    # v1 is promoted after v2: the pointer never goes back to an older version
    chain.ok(w.attest(w.evals[1], 1, GOOD))
    assert status(chain, 1) == "promoted" and pointer(chain) == 2
    history = query(chain, f"/lifecycle/{TASK}")["history"]
    assert [(h["action"], h["version"], h["last_good_after"]) for h in history] == [
        ("promoted", 2, 2), ("quarantined", 3, 2), ("promoted", 1, 2)]
    assert last_good(chain.store, TASK) == 2


def rollback_tx(w: World, to_version: int | None) -> bytes:
    return w.owner.tx("test_rollback", {"task_id": TASK, "to_version": to_version})


def run_rollback_scenario(chain: LcChain) -> list[tuple[int, dict[str, str]]]:
    w = World(chain, versions=3)
    # decided newest first, so no version is judged after its parent went bad (see the parent rule)
    chain.ok(w.attest(w.evals[0], 3, GOOD), w.attest(w.evals[1], 3, GOOD))
    chain.ok(w.attest(w.evals[0], 2, INACCURATE), w.attest(w.evals[1], 2, INACCURATE))
    chain.ok(w.attest(w.evals[0], 1, GOOD), w.attest(w.evals[1], 1, GOOD))
    assert pointer(chain) == 3
    chain.ok(rollback_tx(w, None))
    assert pointer(chain) == 1  # v2 was quarantined, so the previous good version is v1
    assert [status(chain, v) for v in (1, 2, 3)] == ["promoted", "quarantined", "rolled_back"]
    assert query(chain, f"/version/{TASK}/3")["rolled_back_height"] == chain.height
    chain.ok(rollback_tx(w, None))
    assert pointer(chain) == 0 and status(chain, 1) == "rolled_back"
    res = chain.block(rollback_tx(w, None))
    assert codes(res) == [Code.ROLLBACK_REFUSED] and "initial model" in res[0].log
    # versions are never renumbered: the next proposal is v4, and rolled-back versions refuse attestations
    assert query(chain, f"/task/{TASK}")["latest_version"] == 3
    assert w.propose() == 4
    assert codes(chain.block(w.attest(w.evals[2], 3, GOOD))) == [Code.VERSION_DECIDED]
    history = query(chain, f"/lifecycle/{TASK}")["history"]
    return [(h["seq"], {k: str(v) for k, v in h.items() if k != "decision"}) for h in history]


def test_rollback_restores_previous_good_deterministically() -> None:
    runs = []
    for _ in range(2):
        store = CommittedStore(":memory:")
        try:
            chain = LcChain(store)
            history = run_rollback_scenario(chain)
            runs.append((chain.sm.app_hash, history))
        finally:
            store.close()
    assert runs[0] == runs[1]  # same txs, same state: rollback depends on nothing else
    assert [h["action"] for _, h in runs[0][1]] == ["promoted", "quarantined", "promoted", "rolled_back",
                                                     "rolled_back"]
    assert [h.get("versions") for _, h in runs[0][1]][3:] == ["[3]", "[1]"]


def test_rollback_to_a_named_version(lc: LcChain) -> None:
    w = World(lc, versions=4)
    for v in (1, 3, 4):
        lc.ok(w.attest(w.evals[0], v, GOOD), w.attest(w.evals[1], v, GOOD))
    lc.ok(w.attest(w.evals[0], 2, BACKDOORED), w.attest(w.evals[1], 2, BACKDOORED))
    refusals = {2: Code.ROLLBACK_REFUSED, 4: Code.ROLLBACK_REFUSED, 9: Code.ROLLBACK_REFUSED, -1: Code.INVALID_BODY}
    for target, code in refusals.items():
        res = lc.block(rollback_tx(w, target))
        assert codes(res) == [code], (target, res[0].log)
    assert pointer(lc) == 4
    res = lc.ok(rollback_tx(w, 1))
    attrs = dict(res[0].events[0].attributes)
    assert attrs["action"] == "rollback" and attrs["versions"] == "3,4" and attrs["last_good"] == "1"
    assert [status(lc, v) for v in (1, 2, 3, 4)] == ["promoted", "quarantined", "rolled_back", "rolled_back"]
    assert pointer(lc) == 1
    lc.ok(rollback_tx(w, 0))
    assert pointer(lc) == 0 and status(lc, 1) == "rolled_back"


def test_rollback_check_against_store_directly(chain: Chain) -> None:
    World(chain)
    with pytest.raises(TxError) as info:
        check_rollback(chain.store, TASK, None)
    assert info.value.code == Code.ROLLBACK_REFUSED
    with pytest.raises(TxError) as info:
        check_rollback(chain.store, "nope", None)
    assert info.value.code == Code.NOT_FOUND


def test_child_of_a_rolled_back_version_is_quarantined(lc: LcChain) -> None:
    w = World(lc, versions=1)
    lc.ok(w.attest(w.evals[0], 1, GOOD), w.attest(w.evals[1], 1, GOOD))
    assert w.propose() == 2  # trained from v1
    assert query(lc, f"/version/{TASK}/2")["parent"] == 1
    lc.ok(rollback_tx(w, None))
    lc.ok(w.attest(w.evals[0], 2, GOOD), w.attest(w.evals[1], 2, GOOD))
    rec = query(lc, f"/version/{TASK}/2")
    assert rec["status"] == "quarantined" and rec["decision"]["reasons"] == ["parent_rolled_back"]
    assert pointer(lc) == 0


# ----------------------------------------------------------------------------- params

def test_params_from_genesis_and_governance() -> None:
    store = CommittedStore(":memory:")
    try:
        app_state = json.loads(genesis())
        app_state["lifecycle"] = {"quorum_weight": 1_000_000, "max_backdoor_asr_ppm": 50_000}
        chain = LcChain(store, canonical_bytes(app_state))
        w = World(chain, versions=2)
        assert query(chain, f"/lifecycle/{TASK}")["params"] == {
            "quorum_weight": 1_000_000, "min_canary_accuracy_ppm": 500_000, "max_backdoor_asr_ppm": 50_000,
            "max_regression_ppm": 1_000_000}
        # one evaluator is a quorum now; ASR 60_000 is over this chain's stricter threshold
        chain.ok(w.attest(w.evals[0], 2, {"canary_accuracy_ppm": 900_000, "backdoor_asr_ppm": 60_000}))
        assert status(chain, 2) == "quarantined"
        bad = w.owner.tx("test_params", {"task_id": TASK, "params": {"quorum_weight": 0}})
        assert codes(chain.block(bad)) == [Code.INVALID_BODY]
        bad = w.owner.tx("test_params", {"task_id": TASK, "params": {"quorum": 5}})
        assert codes(chain.block(bad)) == [Code.INVALID_BODY]
        bad = w.owner.tx("test_params", {"task_id": "nope", "params": {"quorum_weight": 5}})
        assert codes(chain.block(bad)) == [Code.NOT_FOUND]
        chain.ok(w.owner.tx("test_params", {"task_id": TASK, "params": {"max_backdoor_asr_ppm": 100_000}}))
        chain.ok(w.attest(w.evals[0], 1, {"canary_accuracy_ppm": 900_000, "backdoor_asr_ppm": 60_000}))
        assert status(chain, 1) == "promoted"
    finally:
        store.close()


def test_bad_genesis_section_halts_init() -> None:
    store = CommittedStore(":memory:")
    try:
        app_state = json.loads(genesis())
        app_state["lifecycle"] = {"quorum_weight": "two"}
        with pytest.raises(ValueError, match="genesis section 'lifecycle'"):
            LcChain(store, canonical_bytes(app_state))
    finally:
        store.close()


def test_lowering_the_quorum_decides_pending_versions(lc: LcChain) -> None:
    w = World(lc, versions=2)
    lc.ok(w.owner.tx("test_params", {"task_id": TASK, "params": {"quorum_weight": 3_000_000}}))
    lc.ok(w.attest(w.evals[0], 1, GOOD), w.attest(w.evals[1], 1, GOOD), w.attest(w.evals[0], 2, GOOD))
    assert status(lc, 1) == "proposed"
    res = lc.ok(w.owner.tx("test_params", {"task_id": TASK, "params": {"quorum_weight": 2_000_000}}))
    actions = [dict(e.attributes)["action"] for e in res[0].events if e.type == "fl"]
    assert actions == ["set_lifecycle_params", "decide_version"]
    assert status(lc, 1) == "promoted" and status(lc, 2) == "proposed" and pointer(lc) == 1


def test_parse_params_messages() -> None:
    assert parse_params({"quorum_weight": 7}) == {"quorum_weight": 7}
    for body, text in (({}, "missing"), ({"x": 1}, "unknown"), ({"max_backdoor_asr_ppm": 2_000_000}, "integer"),
                       ([1], "object")):
        with pytest.raises(TxError, match=text):
            parse_params(body)
    with pytest.raises(TxError, match="missing"):
        parse_params({"quorum_weight": 7}, partial=False)


def test_queries(chain: Chain) -> None:
    w = World(chain)
    chain.ok(w.attest(w.evals[1], 1, GOOD))
    atts = query(chain, f"/attestations/{TASK}/1")
    assert [a["evaluator"] for a in atts] == [did_from_private_key(w.evals[1].key)]
    assert atts[0]["signer"] == w.evals[1].hex and atts[0]["organization"] == ORG
    assert atts[0]["metrics_sha256"] == METRICS and atts[0]["height"] == chain.height
    for path, code in (("/attestations/digits/9", Code.QUERY_NOT_FOUND), ("/attestations/digits", Code.BAD_QUERY),
                       ("/attestations/digits/x", Code.BAD_QUERY), ("/lifecycle/nope", Code.QUERY_NOT_FOUND),
                       ("/lifecycle", Code.BAD_QUERY)):
        assert chain.sm.query(path, b"", False).code == code, path


# ----------------------------------------------------------------------------- property: last_good is always good

_OPS = st.lists(st.one_of(
    st.tuples(st.just("attest"), st.integers(0, 2), st.integers(1, 3), st.sampled_from([GOOD, BACKDOORED, INACCURATE])),
    st.tuples(st.just("rollback"), st.sampled_from([None, 0, 1, 2, 3]), st.just(0), st.just(GOOD)),
), min_size=1, max_size=14)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=_OPS)
def test_last_good_always_points_at_a_promoted_version(ops: list[tuple[Any, ...]]) -> None:
    store = CommittedStore(":memory:")
    try:
        chain = LcChain(store)
        w = World(chain, versions=3)
        for op in ops:
            if op[0] == "attest":
                _, who, version, metrics = op
                chain.block(w.attest(w.evals[who], version, metrics))
            else:
                chain.block(rollback_tx(w, op[1]))
            versions = query(chain, f"/versions/{TASK}")
            promoted = [v["version"] for v in versions if v["status"] == "promoted"]
            good = pointer(chain)
            assert good == last_good(chain.store, TASK)
            assert good == 0 or status(chain, good) == "promoted"
            assert good == max(promoted, default=0)  # the latest promoted version, never a stale one
            assert query(chain, f"/task/{TASK}")["latest_version"] == 3  # numbering never moves
            for v in versions:  # a decided status always comes with its decision
                assert (v["status"] in ("initial", "proposed")) == ("decision" not in v)
    finally:
        store.close()
