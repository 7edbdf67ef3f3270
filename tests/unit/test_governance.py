"""Governance on chain: who may propose and vote, tallies at the deadline, and what passed actions change."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from fedledger.abci_app.canonical import canonical_bytes
from fedledger.abci_app.context import TxResult
from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.governance.actions import ACTIONS, Action
from fedledger.abci_app.modules.governance.tally import compute_tally
from fedledger.abci_app.modules.identity.msgs import rotation_message
from fedledger.abci_app.store import CommittedStore
from tests.support import ISSUER, Chain, Signer, model_ref

ORGS = ("org-a", "org-b", "org-c")
ADMIN_SEEDS = {org: 300 + i for i, org in enumerate(ORGS)}  # one administrator key per organization
SECOND_A = 310  # a second administrator of org-a
ENROLLED_ADMIN = 311  # listed in org-a's admins, and enrolled as a member of org-a in some tests
NEW_ISSUER = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"gov-new-issuer").digest())
TASK = "gov-task"
MECH = {"noise_multiplier": "1", "sample_rate": "0.1", "steps": 10, "clip_norm": "1"}  # ε ≈ 3.55 at δ=1e-5


def did(s: Signer | int) -> str:
    return did_from_private_key((Signer(s) if isinstance(s, int) else s).key)


def app_state(weights: dict[str, int] | None = None, period: int = 5, quorum_ppm: int = 500_000,
              threshold_ppm: int = 500_000) -> bytes:
    orgs = []
    for org in ORGS:
        admins = [did(ADMIN_SEEDS[org])] + ([did(SECOND_A), did(ENROLLED_ADMIN)] if org == "org-a" else [])
        orgs.append({"id": org, "name": org.upper(), "enrollment_cap": 50, "issuers": [did_from_private_key(ISSUER)],
                     "admins": admins})
    gov: dict[str, Any] = {"voting_period_blocks": period, "quorum_ppm": quorum_ppm, "threshold_ppm": threshold_ppm}
    if weights is not None:
        gov["weights"] = weights
    return canonical_bytes({"identity": {"organizations": orgs}, "governance": gov})


class Net:
    """A chain with the test genesis and fresh signers (each Signer counts its own nonces)."""

    def __init__(self, **kwargs: Any) -> None:
        self.chain = Chain(CommittedStore(":memory:"), app_state=app_state(**kwargs))
        self.admins = {org: Signer(seed) for org, seed in ADMIN_SEEDS.items()}
        self.second_a = Signer(SECOND_A)
        self.enrolled_admin = Signer(ENROLLED_ADMIN)
        self.outsider = Signer(320)


def codes(results: Sequence[TxResult]) -> list[int]:
    return [r.code for r in results]


def query(chain: Chain, path: str) -> Any:
    res = chain.sm.query(path, b"", False)
    assert res.code == 0, res.log
    return json.loads(res.value)


def proposal(chain: Chain, pid: int) -> Any:
    return query(chain, f"/proposal/{pid}")


def propose(s: Signer, action: dict[str, Any], title: str = "a proposal", **extra: Any) -> bytes:
    return s.tx("submit_proposal", {"title": title, "action": action, **extra})


def vote(s: Signer, pid: int, option: str, **extra: Any) -> bytes:
    return s.tx("vote", {"proposal_id": pid, "option": option, **extra})


def add_issuer(issuer: Ed25519PrivateKey, org: str = "org-a") -> dict[str, Any]:
    return {"type": "add_issuer", "organization": org, "did": did_from_private_key(issuer)}


def until_final(chain: Chain, pid: int) -> Any:
    """Run empty blocks until the proposal is tallied; check it was tallied exactly at its deadline."""
    deadline = proposal(chain, pid)["deadline_height"]
    while chain.height < deadline:
        assert proposal(chain, pid)["status"] == "voting"
        chain.ok()
    rec = proposal(chain, pid)
    assert rec["status"] != "voting" and rec["final_height"] == deadline
    return rec


def pass_proposal(net: Net, action: dict[str, Any]) -> Any:
    """Submit with org-a's admin, every organization votes yes, run to the deadline."""
    net.chain.ok(propose(net.admins["org-a"], action))
    pid = query(net.chain, "/governance")["next_proposal_id"] - 1
    net.chain.ok(*[vote(net.admins[org], pid, "yes") for org in ORGS])
    return until_final(net.chain, pid)


