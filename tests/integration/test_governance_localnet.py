"""Governance on one real 4-validator localnet: admission, Sybil caps, privacy budgets, votes, quarantine, rollback.

Every scenario drives the chain through the Python client API (signed txs over CometBFT's RPC)
and reads the results back with abci_query. The net's genesis is written here: besides the
development organization `local` (issuer and admin key in <home>/issuer.key) it registers `beta`,
which grants only the trainer role, admits at most BETA_CAP members and has its own issuer and
admin, so two organizations vote. Votes close after VOTING_PERIOD blocks.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest

from fedledger.abci_app.accountant import ZERO_RDP, Mechanism, charge, decode_rdp
from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.abci_app.did.vc import issue_admission_credential
from fedledger.abci_app.errors import Code
from fedledger.ipfs import ContentStore, open_store
from fedledger.localnet import manager
from fedledger.localnet.consortium import DEV_ORG, dev_app_state, dev_issuer_key
from fedledger.localnet.dev import dev_credential, localnet_trust_root
from fedledger.localnet.ports import find_free_base_port
from fedledger.localnet.procs import pid_matches
from fedledger.localnet.supervisor import read_run_state
from fedledger.sdk.errors import TxRejectedError
from fedledger.sdk.keys import Key
from fedledger.sdk.lightclient import TrustRoot
from fedledger.sdk.provenance import check_query_proof
from fedledger.sdk.rpc import CometRPC
from fedledger.sdk.steps import Action, Step
from fedledger.sdk.submit import Submitter, TxOutcome
from tests.integration.conftest import down_if_running
from tests.support import named_key, payload_ref, use_pinned_cometbft

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

BETA = "beta"
BETA_CAP = 3
VOTING_PERIOD = 6
LIFECYCLE = {"quorum_weight": 2_000_000, "min_canary_accuracy_ppm": 700_000, "max_backdoor_asr_ppm": 200_000}
SPEC = "mlp-digits"
# ε of one contribution at δ = 1e-5 (checked against the accountant in the tests that rely on them)
SMALL_DP = {"noise_multiplier": "1", "sample_rate": "0.05", "steps": 60, "clip_norm": "1"}  # ε ≈ 3.37
MID_DP = {"noise_multiplier": "1", "sample_rate": "0.1", "steps": 30, "clip_norm": "1"}  # ε ≈ 4.85
BIG_DP = {"noise_multiplier": "0.8", "sample_rate": "0.2", "steps": 100, "clip_norm": "1"}  # ε ≈ 24.2
DELTA = "1e-5"


# ----------------------------------------------------------------------------- helpers



def _key(name: str) -> Key:
    key: Key = named_key(f"gov-{name}")
    return Key(name, key.private)


def _did(key: Key) -> str:
    return str(did_from_private_key(key.private))


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _vc(issuer: Key, subject: Key, org: str, role: str, *, tasks: tuple[str, ...] = (),
        valid_from: str | None = None, valid_until: str | None = None) -> dict[str, Any]:
    """A credential signed by `issuer` (registered or not) for `subject`; valid from 5 minutes ago for a year."""
    now = datetime.now(UTC).replace(microsecond=0)
    return dict(issue_admission_credential(
        issuer.private, _did(issuer), _did(subject), org, role, list(tasks),
        valid_from or _iso(now - timedelta(minutes=5)), valid_until or _iso(now + timedelta(days=365)),
        f"urn:fedledger-test:{subject.name}"))


def _mech_epsilon(dp: dict[str, Any], history: list[str] | None = None) -> int:
    """What the chain's accountant charges (micro-ε) for `dp` on top of a stored RDP curve."""
    mech = Mechanism.parse({k: v for k, v in dp.items() if k != "clip_norm"})
    return int(charge(decode_rdp(history) if history else ZERO_RDP, mech, DELTA).epsilon_micro)




