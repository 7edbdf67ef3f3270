"""The chain side of SecAgg+: stages, rosters, survivors and every refusal, on an in-memory chain."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from fedledger.abci_app.errors import Code
from fedledger.abci_app.store import CommittedStore
from tests.support import DP, POLICY, Chain, Signer, model_ref

TASK = "sec"
SECURE = {"rule": "median", "byzantine": 1, "secure": {"group_size": 2, "clip": "1.0", "stage_blocks": 3}}


def query(chain: Chain, path: str) -> Any:
    res = chain.sm.query(path, b"", False)
    assert res.code == 0, res.log
    return json.loads(res.value)


def pk(tag: int) -> str:
    return f"{tag:064x}"


class World:
    """An owner, an aggregator and six trainers on a secure task with one open round."""

    def __init__(self, chain: Chain, aggregation: dict[str, Any] | None = SECURE) -> None:
        self.chain = chain
        self.owner, self.agg = Signer(10), Signer(11)
        self.trainers = sorted((Signer(20 + i) for i in range(6)), key=lambda s: s.hex)
        chain.ok(self.owner.admit("validator-admin"), self.agg.admit("aggregator"),
                 *[t.admit("trainer") for t in self.trainers])
        body = {"task_id": TASK, "model_spec": "mlp-digits", "round_size": 6, "min_contributions": 3,
                "deadline_blocks": 5, "aggregator": self.agg.hex, "initial_model": model_ref("v0"),
                "privacy": POLICY}
        if aggregation is not None:
            body["aggregation"] = aggregation
        chain.ok(self.owner.tx("create_task", body))
        chain.ok(self.agg.tx("open_round", {"task_id": TASK, "round": 1}))

    def keys(self, who: list[Signer]) -> None:
        self.chain.ok(*[t.tx("secagg_keys", {"task_id": TASK, "round": 1, "c_pk": pk(2 * i + 1),
                                             "s_pk": pk(2 * i + 2)}) for i, t in enumerate(who)])

    def post(self, kind: str, who: list[Signer]) -> list[Any]:
        return self.chain.block(*[t.tx(kind, {"task_id": TASK, "round": 1, **model_ref(kind + t.hex)})
                                  for t in who])

    def advance(self) -> list[Any]:
        return self.chain.block(self.agg.tx("secagg_advance", {"task_id": TASK, "round": 1}))

    def commit(self, who: list[Signer]) -> list[Any]:
        return self.chain.block(*[t.tx("commit_contribution", {
            "task_id": TASK, "round": 1, "base_version": 0, "num_examples": 10, "dp": DP,
            **model_ref("masked" + t.hex)}) for t in who])

    def round(self) -> Any:
        return query(self.chain, f"/round/{TASK}/1")


@pytest.fixture
def chain() -> Iterator[Chain]:
    store = CommittedStore(":memory:")
    try:
        yield Chain(store)
    finally:
        store.close()


def test_full_secure_round_fixes_every_list_on_chain(chain: Chain) -> None:
    w = World(chain)
    t = w.trainers
    assert w.round()["secagg"]["stage"] == "keys"
    w.keys(t)
    assert w.advance()[0].code == 0
    sa = w.round()["secagg"]
    assert sa["stage"] == "shares" and sa["roster"] == sorted(x.hex for x in t) and len(sa["seed"]) == 64
    assert all(r.code == 0 for r in w.post("secagg_shares", t[:5]))  # t[5] drops before sharing
    assert w.advance()[0].code == Code.WRONG_STATE  # still waiting for t[5], not timed out
    for _ in range(3):
        chain.ok()
    assert w.advance()[0].code == 0
    sa = w.round()["secagg"]
    assert sa["stage"] == "input" and sa["sharers"] == sorted(x.hex for x in t[:5])
    assert [r.code for r in w.commit([t[5]])] == [Code.NOT_SELECTED]  # shared nothing: masks unrecoverable
    assert all(r.code == 0 for r in w.commit(t[:4]))  # t[4] drops mid-round
    close = chain.block(w.agg.tx("close_round", {"task_id": TASK, "round": 1}))
    assert close[0].code == Code.WRONG_STATE  # not all sharers committed, deadline not passed
    for _ in range(5):
        chain.ok()
    chain.ok(w.agg.tx("close_round", {"task_id": TASK, "round": 1}))
    assert w.round()["secagg"]["stage"] == "closed"
    survivors = sorted(x.hex for x in t[:4])
    bad = chain.block(w.agg.tx("secagg_survivors", {"task_id": TASK, "round": 1, "survivors": sorted(
        [*survivors, t[4].hex])}))
    assert bad[0].code == Code.NOT_FOUND  # t[4] committed nothing
    chain.ok(w.agg.tx("secagg_survivors", {"task_id": TASK, "round": 1, "survivors": survivors}))
    assert [r.code for r in w.post("secagg_unmask", [t[4]])] == [Code.NOT_SELECTED]
    assert all(r.code == 0 for r in w.post("secagg_unmask", t[:4]))
    board = query(chain, f"/secagg/{TASK}/1")
    assert sorted(board["keys"]) == sorted(x.hex for x in t) and sorted(board["unmask"]) == survivors
    outsider = chain.block(w.agg.tx("propose_version", {
        "task_id": TASK, "round": 1, **model_ref("v1"), "contributors": sorted([*survivors[:3], t[5].hex])}))
    assert outsider[0].code in (Code.INVALID_BODY, Code.NOT_FOUND)
    chain.ok(w.agg.tx("propose_version", {"task_id": TASK, "round": 1, **model_ref("v1"),
                                          "contributors": survivors}))
    assert w.round()["status"] == "aggregated"


def test_stage_order_is_enforced(chain: Chain) -> None:
    w = World(chain)
    t = w.trainers
    assert [r.code for r in w.post("secagg_shares", t[:1])] == [Code.WRONG_STATE]
    assert [r.code for r in w.commit(t[:1])] == [Code.WRONG_STATE]
    assert chain.block(w.agg.tx("close_round", {"task_id": TASK, "round": 1}))[0].code == Code.WRONG_STATE
    w.keys(t[:1])
    again = chain.block(t[0].tx("secagg_keys", {"task_id": TASK, "round": 1, "c_pk": pk(90), "s_pk": pk(91)}))
    assert again[0].code == Code.ALREADY_EXISTS
    copied = chain.block(t[1].tx("secagg_keys", {"task_id": TASK, "round": 1, "c_pk": pk(1), "s_pk": pk(92)}))
    assert copied[0].code == Code.ALREADY_EXISTS  # someone else's public key
    same = chain.block(t[2].tx("secagg_keys", {"task_id": TASK, "round": 1, "c_pk": pk(5), "s_pk": pk(5)}))
    assert same[0].code == Code.INVALID_BODY
    outsider = Signer(99)
    chain.ok(outsider.admit("trainer"))
    stranger = chain.block(outsider.tx("secagg_keys", {"task_id": TASK, "round": 1, "c_pk": pk(70), "s_pk": pk(71)}))
    assert stranger[0].code == Code.NOT_SELECTED


def test_too_few_keys_fails_the_round_and_the_next_one_opens(chain: Chain) -> None:
    w = World(chain)
    w.keys(w.trainers[:2])  # min_contributions is 3
    for _ in range(3):
        chain.ok()
    assert w.advance()[0].code == 0
    rnd = w.round()
    assert rnd["status"] == "failed" and "only 2" in rnd["failure"]
    chain.ok(w.agg.tx("open_round", {"task_id": TASK, "round": 2}))


def test_plaintext_task_has_no_secagg_stage(chain: Chain) -> None:
    w = World(chain, aggregation=None)
    assert "secagg" not in w.round()
    assert query(chain, f"/task/{TASK}")["aggregation"] == {"rule": "fedavg", "byzantine": 0, "secure": None}
    assert w.advance()[0].code == Code.WRONG_STATE
    assert [r.code for r in w.commit(w.trainers[:1])] == [0]


@pytest.mark.parametrize("aggregation, needle", [
    ({"rule": "mean"}, "aggregation.rule"),
    ({"rule": "median", "byzantine": -1}, "byzantine"),
    ({"rule": "median", "secure": {"group_size": 2}}, "missing ['clip']"),
    ({"rule": "median", "secure": {"group_size": 2, "clip": "1e3"}}, "clip"),
    ({"rule": "median", "secure": {"group_size": 2, "clip": "0.0"}}, "clip"),
    ({"rule": "median", "secure": {"group_size": 3, "clip": "1"}}, "at least 3 groups"),
    ({"rule": "fedavg", "secure": {"group_size": 2, "clip": "1", "threshold_pct": 40}}, "threshold_pct"),
    ({"rule": "fedavg", "extra": 1}, "unexpected ['extra']"),
    ("median", "aggregation must be an object"),
])
def test_bad_aggregation_policy_is_refused(chain: Chain, aggregation: Any, needle: str) -> None:
    owner, agg = Signer(10), Signer(11)
    chain.ok(owner.admit("validator-admin"), agg.admit("aggregator"))
    res = chain.block(owner.tx("create_task", {
        "task_id": TASK, "model_spec": "mlp-digits", "round_size": 6, "min_contributions": 3, "deadline_blocks": 5,
        "aggregator": agg.hex, "initial_model": model_ref("v0"), "privacy": POLICY, "aggregation": aggregation}))
    assert res[0].code == Code.INVALID_BODY and needle in res[0].log, res[0].log


def test_distributed_noise_policy_is_a_decimal_string(chain: Chain) -> None:
    owner, agg = Signer(10), Signer(11)
    chain.ok(owner.admit("validator-admin"), agg.admit("aggregator"))
    base = {"task_id": TASK, "model_spec": "mlp-digits", "round_size": 6, "min_contributions": 3,
            "deadline_blocks": 5, "aggregator": agg.hex, "initial_model": model_ref("v0"), "privacy": POLICY}
    bad = chain.block(owner.tx("create_task", {**base, "aggregation": {
        "rule": "median", "secure": {"group_size": 2, "clip": "1", "noise_multiplier": "-1"}}}))
    assert bad[0].code == Code.INVALID_BODY and "noise_multiplier" in bad[0].log
    chain.ok(owner.tx("create_task", {**base, "aggregation": {
        "rule": "median", "secure": {"group_size": 2, "clip": "1", "noise_multiplier": "1.1"}}}))
    assert query(chain, f"/task/{TASK}")["aggregation"]["secure"]["noise_multiplier"] == "1.1"


@pytest.mark.parametrize("compression, ok", [
    ({"method": "quant8"}, True), ({"method": "topk", "fraction_ppm": 10_000}, True),
    ({"method": "topk"}, False), ({"method": "zip"}, False), ({"method": "quant8", "bits": 4}, False),
])
def test_compression_policy(chain: Chain, compression: dict[str, Any], ok: bool) -> None:
    owner, agg = Signer(10), Signer(11)
    chain.ok(owner.admit("validator-admin"), agg.admit("aggregator"))
    res = chain.block(owner.tx("create_task", {
        "task_id": TASK, "model_spec": "mlp-digits", "round_size": 6, "min_contributions": 3, "deadline_blocks": 5,
        "aggregator": agg.hex, "initial_model": model_ref("v0"), "privacy": POLICY,
        "aggregation": {"rule": "fedavg", "compression": compression}}))
    assert (res[0].code == 0) == ok, res[0].log
    if ok:
        assert query(chain, f"/task/{TASK}")["aggregation"]["compression"] == compression
    secure = chain.block(owner.tx("create_task", {
        "task_id": "other", "model_spec": "mlp-digits", "round_size": 6, "min_contributions": 3, "deadline_blocks": 5,
        "aggregator": agg.hex, "initial_model": model_ref("v0"), "privacy": POLICY,
        "aggregation": {"rule": "fedavg", "compression": {"method": "quant8"},
                        "secure": {"group_size": 2, "clip": "1"}}}))
    assert secure[0].code == Code.INVALID_BODY and "plaintext" in secure[0].log


@pytest.mark.parametrize("aggregation, ok", [
    ({"rule": "fedavg", "central_noise": {"noise_multiplier": "1.1", "clip": "1"}}, True),
    ({"rule": "median", "central_noise": {"noise_multiplier": "1.1", "clip": "1"}}, False),
    ({"rule": "fedavg", "central_noise": {"noise_multiplier": "1.1"}}, False),
    ({"rule": "fedavg", "central_noise": {"noise_multiplier": "0", "clip": "1"}}, False),
    ({"rule": "fedavg", "secure": {"group_size": 2, "clip": "1"},
      "central_noise": {"noise_multiplier": "1", "clip": "1"}}, False),
])
def test_central_noise_policy(chain: Chain, aggregation: dict[str, Any], ok: bool) -> None:
    owner, agg = Signer(10), Signer(11)
    chain.ok(owner.admit("validator-admin"), agg.admit("aggregator"))
    res = chain.block(owner.tx("create_task", {
        "task_id": TASK, "model_spec": "mlp-digits", "round_size": 6, "min_contributions": 3, "deadline_blocks": 5,
        "aggregator": agg.hex, "initial_model": model_ref("v0"), "privacy": POLICY, "aggregation": aggregation}))
    assert (res[0].code == 0) == ok, res[0].log


def test_adaptive_clip_policy_and_next_clip(chain: Chain) -> None:
    owner, agg, t1 = Signer(10), Signer(11), Signer(20)
    chain.ok(owner.admit("validator-admin"), agg.admit("aggregator"), t1.admit("trainer"))
    base = {"model_spec": "mlp-digits", "round_size": 1, "min_contributions": 1, "deadline_blocks": 5,
            "aggregator": agg.hex, "initial_model": model_ref("v0"), "privacy": POLICY}
    weak = {"rule": "fedavg", "central_noise": {"noise_multiplier": "1", "clip": "1", "adaptive": {
        "target_quantile": "0.5", "learning_rate": "0.2", "bit_noise": "0.4"}}}
    res = chain.block(owner.tx("create_task", {**base, "task_id": "weak", "aggregation": weak}))
    assert res[0].code == Code.INVALID_BODY and "bit_noise" in res[0].log
    good = {"rule": "fedavg", "central_noise": {"noise_multiplier": "1", "clip": "1", "adaptive": {
        "target_quantile": "0.5", "learning_rate": "0.2", "bit_noise": "2"}}}
    chain.ok(owner.tx("create_task", {**base, "task_id": "ada", "aggregation": good}),
             owner.tx("create_task", {**base, "task_id": "fixed", "aggregation": {"rule": "fedavg"}}))
    for task in ("ada", "fixed"):
        chain.ok(agg.tx("open_round", {"task_id": task, "round": 1}))
        chain.ok(t1.tx("commit_contribution", {"task_id": task, "round": 1, "base_version": 0, "num_examples": 10,
                                               "dp": DP, **model_ref(task + "u")}))
        chain.ok(agg.tx("close_round", {"task_id": task, "round": 1}))
    refused = chain.block(agg.tx("propose_version", {"task_id": "fixed", "round": 1, **model_ref("f1"),
                                                     "contributors": [t1.hex], "next_clip": "2"}))
    assert refused[0].code == Code.INVALID_BODY and "adaptive" in refused[0].log
    chain.ok(agg.tx("propose_version", {"task_id": "ada", "round": 1, **model_ref("a1"),
                                        "contributors": [t1.hex], "next_clip": "1.105171"}))
    assert query(chain, "/task/ada")["aggregation"]["central_noise"]["clip"] == "1.105171"