# ----- who may propose and vote -----
def test_only_organization_admins_propose_and_vote() -> None:
    net = Net()
    chain, trainer = net.chain, Signer(321)
    chain.ok(trainer.admit("trainer", org="org-a"))  # enrolled, but not an admin
    res = chain.block(propose(net.outsider, add_issuer(NEW_ISSUER)), propose(trainer, add_issuer(NEW_ISSUER)))
    assert codes(res) == [Code.UNAUTHORIZED, Code.UNAUTHORIZED]
    assert "not an administrator" in res[0].log
    chain.ok(propose(net.admins["org-b"], add_issuer(NEW_ISSUER)))
    rec = proposal(chain, 1)
    assert rec["organization"] == "org-b" and rec["status"] == "voting" and rec["deadline_height"] == 3 + 5
    assert codes(chain.block(vote(net.outsider, 1, "yes"), vote(trainer, 1, "yes"))) == [Code.UNAUTHORIZED] * 2
    # Naming an organization the signer does not administer is refused too.
    assert codes(chain.block(vote(net.admins["org-b"], 1, "yes", organization="org-a"))) == [Code.UNAUTHORIZED]
    assert proposal(chain, 1)["votes"] == {}


def test_enrolled_admin_votes_and_rotation_moves_the_right() -> None:
    net = Net()
    chain, admin, new_key = net.chain, net.enrolled_admin, Signer(312)
    chain.ok(admin.admit("validator-admin", org="org-a"))
    chain.ok(propose(net.admins["org-c"], add_issuer(NEW_ISSUER)))
    chain.ok(vote(admin, 1, "no"))
    assert proposal(chain, 1)["votes"]["org-a"]["voter"] == did(admin)
    proof = new_key.key.sign(rotation_message(did(admin), admin.hex, new_key.hex)).hex()
    chain.ok(admin.tx("rotate_key", {"new_key": new_key.hex, "proof": proof}))
    # The old key's did:key is still in org-a's admins, but that DID is enrolled with another key now.
    assert codes(chain.block(vote(admin, 1, "yes"))) == [Code.UNAUTHORIZED]
    chain.ok(vote(new_key, 1, "yes"))
    assert proposal(chain, 1)["votes"]["org-a"] == {"option": "yes", "voter": did(admin), "signer": new_key.hex,
                                                    "height": chain.height}


def test_one_vote_per_organization_and_a_revote_replaces_it() -> None:
    net = Net()
    chain, a, b = net.chain, net.admins["org-a"], net.admins["org-b"]
    chain.ok(propose(a, add_issuer(NEW_ISSUER)))
    chain.ok(vote(a, 1, "yes"), vote(b, 1, "yes"))
    res = chain.ok(vote(a, 1, "no"))
    assert ("replaced", "yes") in res[0].events[0].attributes
    chain.ok(vote(net.second_a, 1, "abstain"))  # another admin of org-a: still org-a's single vote
    votes = proposal(chain, 1)["votes"]
    assert sorted(votes) == ["org-a", "org-b"]
    assert votes["org-a"]["option"] == "abstain" and votes["org-a"]["signer"] == net.second_a.hex
    rec = until_final(chain, 1)
    assert rec["tally"] == {"yes": 1, "no": 0, "abstain": 1, "total": 3, "quorum_reached": True, "passed": True}