@dataclass
class Net:
    """The running net and the keys that act on it."""

    home: Path
    rpc: CometRPC
    chain_id: str
    trust: TrustRoot
    store: ContentStore
    local_admin: Key  # issuer and admin of `local` (the development issuer)
    beta_issuer: Key
    beta_admin: Key
    agg: Key  # an admitted aggregator of `local`: creates the tasks and runs their rounds
    _subs: dict[str, Submitter] = field(default_factory=dict)

    def sub(self, key: Key) -> Submitter:
        """One Submitter per key, so its nonce is tracked across the tests."""
        if key.public_hex not in self._subs:
            self._subs[key.public_hex] = Submitter(self.rpc, key, self.chain_id)
        return self._subs[key.public_hex]

    def query(self, path: str) -> tuple[int, Any]:
        """(code, decoded value or None) of a query on committed state."""
        res = self.rpc.abci_query(path)
        return res.code, (json.loads(res.value) if res.code == 0 and res.value else None)

    def get(self, path: str) -> Any:
        """The decoded answer of a query that must succeed."""
        code, value = self.query(path)
        assert code == 0, f"query {path} failed with code {code}"
        return value

    def admit_all(self, creds: list[tuple[Key, dict[str, Any]]]) -> None:
        """Admit several keys in the same block or two; every admission must succeed."""
        hashes = [(self.sub(k), self.sub(k).broadcast("admit", {"credential": c})) for k, c in creds]
        for sub, h in hashes:
            sub.wait(h)

    def refused(self, key: Key, tx_type: str, body: dict[str, Any]) -> TxRejectedError:
        """Send a tx that must be rejected (in CheckTx or in FinalizeBlock); return the rejection."""
        with pytest.raises(TxRejectedError) as info:
            self.sub(key).send(tx_type, body)
        return info.value

    def create_task(self, task_id: str, *, epsilon: str, round_size: int = 1,
                    initial: dict[str, Any] | None = None) -> None:
        """The aggregator creates a task with a per-participant ε budget; rounds close when full."""
        self.sub(self.agg).send("create_task", {
            "task_id": task_id, "model_spec": SPEC, "round_size": round_size, "min_contributions": 1,
            "deadline_blocks": 100_000, "aggregator": self.agg.public_hex,
            "initial_model": initial or payload_ref(f"{task_id}-v0"),
            "privacy": {"epsilon": epsilon, "delta": DELTA, "org_epsilon": None}})

    def open_round(self, task_id: str, number: int) -> dict[str, Any]:
        """Open a round; return its record."""
        self.sub(self.agg).send("open_round", {"task_id": task_id, "round": number})
        record: dict[str, Any] = self.get(f"/round/{task_id}/{number}")
        return record

    def commit(self, trainer: Key, task_id: str, number: int, base: int, dp: dict[str, Any]) -> TxOutcome:
        """A trainer's commit_contribution (raises TxRejectedError when refused)."""
        return self.sub(trainer).send("commit_contribution", {
            "task_id": task_id, "round": number, "base_version": base, "num_examples": 100, "dp": dp,
            **payload_ref(f"{task_id}/{number}/{trainer.name}")})

    def close_and_propose(self, task_id: str, number: int, contributors: list[Key], ref: dict[str, Any]) -> int:
        """Close a full round and propose its version; return the version number."""
        self.sub(self.agg).send("close_round", {"task_id": task_id, "round": number})
        out = self.sub(self.agg).send("propose_version", {
            "task_id": task_id, "round": number, **ref, "contributors": sorted(k.public_hex for k in contributors)})
        version = out.attr("fl", "version")
        assert version is not None, out.events
        return int(version)

    def govern(self, title: str, action: dict[str, Any]) -> dict[str, Any]:
        """Submit a proposal as `local`'s admin, have both organizations vote yes, wait for the tally."""
        out = self.sub(self.local_admin).send("submit_proposal", {"title": title, "action": action})
        pid = int(out.attr("fl", "proposal") or 0)
        assert pid >= 1, out.events
        assert int(out.attr("fl", "deadline") or 0) == out.height + VOTING_PERIOD
        hashes = [(self.sub(k), self.sub(k).broadcast("vote", {"proposal_id": pid, "option": "yes"}))
                  for k in (self.local_admin, self.beta_admin)]
        for sub, h in hashes:
            sub.wait(h)
        deadline = time.monotonic() + 60
        while True:
            proposal: dict[str, Any] = self.get(f"/proposal/{pid}")
            if proposal["status"] != "voting":
                return proposal
            assert time.monotonic() < deadline, f"proposal {pid} was not tallied: {proposal}"
            time.sleep(0.2)


def _record_pids(home: Path, seen: set[tuple[int, str]]) -> None:
    """Remember every process run.json names now (the supervisor and each node's app and CometBFT)."""
    run = read_run_state(home)
    if not run:
        return
    if isinstance(run.get("supervisor_pid"), int):
        seen.add((int(run["supervisor_pid"]), "fedledger.localnet.supervisor"))
    for node in run.get("nodes", []):
        if node.get("app_pid"):
            seen.add((int(node["app_pid"]), "fedledger.abci_app"))
        if node.get("cometbft_pid"):
            seen.add((int(node["cometbft_pid"]), "cometbft"))


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    restore_env = use_pinned_cometbft()
    home = tmp_path_factory.mktemp("governance") / "net"
    home.mkdir()
    beta_issuer, beta_admin = _key("beta-issuer"), _key("beta-admin")
    app_state = dev_app_state(home)  # organization `local`, its issuer and admin key in home/issuer.key
    app_state["identity"]["organizations"].append({
        "id": BETA, "name": "Beta hospital", "issuers": [_did(beta_issuer)], "admins": [_did(beta_admin)],
        "enrollment_cap": BETA_CAP, "roles": ["trainer"]})
    app_state["governance"] = {"voting_period_blocks": VOTING_PERIOD}
    app_state["lifecycle"] = dict(LIFECYCLE)
    seen: set[tuple[int, str]] = set()
    rpc: CometRPC | None = None
    try:
        manager.up(home, validators=4, base_port=find_free_base_port(40), block_time_ms=300, timeout=90,
                   log=lambda m: None, app_state=app_state)
        _record_pids(home, seen)
        rpc = CometRPC(manager.rpc_url(home, 0))
        chain_id = str(rpc.status()["node_info"]["network"])
        spec = manager.store_spec(home)
        assert spec is not None
        n = Net(home=home, rpc=rpc, chain_id=chain_id, trust=localnet_trust_root(home), store=open_store(spec),
                local_admin=Key("local-admin", dev_issuer_key(home)), beta_issuer=beta_issuer,
                beta_admin=beta_admin, agg=_key("agg"))
        n.sub(n.agg).send("admit", {"credential": dev_credential(home, n.agg, "aggregator")})
        yield n
    finally:
        if rpc is not None:
            rpc.close()
        restore_env()
        _record_pids(home, seen)
        down_if_running(home)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(pid_matches(p, needle) for p, needle in seen):
            time.sleep(0.1)
        survivors = sorted((p, needle) for p, needle in seen if pid_matches(p, needle))
        for pid, _ in survivors:  # leave nothing behind even when the assertion below fails
            os.kill(pid, signal.SIGKILL)
        assert not seen or len(seen) >= 9, f"expected a supervisor and 4 app + 4 CometBFT processes, saw {seen}"
        assert not survivors, f"processes of the net survived manager.down: {survivors}"
        assert manager.is_running(home) is None, "the supervisor lock is still held after manager.down"


def _no_member(net: Net, key: Key) -> None:
    """Neither the DID nor the key is bound to a member record."""
    assert net.query(f"/member/{_did(key)}")[0] == Code.QUERY_NOT_FOUND
    assert net.query(f"/whois/{key.public_hex}")[0] == Code.QUERY_NOT_FOUND


# ----------------------------------------------------------------------------- 1. admission