# ----- tallies -----
def test_tally_at_deadline_pass_reject_and_no_quorum() -> None:
    net = Net(weights={"org-a": 3, "org-b": 2, "org-c": 1})
    chain, (a, b, c) = net.chain, (net.admins[o] for o in ORGS)
    chain.ok(propose(a, add_issuer(NEW_ISSUER), title="passes"),
             propose(a, add_issuer(NEW_ISSUER, "org-b"), title="rejected"),
             propose(a, add_issuer(NEW_ISSUER, "org-c"), title="quorum at exactly half"))
    chain.ok(vote(a, 1, "yes"), vote(b, 1, "no"),  # 3 yes > 2 no
             vote(a, 2, "no"), vote(b, 2, "yes"), vote(c, 2, "yes"),  # 3 yes = 3 no: not more than half
             vote(c, 3, "yes"), vote(b, 3, "abstain"))
    chain.ok(vote(c, 3, "no"))  # changes org-c's vote
    deadline = proposal(chain, 1)["deadline_height"]
    while chain.height < deadline - 1:
        chain.ok()
    chain.ok(vote(b, 3, "yes"))  # votes in the deadline block still count: 2 yes, 1 no, 3 of 6 voted
    final = [proposal(chain, pid) for pid in (1, 2, 3)]
    assert [p["status"] for p in final] == ["passed", "rejected", "passed"]
    assert final[1]["reason"].startswith("threshold not met") and final[1]["tally"]["yes"] == 3
    assert final[2]["tally"] == {"yes": 2, "no": 1, "abstain": 0, "total": 6, "quorum_reached": True,
                                 "passed": True}
    assert codes(chain.block(vote(c, 1, "no"))) == [Code.VOTING_CLOSED]
    assert did_from_private_key(NEW_ISSUER) in query(chain, "/org/org-a")["issuers"]
    assert did_from_private_key(NEW_ISSUER) not in query(chain, "/org/org-b")["issuers"]


def test_no_quorum_is_rejected_and_changes_nothing() -> None:
    net = Net(quorum_ppm=700_000)
    chain, a = net.chain, net.admins["org-a"]
    chain.ok(propose(a, add_issuer(NEW_ISSUER)))
    chain.ok(vote(a, 1, "yes"), vote(net.admins["org-b"], 1, "abstain"))  # 2 of 3 voted: under 70%
    rec = until_final(chain, 1)
    assert rec["status"] == "rejected" and rec["outcome"] == "rejected" and rec["reason"].startswith("no quorum")
    assert rec["tally"]["quorum_reached"] is False
    assert did_from_private_key(NEW_ISSUER) not in query(chain, "/org/org-a")["issuers"]


def test_proposals_query_lists_newest_first_and_params() -> None:
    net = Net(weights={"org-b": 4})
    chain = net.chain
    chain.ok(*[propose(net.admins["org-a"], add_issuer(NEW_ISSUER), title=f"p{i}") for i in range(3)])
    listed = query(chain, "/proposals/2")
    assert [p["id"] for p in listed["proposals"]] == [3, 2] and listed["total"] == 3
    assert [p["id"] for p in query(chain, "/proposals")["proposals"]] == [3, 2, 1]
    assert proposal(chain, 2) == query(chain, "/proposal/0000000002")
    gov = query(chain, "/governance")
    assert gov["weights"] == {"org-a": 1, "org-b": 4, "org-c": 1} and gov["total_weight"] == 6
    assert gov["params"]["voting_period_blocks"] == 5 and "set_task_policy" in gov["actions"]
    assert chain.sm.query("/proposal/9", b"", False).code == Code.QUERY_NOT_FOUND
    assert chain.sm.query("/proposal/x", b"", False).code == Code.BAD_QUERY


def test_genesis_weights_must_name_registered_organizations() -> None:
    with pytest.raises(ValueError, match="org-z"):
        Net(weights={"org-z": 2})
    with pytest.raises(ValueError, match="threshold_ppm"):
        Net(threshold_ppm=1_000_000)