def test_admission_accepts_a_valid_credential_and_refuses_bad_ones(net: Net) -> None:
    ok = _key("adm-ok")
    out = net.sub(ok).send("admit", {"credential": dev_credential(net.home, ok, "trainer", tasks=["adm"])})
    assert out.attr("fl", "did") == _did(ok)
    member = net.get(f"/member/{_did(ok)}")
    assert (member["organization"], member["role"], member["key"], member["status"], member["tasks"]) == \
        (DEV_ORG, "trainer", ok.public_hex, "active", ["adm"])
    assert net.get(f"/whois/{ok.public_hex}")["did"] == _did(ok)
    # Revoking an admitted member's credential takes its rights away.
    net.sub(net.local_admin).send("revoke_credential", {"organization": DEV_ORG,
                                                        "credential_id": member["credential_id"]})
    assert net.get(f"/member/{_did(ok)}")["status"] == "revoked"
    err = net.refused(ok, "declare_availability", {"task_id": "adm", "available": False})
    assert (err.stage, err.code) == ("CheckTx", Code.UNAUTHORIZED), err

    # forged: the holder raises its role after the issuer signed
    forged_key = _key("adm-forged")
    forged = _vc(net.local_admin, forged_key, DEV_ORG, "trainer")
    forged["credentialSubject"]["role"] = "aggregator"
    # wrong issuer: a key that issues for no organization, and `beta`'s issuer vouching for `local`
    rogue_key, cross_key = _key("adm-rogue"), _key("adm-cross")
    rogue = _vc(_key("rogue-issuer"), rogue_key, DEV_ORG, "trainer")
    cross = _vc(net.beta_issuer, cross_key, DEV_ORG, "trainer")
    # wrong role: `beta` grants only `trainer`
    role_key = _key("adm-role")
    wrong_role = _vc(net.beta_issuer, role_key, BETA, "aggregator")
    # revoked by its issuer before the holder uses it
    revoked_key = _key("adm-revoked")
    revoked = _vc(net.local_admin, revoked_key, DEV_ORG, "trainer")
    net.sub(net.local_admin).send("revoke_credential", {"organization": DEV_ORG, "credential_id": revoked["id"]})

    check_tx_cases = [
        (forged_key, forged, Code.CREDENTIAL_INVALID, "signature does not verify"),
        (rogue_key, rogue, Code.CREDENTIAL_INVALID, f"is not a registered issuer of '{DEV_ORG}'"),
        (cross_key, cross, Code.CREDENTIAL_INVALID, f"is not a registered issuer of '{DEV_ORG}'"),
        (role_key, wrong_role, Code.CREDENTIAL_INVALID, f"'{BETA}' does not grant role 'aggregator'"),
        (revoked_key, revoked, Code.CREDENTIAL_REVOKED, "was revoked by its issuer"),
    ]
    for key, cred, code, why in check_tx_cases:
        err = net.refused(key, "admit", {"credential": cred})
        assert (err.stage, err.code) == ("CheckTx", code), f"{key.name}: {err}"
        assert why in err.log, f"{key.name}: {err.log}"

    # The validity window is checked against the block time: CheckTx has none, FinalizeBlock refuses.
    old = datetime(2020, 1, 1, tzinfo=UTC)
    future = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    expired_key, early_key = _key("adm-expired"), _key("adm-early")
    window_cases = [
        (expired_key, _vc(net.local_admin, expired_key, DEV_ORG, "trainer", valid_from=_iso(old),
                          valid_until=_iso(old + timedelta(days=365))), "expired at 2020-12-31T00:00:00Z"),
        (early_key, _vc(net.local_admin, early_key, DEV_ORG, "trainer", valid_from=_iso(future),
                        valid_until=_iso(future + timedelta(days=1))), f"valid from {_iso(future)}"),
    ]
    for key, cred, why in window_cases:
        err = net.refused(key, "admit", {"credential": cred})
        assert err.code == Code.CREDENTIAL_EXPIRED, f"{key.name}: {err}"
        assert why in err.log, f"{key.name}: {err.log}"

    for key, *_ in [*check_tx_cases, *window_cases]:
        _no_member(net, key)
    # the premise of the wrong-role case (that it used no place under `beta`'s cap shows in test 2)
    assert net.get(f"/org/{BETA}")["roles"] == ["trainer"]


def test_check_tx_refuses_an_expired_credential(net: Net) -> None:
    key = _key("adm-expired-checktx")
    old = datetime(2020, 1, 1, tzinfo=UTC)
    cred = _vc(net.local_admin, key, DEV_ORG, "trainer", valid_from=_iso(old), valid_until=_iso(old + timedelta(1)))
    err = net.refused(key, "admit", {"credential": cred})
    assert err.code == Code.CREDENTIAL_EXPIRED, err
    assert err.stage == "CheckTx", err  # refused before it can reach a block and use a nonce


def _block_time(net: Net) -> datetime:
    """The header time of the latest block (BFT time: the median of the validators' clocks)."""
    text = str(net.rpc.status()["sync_info"]["latest_block_time"])
    return datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)


def test_member_whose_credential_expired_may_no_longer_act(net: Net) -> None:
    agg = _key("adm-short-lived")
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=8)
    net.sub(agg).send("admit", {"credential": _vc(net.local_admin, agg, DEV_ORG, "aggregator",
                                                  valid_until=_iso(until))})
    assert net.get(f"/member/{_did(agg)}")["valid_until"] == int(until.timestamp())
    deadline = time.monotonic() + 30
    while _block_time(net) <= until + timedelta(seconds=1):
        assert time.monotonic() < deadline, "block time did not pass the credential's validUntil"
        time.sleep(0.5)
    body = {"task_id": "after-expiry", "model_spec": SPEC, "round_size": 1, "min_contributions": 1,
            "deadline_blocks": 10, "aggregator": agg.public_hex, "initial_model": payload_ref("after-expiry"),
            "privacy": {"epsilon": "1", "delta": DELTA, "org_epsilon": None}}
    try:
        net.sub(agg).send("create_task", body)
    except TxRejectedError as exc:
        assert exc.code in (Code.UNAUTHORIZED, Code.CREDENTIAL_EXPIRED), exc
        return
    raise AssertionError("a member whose credential expired created a task")


# ----------------------------------------------------------------------------- 2. Sybil cap

def test_enrollment_cap_stops_sybil_enrollment(net: Net) -> None:
    keys = [_key(f"sybil{i}") for i in range(BETA_CAP + 2)]
    creds = {k.public_hex: _vc(net.beta_issuer, k, BETA, "trainer", tasks=("beta-only",)) for k in keys}
    net.sub(keys[0]).send("admit", {"credential": creds[keys[0].public_hex]})
    # A burst that overshoots the cap by one: CheckTx sees the committed count (1) and lets all three
    # through unless a block committed in between; the block that would pass the cap refuses the extra one.
    outcomes: list[tuple[Key, str, int]] = []
    pending = []
    for k in keys[1:BETA_CAP + 1]:
        try:
            pending.append((k, net.sub(k).broadcast("admit", {"credential": creds[k.public_hex]})))
        except TxRejectedError as exc:
            outcomes.append((k, exc.stage, exc.code))
    for k, h in pending:
        try:
            net.sub(k).wait(h)
            outcomes.append((k, "ok", 0))
        except TxRejectedError as exc:
            outcomes.append((k, exc.stage, exc.code))
    refused = [(k, stage, code) for k, stage, code in outcomes if code != 0]
    assert len(outcomes) == BETA_CAP and len(refused) == 1, outcomes
    assert refused[0][2] == Code.ORG_CAP, outcomes
    # Once the cap is reached, the next admission is refused at the door.
    late = keys[-1]
    err = net.refused(late, "admit", {"credential": creds[late.public_hex]})
    assert (err.stage, err.code) == ("CheckTx", Code.ORG_CAP), err
    assert f"reached its enrollment cap of {BETA_CAP}" in err.log

    admitted = [k for k in keys if net.query(f"/member/{_did(k)}")[0] == 0]
    assert len(admitted) == BETA_CAP
    assert all(net.get(f"/member/{_did(k)}")["organization"] == BETA for k in admitted)
    for k in (refused[0][0], late):
        _no_member(net, k)