# ----- submit-time validation -----
@pytest.mark.parametrize(("action", "code", "text"), [
    ({"type": "delete_everything"}, Code.UNKNOWN_ACTION, "unknown action"),
    ({"title": "no type"}, Code.INVALID_BODY, "type"),
    ({"type": "add_issuer", "organization": "org-a", "did": "did:web:example.com"}, Code.INVALID_BODY, "did:key"),
    ({"type": "add_issuer", "organization": "nope", "did": did_from_private_key(NEW_ISSUER)}, Code.NOT_FOUND, "nope"),
    ({"type": "add_issuer", "organization": "org-a", "did": did_from_private_key(ISSUER)}, Code.ALREADY_EXISTS,
     "already"),
    ({"type": "remove_issuer", "organization": "org-a", "did": did_from_private_key(ISSUER)}, Code.ACTION_INVALID,
     "last issuer"),
    ({"type": "set_task_policy", "task_id": "missing", "changes": {"epsilon": "2"}}, Code.NOT_FOUND, "missing"),
    ({"type": "set_task_policy", "task_id": "t", "changes": {"colour": "red"}}, Code.INVALID_BODY, "colour"),
    ({"type": "set_task_policy", "task_id": "t", "changes": {"epsilon": "-1"}}, Code.INVALID_BODY, "epsilon"),
    ({"type": "set_task_policy", "task_id": "t", "changes": {}}, Code.INVALID_BODY, "non-empty"),
    ({"type": "set_task_policy", "task_id": "t", "changes": {"quorum_weight": 0}}, Code.INVALID_BODY,
     "quorum_weight"),
    ({"type": "rollback", "task_id": "missing"}, Code.NOT_FOUND, "missing"),
    ({"type": "add_organization", "organization": {"id": "org-a", "issuers": [did_from_private_key(ISSUER)],
                                                   "enrollment_cap": 5}}, Code.ALREADY_EXISTS, "org-a"),
    ({"type": "add_organization", "organization": {"id": "Bad Id"}}, Code.INVALID_BODY, "organization"),
    ({"type": "remove_organization", "id": "nope"}, Code.NOT_FOUND, "nope"),
    ({"type": "set_governance_params", "changes": {"threshold_ppm": 1_000_000}}, Code.INVALID_BODY, "threshold"),
    ({"type": "set_governance_params", "changes": {"weights": {"org-a": 0, "org-b": 0, "org-c": 0}}},
     Code.ACTION_INVALID, "no organization"),
    ({"type": "set_reputation_params", "changes": {"floor": -1}}, Code.REPUTATION_PARAMS_INVALID, "floor"),
])
def test_invalid_actions_are_refused_at_submit(action: dict[str, Any], code: Code, text: str) -> None:
    net = Net()
    res = net.chain.block(propose(net.admins["org-a"], action))
    assert codes(res) == [code] and text in res[0].log, res[0].log
    assert query(net.chain, "/governance")["next_proposal_id"] == 1


def test_malformed_bodies() -> None:
    net = Net()
    a = net.admins["org-a"]
    bad = [a.tx("submit_proposal", {"title": "", "action": add_issuer(NEW_ISSUER)}),
           a.tx("submit_proposal", {"title": "x", "action": add_issuer(NEW_ISSUER), "extra": 1}),
           a.tx("vote", {"proposal_id": 0, "option": "yes"}),
           a.tx("vote", {"proposal_id": 1, "option": "maybe"}),
           a.tx("vote", {"proposal_id": True, "option": "yes"})]
    assert codes(net.chain.block(*bad)) == [Code.INVALID_BODY] * 5
    assert codes(net.chain.block(vote(a, 7, "yes"))) == [Code.NOT_FOUND]