# ----------------------------------------------------------------------------- 3. privacy budget

def test_over_budget_contribution_is_refused_and_not_charged(net: Net) -> None:
    task = "dp-small"
    budget_micro = 4_000_000
    assert _mech_epsilon(BIG_DP) > budget_micro >= _mech_epsilon(SMALL_DP)
    trainer = _key("dp-trainer")
    net.sub(trainer).send("admit", {"credential": dev_credential(net.home, trainer, "trainer", tasks=[task])})
    net.create_task(task, epsilon="4")
    rnd = net.open_round(task, 1)
    assert rnd["selected"] == [trainer.public_hex]

    with pytest.raises(TxRejectedError) as info:
        net.commit(trainer, task, 1, 0, BIG_DP)
    assert (info.value.stage, info.value.code) == ("CheckTx", Code.BUDGET_EXCEEDED), info.value
    assert "over the budget of 4.000000" in info.value.log
    budget = net.get(f"/budget/{task}/{_did(trainer)}")
    assert (budget["epsilon_budget_micro"], budget["epsilon_spent_micro"], budget["contributions"],
            budget["rdp"]) == (budget_micro, 0, 0, None)
    assert net.get(f"/contributions/{task}/1") == []

    # A mechanism within the budget is accepted and debited exactly what the accountant computes.
    out = net.commit(trainer, task, 1, 0, SMALL_DP)
    assert int(out.attr("fl", "epsilon_micro") or -1) == _mech_epsilon(SMALL_DP)
    budget = net.get(f"/budget/{task}/{_did(trainer)}")
    assert (budget["epsilon_spent_micro"], budget["contributions"]) == (_mech_epsilon(SMALL_DP), 1)

    # The same mechanism again, composed on the stored curve, no longer fits: refused, nothing charged.
    assert _mech_epsilon(SMALL_DP, budget["rdp"]) > budget_micro
    net.close_and_propose(task, 1, [trainer], payload_ref(f"{task}-v1"))
    assert net.open_round(task, 2)["selected"] == [trainer.public_hex]
    with pytest.raises(TxRejectedError) as info:
        net.commit(trainer, task, 2, 0, SMALL_DP)
    assert info.value.code == Code.BUDGET_EXCEEDED, info.value
    after = net.get(f"/budget/{task}/{_did(trainer)}")
    assert (after["epsilon_spent_micro"], after["contributions"], after["rdp"]) == \
        (budget["epsilon_spent_micro"], 1, budget["rdp"])
    assert net.get(f"/round/{task}/2")["contributions"] == 0


# ----------------------------------------------------------------------------- 4. governance changes a policy