# ----- what passed actions do -----
def setup_task(chain: Chain, epsilon: str = "8") -> tuple[Signer, list[Signer]]:
    agg = Signer(330)
    trainers = [Signer(331 + i) for i in range(3)]
    chain.ok(agg.admit("aggregator", org="org-a"), *[t.admit("trainer", org="org-b") for t in trainers])
    chain.ok(agg.tx("create_task", {
        "task_id": TASK, "model_spec": "m", "round_size": 10, "min_contributions": 1, "deadline_blocks": 200,
        "aggregator": agg.hex, "initial_model": model_ref("v0"),
        "privacy": {"epsilon": epsilon, "delta": "1e-5", "org_epsilon": None}}))
    chain.ok(agg.tx("open_round", {"task_id": TASK, "round": 1}))
    return agg, trainers


def commit(t: Signer, number: int = 1) -> bytes:
    return t.tx("commit_contribution", {"task_id": TASK, "round": number, "base_version": 0, "num_examples": 5,
                                        "dp": MECH, **model_ref(f"{t.hex}{number}")})


def test_passed_task_policy_judges_the_next_contribution_by_the_new_rule() -> None:
    net = Net()
    chain = net.chain
    _agg, (t1, t2, _t3) = setup_task(chain, epsilon="8")
    chain.ok(commit(t1))  # ε ≈ 3.55 within the budget of 8
    rec = pass_proposal(net, {"type": "set_task_policy", "task_id": TASK, "changes": {
        "epsilon": "3", "round_size": 4, "min_canary_accuracy_ppm": 600_000}})
    assert rec["status"] == "passed", rec["reason"]
    res = chain.block(commit(t2))  # the same mechanism is now over the lowered budget
    assert codes(res) == [Code.BUDGET_EXCEEDED] and "3.000000" in res[0].log
    task = query(chain, f"/task/{TASK}")
    assert task["round_size"] == 4 and task["min_contributions"] == 1
    assert query(chain, f"/lifecycle/{TASK}")["params"]["min_canary_accuracy_ppm"] == 600_000
    budget = query(chain, f"/budget/{TASK}/{did(t1)}")
    assert budget["epsilon_budget_micro"] == 3_000_000 and budget["delta"] == "0.00001"


def test_round_parameters_are_checked_against_the_task() -> None:
    net = Net()
    setup_task(net.chain)
    res = net.chain.block(propose(net.admins["org-a"], {"type": "set_task_policy", "task_id": TASK,
                                                        "changes": {"min_contributions": 11}}))
    assert codes(res) == [Code.ACTION_INVALID] and "rounds of at most 10" in res[0].log


def test_add_and_remove_issuer_take_effect_for_admissions() -> None:
    net = Net()
    chain = net.chain
    early, late, old = Signer(340), Signer(341), Signer(342)
    res = chain.block(early.admit("trainer", issuer=NEW_ISSUER, org="org-a"))
    assert codes(res) == [Code.CREDENTIAL_INVALID]
    assert pass_proposal(net, add_issuer(NEW_ISSUER))["status"] == "passed"
    chain.ok(late.admit("trainer", issuer=NEW_ISSUER, org="org-a"))
    assert query(chain, f"/member/{did(late)}")["issuer"] == did_from_private_key(NEW_ISSUER)
    rec = pass_proposal(net, {"type": "remove_issuer", "organization": "org-a", "did": did_from_private_key(ISSUER)})
    assert rec["status"] == "passed"
    assert codes(chain.block(old.admit("trainer", org="org-a"))) == [Code.CREDENTIAL_INVALID]
    assert query(chain, "/org/org-a")["issuers"] == [did_from_private_key(NEW_ISSUER)]