def test_governance_vote_lowers_the_budget_and_it_takes_effect(net: Net) -> None:
    task = "gov-dp"
    cost = _mech_epsilon(MID_DP)
    assert 4_000_000 < cost <= 10_000_000
    first, second = _key("gov-t1"), _key("gov-t2")
    net.admit_all([(k, dev_credential(net.home, k, "trainer", tasks=[task])) for k in (first, second)])
    net.create_task(task, epsilon="10", round_size=2)
    assert sorted(net.open_round(task, 1)["selected"]) == sorted([first.public_hex, second.public_hex])
    net.commit(first, task, 1, 0, MID_DP)  # fits the budget of 10
    assert net.get(f"/budget/{task}/{_did(first)}")["epsilon_spent_micro"] == cost

    gov = net.get("/governance")
    assert gov["params"]["voting_period_blocks"] == VOTING_PERIOD
    assert gov["weights"] == {BETA: 1, DEV_ORG: 1} and gov["total_weight"] == 2
    # Only organization administrators govern.
    err = net.refused(first, "submit_proposal", {"title": "mine", "action": {
        "type": "set_task_policy", "task_id": task, "changes": {"epsilon": "100"}}})
    assert err.code == Code.UNAUTHORIZED, err

    proposal = net.govern("tighter budget", {"type": "set_task_policy", "task_id": task,
                                             "changes": {"epsilon": "4"}})
    assert proposal["status"] == "passed", proposal
    assert proposal["outcome"] == "passed" and proposal["reason"] is None
    assert proposal["tally"] == {"yes": 2, "no": 0, "abstain": 0, "total": 2, "quorum_reached": True,
                                 "passed": True}
    assert sorted(proposal["votes"]) == [BETA, DEV_ORG]
    assert proposal["final_height"] == proposal["deadline_height"]
    # a vote after the tally is refused
    err = net.refused(net.beta_admin, "vote", {"proposal_id": proposal["id"], "option": "no"})
    assert err.code == Code.VOTING_CLOSED, err

    # The identical contribution that fit before now exceeds the budget.
    budget = net.get(f"/budget/{task}/{_did(second)}")
    assert (budget["epsilon_budget_micro"], budget["epsilon_spent_micro"]) == (4_000_000, 0)
    with pytest.raises(TxRejectedError) as info:
        net.commit(second, task, 1, 0, MID_DP)
    assert (info.value.stage, info.value.code) == ("CheckTx", Code.BUDGET_EXCEEDED), info.value
    assert net.get(f"/budget/{task}/{_did(second)}")["epsilon_spent_micro"] == 0
    assert net.get(f"/round/{task}/1")["contributions"] == 1
    # what was spent under the old budget stays spent
    spent = net.get(f"/budget/{task}/{_did(first)}")
    assert (spent["epsilon_spent_micro"], spent["epsilon_remaining_micro"]) == (cost, 0)


# ----------------------------------------------------------------------------- 5. quarantine and rollback

def _upload(store: ContentStore, weights: dict[str, Any]) -> dict[str, Any]:
    from fedledger.sdk.tensors import encode_tensors

    raw = encode_tensors(weights)
    cid = store.put(raw)
    store.pin(cid)
    return {"cid": cid, "sha256": hashlib.sha256(raw).hexdigest(), "size": len(raw)}