def test_failed_action_is_recorded_and_the_chain_goes_on() -> None:
    net = Net()
    chain, a = net.chain, net.admins["org-a"]
    # All four are valid when submitted; proposals passing first make the 2nd and 4th impossible.
    chain.ok(propose(a, add_issuer(NEW_ISSUER)), propose(a, add_issuer(NEW_ISSUER)),
             propose(a, {"type": "remove_organization", "id": "org-c"}),
             propose(a, {"type": "add_admin", "organization": "org-c", "did": did(net.outsider)}))
    chain.ok(*[vote(net.admins[org], pid, "yes") for pid in (1, 2, 3, 4) for org in ORGS])
    issuers_before = query(chain, "/org/org-a")["issuers"]
    until_final(chain, 1)
    recs = [proposal(chain, pid) for pid in (1, 2, 3, 4)]
    assert [r["status"] for r in recs] == ["passed", "failed", "passed", "failed"]
    assert [r["outcome"] for r in recs] == ["passed"] * 4
    assert recs[1]["reason"].startswith("ALREADY_EXISTS") and recs[3]["reason"].startswith("NOT_FOUND")
    assert recs[3]["tally"]["total"] == 2  # org-c was removed by proposal 3 before proposal 4 was tallied
    assert len(query(chain, "/org/org-a")["issuers"]) == len(issuers_before) + 1
    assert chain.sm.query("/org/org-c", b"", False).code == Code.QUERY_NOT_FOUND
    assert "org-c" not in query(chain, "/governance")["weights"]
    chain.ok()  # the chain goes on
    assert codes(chain.block(propose(net.admins["org-c"], add_issuer(NEW_ISSUER)))) == [Code.UNAUTHORIZED]


def test_removing_an_organization_suspends_its_members() -> None:
    net = Net()
    chain, member = net.chain, Signer(343)
    chain.ok(member.admit("trainer", org="org-c"))
    assert pass_proposal(net, {"type": "remove_organization", "id": "org-c"})["status"] == "passed"
    assert query(chain, f"/member/{did(member)}")["status"] == "organization_removed"
    res = chain.block(member.tx("rotate_key", {"new_key": Signer(344).hex, "proof": "00" * 64}))
    assert codes(res) == [Code.UNAUTHORIZED]  # no longer an active member


def test_add_organization_with_weight_and_governance_params() -> None:
    net = Net()
    chain, newcomer = net.chain, Signer(345)
    org = {"id": "org-d", "issuers": [did_from_private_key(NEW_ISSUER)], "enrollment_cap": 3,
           "admins": [did(newcomer)], "roles": ["trainer"]}
    assert pass_proposal(net, {"type": "add_organization", "organization": org, "weight": 5})["status"] == "passed"
    assert query(chain, "/governance")["weights"]["org-d"] == 5
    chain.ok(Signer(346).admit("trainer", issuer=NEW_ISSUER, org="org-d"))
    # org-d (weight 5 of 8) has not voted: the three others alone are under the 50% quorum.
    rec = pass_proposal(net, {"type": "set_governance_params", "changes": {"voting_period_blocks": 2}})
    assert rec["tally"]["total"] == 8 and rec["status"] == "rejected" and rec["reason"].startswith("no quorum")
    chain.ok(propose(net.admins["org-a"], {"type": "set_governance_params", "changes": {"voting_period_blocks": 2}}))
    chain.ok(vote(newcomer, 3, "yes"))
    assert until_final(chain, 3)["status"] == "passed"
    chain.ok(propose(newcomer, add_issuer(NEW_ISSUER, "org-b")))
    assert proposal(chain, 4)["deadline_height"] == chain.height + 2
    assert proposal(chain, 4)["organization"] == "org-d"