def test_backdoored_version_is_quarantined_and_a_promoted_one_rolled_back(net: Net) -> None:
    from fedledger.node.evaluator import Evaluator
    from fedledger.node.probes import TriggerProbe
    from fedledger.sdk.ml.data import ClientData, load_digits_federated
    from fedledger.sdk.ml.model import initial_weights
    from fedledger.sdk.ml.train import train_local

    task = "lifecycle"
    probe = TriggerProbe(target_label=0)
    (train,), test = load_digits_federated(1, seed=0)
    v0 = initial_weights(SPEC, 0)
    clean_delta = train_local(SPEC, v0, train, epochs=5, lr=0.1, seed=1).delta
    v1 = {k: v0[k] + clean_delta[k] for k in v0}
    bad_delta = train_local(SPEC, v1, probe.poison(train, 0.2, seed=0), epochs=5, lr=0.1, seed=2).delta
    v2 = {k: v1[k] + bad_delta[k] for k in v1}

    trainer, ev1, ev2 = _key("lc-trainer"), _key("lc-ev1"), _key("lc-ev2")
    net.admit_all([(trainer, dev_credential(net.home, trainer, "trainer", tasks=[task])),
                   (ev1, dev_credential(net.home, ev1, "evaluator")),
                   (ev2, dev_credential(net.home, ev2, "evaluator"))])
    net.create_task(task, epsilon="100", initial=_upload(net.store, v0))
    # the genesis defaults apply
    assert net.get(f"/lifecycle/{task}")["params"] == {**LIFECYCLE, "max_regression_ppm": 1_000_000}
    # each evaluator measures on its own half of the held-out digits
    half = len(test) // 2
    canaries = [ClientData(X=test.X[:half], y=test.y[:half]), ClientData(X=test.X[half:], y=test.y[half:])]
    evaluators = [Evaluator(net.sub(k), net.store, task, c, probe) for k, c in zip((ev1, ev2), canaries,
                                                                                   strict=True)]

    def run_round(number: int, base: int, weights: dict[str, Any]) -> int:
        assert net.open_round(task, number)["base_version"] == base
        net.commit(trainer, task, number, base, SMALL_DP)
        version = net.close_and_propose(task, number, [trainer], _upload(net.store, weights))
        assert evaluators[0].step() == Step(Action.ATTESTED, ANY, version=version)
        # one evaluator's weight (1.0) is below the quorum (2.0): still undecided
        assert net.get(f"/version/{task}/{version}")["status"] == "proposed"
        assert evaluators[1].step() == Step(Action.ATTESTED, ANY, version=version)
        assert [e.step().action for e in evaluators] == [Action.IDLE, Action.IDLE]
        return version

    # Round 1: a clean model is promoted and becomes the last good version.
    assert run_round(1, 0, v1) == 1
    promoted = net.get(f"/version/{task}/1")
    assert promoted["status"] == "promoted", promoted
    assert promoted["decision"]["reasons"] == []
    assert net.get(f"/lifecycle/{task}")["last_good"] == 1

    # Round 2 trains from version 1; its aggregate carries a backdoor: quarantined on the trigger probe.
    assert run_round(2, 1, v2) == 2
    bad = net.get(f"/version/{task}/2")
    assert bad["status"] == "quarantined", bad
    assert bad["decision"]["reasons"] == ["backdoor_asr_above_max"], bad["decision"]
    assert bad["decision"]["backdoor_asr_ppm"] > LIFECYCLE["max_backdoor_asr_ppm"]
    # its clean accuracy passes: only the probe catches it
    assert bad["decision"]["canary_accuracy_ppm"] >= LIFECYCLE["min_canary_accuracy_ppm"]
    atts = net.get(f"/attestations/{task}/2")
    assert sorted(a["evaluator"] for a in atts) == sorted([_did(ev1), _did(ev2)])
    assert all(e.evaluations[-1].metrics["backdoor"]["asr_ppm"] > 500_000 for e in evaluators)
    lifecycle = net.get(f"/lifecycle/{task}")
    assert lifecycle["last_good"] == 1
    assert [(h["action"], h["version"]) for h in lifecycle["history"]] == [("promoted", 1), ("quarantined", 2)]

    # Governance rolls the last good version back.
    proposal = net.govern("roll back lifecycle", {"type": "rollback", "task_id": task})
    assert proposal["status"] == "passed", proposal
    lifecycle = net.get(f"/lifecycle/{task}")
    assert lifecycle["last_good"] == 0
    last = lifecycle["history"][-1]
    assert (last["action"], last["versions"], last["last_good_before"], last["last_good_after"]) == \
        ("rolled_back", [1], 1, 0)
    assert net.get(f"/version/{task}/1")["status"] == "rolled_back"
    assert net.get(f"/version/{task}/2")["status"] == "quarantined"
    # and it takes effect: the next round trains from version 0 again
    assert net.open_round(task, 3)["base_version"] == 0


# ----------------------------------------------------------------------------- 6. a verified lineage

def test_lineage_from_this_net_verifies_against_the_genesis_validators(net: Net) -> None:
    task = "prov"
    trainer = _key("prov-trainer")
    net.sub(trainer).send("admit", {"credential": dev_credential(net.home, trainer, "trainer", tasks=[task])})
    net.create_task(task, epsilon="50")
    net.open_round(task, 1)
    net.commit(trainer, task, 1, 0, SMALL_DP)
    version = net.close_and_propose(task, 1, [trainer], payload_ref(f"{task}-v1"))
    res = net.rpc.abci_query(f"/lineage/{task}/{version}", prove=True)
    assert res.code == 0, res.log
    lineage = json.loads(res.value)
    assert [c["participant"] for c in lineage["contributions"]] == [trainer.public_hex]
    verdict = check_query_proof(net.rpc, res, net.trust)
    assert verdict["verified"] is True and verdict["header_signatures_checked"] is True
    assert verdict["signed_power"] * 3 > verdict["total_power"] * 2