def test_rollback_through_governance() -> None:
    net = Net()
    chain = net.chain
    agg, (t1, _t2, _t3) = setup_task(chain)
    evaluators = [Signer(350), Signer(351)]
    chain.ok(*[e.admit("evaluator", org="org-c") for e in evaluators])
    chain.ok(commit(t1))
    rnd = query(chain, f"/round/{TASK}/1")
    while chain.height <= rnd["deadline_height"]:
        chain.ok()
    chain.ok(agg.tx("close_round", {"task_id": TASK, "round": 1}))
    chain.ok(agg.tx("propose_version", {"task_id": TASK, "round": 1, **model_ref("v1"), "contributors": [t1.hex]}))
    chain.ok(*[e.tx("attest_version", {"task_id": TASK, "version": 1, "canary_accuracy_ppm": 900_000,
                                       "backdoor_asr_ppm": 0, "metrics_sha256": "ab" * 32}) for e in evaluators])
    assert query(chain, f"/lifecycle/{TASK}")["last_good"] == 1
    rec = pass_proposal(net, {"type": "rollback", "task_id": TASK})
    assert rec["status"] == "passed", rec["reason"]
    actions = [dict(e.attributes)["action"] for e in chain.sm.block_events]  # the tally block's end-block events
    assert actions == ["tally_proposal", "rollback"]
    assert query(chain, f"/lifecycle/{TASK}")["last_good"] == 0
    assert query(chain, f"/version/{TASK}/1")["status"] == "rolled_back"
    # Nothing is left to roll back, so a second proposal is refused when submitted.
    res = chain.block(propose(net.admins["org-a"], {"type": "rollback", "task_id": TASK}))
    assert codes(res) == [Code.ROLLBACK_REFUSED]


# ----- determinism -----
def scenario(net: Net) -> list[bytes]:
    """A fixed mix of proposals, votes, revotes and a failing action; returns the app hash after each block."""
    a, b, c = (net.admins[o] for o in ORGS)
    blocks = [
        [propose(a, add_issuer(NEW_ISSUER)), propose(b, add_issuer(NEW_ISSUER)),
         propose(c, {"type": "set_governance_params", "changes": {"quorum_ppm": 900_000}})],
        [vote(a, 1, "yes"), vote(b, 1, "no"), vote(c, 1, "yes"), vote(a, 2, "yes"), vote(b, 2, "yes")],
        [vote(b, 1, "yes"), vote(a, 3, "abstain"), vote(b, 3, "yes"), vote(c, 3, "yes")],
        [], [], [], [],
    ]
    hashes = []
    for txs in blocks:
        net.chain.block(*txs)
        hashes.append(net.chain.sm.app_hash)
    return hashes


def test_two_chains_with_the_same_txs_reach_the_same_app_hash() -> None:
    first, second = Net(), Net()
    assert scenario(first) == scenario(second)
    hashes = scenario(Net())
    # The txs moved the state, and so did the tally (end_block of block 6, the deadline) on an empty block.
    assert len(set(hashes[:3])) == 3 and hashes[4] != hashes[5] == hashes[6]
    assert [proposal(first.chain, pid)["status"] for pid in (1, 2, 3)] == ["passed", "failed", "passed"]
    assert query(first.chain, "/governance")["params"]["quorum_ppm"] == 900_000


# ----- the tally against a reference -----
def reference(weights: dict[str, int], votes: list[tuple[str, str]], quorum_ppm: int, threshold_ppm: int
              ) -> tuple[dict[str, int], bool, bool]:
    """The rule in plain words: the last vote per organization counts; quorum on every vote; threshold on yes/no."""
    last = dict(votes)
    sums = {"yes": 0, "no": 0, "abstain": 0}
    for org, option in last.items():
        sums[option] += weights[org]
    total = sum(weights.values())
    quorum = total > 0 and Fraction(sum(sums.values()), total) >= Fraction(quorum_ppm, 10**6)
    decided = sums["yes"] + sums["no"]
    passed = quorum and decided > 0 and Fraction(sums["yes"], decided) > Fraction(threshold_ppm, 10**6)
    return sums, quorum, passed


def test_compute_tally_boundaries() -> None:
    weights = [("a", 1), ("b", 1)]
    assert compute_tally({"a": "yes"}, weights, 500_000, 500_000).passed  # exactly half voted: quorum
    assert not compute_tally({"a": "yes", "b": "no"}, weights, 500_000, 500_000).passed  # a tie fails
    assert not compute_tally({"a": "abstain"}, weights, 500_000, 500_000).passed  # no yes/no at all
    assert not compute_tally({}, [("a", 0)], 0, 0).quorum_reached  # nobody has weight
    assert compute_tally({"gone": "yes"}, weights, 0, 0).yes == 0  # a removed organization's vote is ignored


@settings(max_examples=30, deadline=None)
@given(weights=st.tuples(*[st.integers(0, 4)] * 3),
       quorum_ppm=st.sampled_from([0, 250_000, 333_333, 500_000, 666_667, 1_000_000]),
       threshold_ppm=st.sampled_from([0, 333_333, 500_000, 666_666, 999_999]),
       votes=st.lists(st.tuples(st.sampled_from(ORGS), st.sampled_from(["yes", "no", "abstain"])), max_size=8),
       split=st.integers(0, 8))
def test_random_votes_match_the_reference(weights: tuple[int, int, int], quorum_ppm: int, threshold_ppm: int,
                                          votes: list[tuple[str, str]], split: int) -> None:
    wmap = dict(zip(ORGS, weights, strict=True))
    net = Net(weights=wmap, period=3, quorum_ppm=quorum_ppm, threshold_ppm=threshold_ppm)
    net.chain.ok(propose(net.admins["org-a"], add_issuer(NEW_ISSUER)))
    txs = [vote(net.admins[org], 1, option) for org, option in votes]
    net.chain.ok(*txs[:split])  # votes spread over two blocks, in order
    net.chain.ok(*txs[split:])
    rec = until_final(net.chain, 1)
    sums, quorum, passed = reference(wmap, votes, quorum_ppm, threshold_ppm)
    assert {k: rec["tally"][k] for k in ("yes", "no", "abstain")} == sums
    assert rec["tally"]["quorum_reached"] == quorum
    assert rec["status"] == ("passed" if passed else "rejected")
    issuers = query(net.chain, "/org/org-a")["issuers"]
    assert (did_from_private_key(NEW_ISSUER) in issuers) == passed


def test_an_action_failing_midway_writes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def execute(state: Any, body: Any, ctx: Any) -> list[Any]:
        state.set(b"gov/probe", b"partial")
        raise TxError(Code.ACTION_INVALID, "failed after a write")

    monkeypatch.setitem(ACTIONS, "probe", Action(parse=lambda body: {}, check=lambda view, body: None,
                                                 execute=execute))
    net = Net()
    rec = pass_proposal(net, {"type": "probe"})
    assert rec["status"] == "failed" and "failed after a write" in rec["reason"]
    assert net.chain.store.get(b"gov/probe") is None
    net.chain.ok()


def test_check_tx_runs_the_checks_without_writing() -> None:
    net = Net()
    net.chain.ok(propose(net.admins["org-a"], add_issuer(NEW_ISSUER)))
    before = net.chain.sm.app_hash
    assert net.chain.sm.check_tx(vote(net.outsider, 1, "yes")).code == Code.UNAUTHORIZED
    assert net.chain.sm.check_tx(vote(net.admins["org-b"], 1, "yes")).code == 0
    assert net.chain.sm.check_tx(propose(net.admins["org-c"], {"type": "nope"})).code == Code.UNKNOWN_ACTION
    assert net.chain.sm.app_hash == before and proposal(net.chain, 1)["votes"] == {}


def test_inference_params_are_set_by_a_vote() -> None:
    net = Net()
    assert query(net.chain, "/inference-params")["max_dissents"] == 3  # the built-in default, nothing stored
    rec = pass_proposal(net, {"type": "set_inference_params", "params": {"max_dissents": 7, "dissent_window": 50}})
    assert rec["status"] == "passed", rec
    got = query(net.chain, "/inference-params")
    assert got["max_dissents"] == 7 and got["dissent_window"] == 50 and got["dissent_penalty"] == 50_000
    for bad, log in (({"max_dissents": 0}, "must be an integer in [1,"), ({"nope": 1}, "unknown inference params"),
                     ({}, "inference params are missing")):
        (res,) = net.chain.block(propose(net.admins["org-a"], {"type": "set_inference_params", "params": bad}))
        assert res.code == Code.INVALID_BODY and log in res.log, res.log
