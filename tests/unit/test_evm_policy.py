"""Policy contracts at admission and promotion: defaults, denials, reverts and out-of-gas as denies, upgrade by vote."""

from __future__ import annotations

from typing import Any

from eth_abi import encode
from eth_utils import keccak

from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.abci_app.errors import Code
from fedledger.abci_app.evm_engine.policy import POLICY_LOG_ADDRESS, POLICY_LOG_TOPIC
from fedledger.abci_app.modules.evm.genesis import deployed_address
from tests.evm_support import EvmChain, artifact_code, const_code, deploy_code, evm_genesis, loop_code, query
from tests.support import DP, POLICY, Chain, Signer, model_ref

TASK = "digits"
ERROR = bytes.fromhex("08c379a0")


def contract(name: str, init_code: bytes, kind: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"name": name, "init_code": "0x" + init_code.hex()}
    if kind is not None:
        item["default_policy"] = kind
    return item


def role_policy(*roles: str) -> bytes:
    return artifact_code("RoleAdmissionPolicy") + encode(["string[]"], [list(roles)])


def chain_with_admission(init_code: bytes, **params: Any) -> EvmChain:
    """A chain whose default admission policy is `init_code` (and the default promotion policy)."""
    promotion = artifact_code("PromotionPolicy")
    return EvmChain(app_state=evm_genesis(policies=False, contracts=[
        contract("Admission", init_code, "admission"), contract("PromotionPolicy", promotion, "promotion")],
        **params))


def policy_events(result: Any) -> list[dict[str, str]]:
    return [dict(e.attributes) for e in result.events if e.type == "evm_policy"]


# ----- admission -----
def test_the_default_admission_policy_admits_and_is_recorded() -> None:
    chain = EvmChain()
    res = chain.ok(Signer(1).admit("trainer"))[0]
    (event,) = policy_events(res)
    assert event["kind"] == "admission" and event["decision"] == "allow"
    assert event["reason"] == "admitted by the default policy"
    assert event["contract"] == "0x" + deployed_address(0).hex()
    assert 0 < int(event["gas_used"]) < 200_000
    receipt = query(chain, f"/evm/receipt/{event['call']}")
    assert receipt["kind"] == "policy:admission" and receipt["status"] == 1
    # The contract's own AdmissionChecked log, then the chain's PolicyDecision log.
    contract_log, chain_log = receipt["logs"]
    assert contract_log["topics"][0] == "0x" + keccak(text="AdmissionChecked(string,string,bool,string)").hex()
    assert chain_log["address"] == "0x" + POLICY_LOG_ADDRESS.hex()
    assert chain_log["topics"] == ["0x" + POLICY_LOG_TOPIC.hex(), "0x" + deployed_address(0).rjust(32, b"\0").hex()]
    logs = query(chain, f"/evm/logs/1/{chain.height}/" + _filter({"address": "0x" + POLICY_LOG_ADDRESS.hex()}))
    assert [log["tx_hash"] for log in logs["logs"]] == [event["call"]]


def _filter(flt: dict[str, Any]) -> str:
    from fedledger.abci_app.modules.evm.queries import payload_segments

    return payload_segments(flt)


def test_a_denying_policy_refuses_admission_in_checktx_and_finalizeblock() -> None:
    chain = chain_with_admission(role_policy("evaluator", "aggregator"))
    trainer = Signer(1)
    tx = trainer.admit("trainer")
    res = chain.sm.check_tx(tx)
    assert res.code == Code.POLICY_DENIED
    assert res.log == (f"admission policy 0x{deployed_address(0).hex()} denied: role trainer is not admitted by this "
                       "policy")
    assert chain.block(tx)[0].code == Code.POLICY_DENIED
    assert chain.sm.query(f"/member/{did_from_private_key(trainer.key)}", b"", False).code == Code.QUERY_NOT_FOUND
    res = chain.ok(Signer(2).admit("evaluator"))[0]
    assert policy_events(res)[0]["reason"] == "role evaluator is admitted"


def test_a_reverting_policy_is_a_deterministic_deny_and_the_chain_goes_on() -> None:
    chain = chain_with_admission(deploy_code(const_code(ERROR + encode(["string"], ["closed for audit"]),
                                                        revert=True)))
    res = chain.block(Signer(1).admit("trainer"))[0]
    assert res.code == Code.POLICY_DENIED
    assert "denied: policy call failed (reverted: closed for audit): deny" in res.log
    chain.ok()  # the chain keeps making blocks
    assert chain.height == 3


def test_out_of_gas_and_malformed_answers_are_denies() -> None:
    chain = chain_with_admission(deploy_code(loop_code()), policy_gas=50_000)
    res = chain.block(Signer(1).admit("trainer"))[0]
    assert res.code == Code.POLICY_DENIED and "policy call failed (out of gas): deny" in res.log
    chain = chain_with_admission(deploy_code(const_code(b"\x01")))
    res = chain.block(Signer(1).admit("trainer"))[0]
    assert res.code == Code.POLICY_DENIED and "returned 1 bytes that are not (bool, string)" in res.log
    # A policy that answers (true, reason) with a constant admits.
    chain = chain_with_admission(deploy_code(const_code(encode(["bool", "string"], [True, "fine"]))))
    assert policy_events(chain.ok(Signer(1).admit("trainer"))[0])[0]["reason"] == "fine"


# ----- promotion -----
GOOD = {"canary_accuracy_ppm": 900_000, "backdoor_asr_ppm": 20_000}
BACKDOORED = {"canary_accuracy_ppm": 880_000, "backdoor_asr_ppm": 950_000}
BOTH_BAD = {"canary_accuracy_ppm": 100_000, "backdoor_asr_ppm": 950_000}


class World:
    """Owner, aggregator, two trainers and two evaluators on TASK, with one proposed version."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.owner, self.agg = Signer(10), Signer(11)
        self.trainers = [Signer(20), Signer(21)]
        self.evals = [Signer(40), Signer(41)]
        chain.ok(self.owner.admit("validator-admin"), self.agg.admit("aggregator"),
                 *[t.admit("trainer") for t in self.trainers], *[e.admit("evaluator") for e in self.evals])
        chain.ok(self.owner.tx("create_task", {
            "task_id": TASK, "model_spec": "mlp-digits", "round_size": 2, "min_contributions": 1,
            "deadline_blocks": 30, "aggregator": self.agg.hex, "initial_model": model_ref("v0"), "privacy": POLICY}))

    def propose(self) -> int:
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

    def decide(self, metrics: dict[str, int]) -> tuple[dict[str, Any], Any]:
        version = self.propose()
        results = self.chain.ok(*[e.tx("attest_version", {"task_id": TASK, "version": version,
                                                         "metrics_sha256": "ab" * 32, **metrics}) for e in self.evals])
        return query(self.chain, f"/version/{TASK}/{version}"), results[-1]


def test_the_default_promotion_policy_decides_as_the_native_rule() -> None:
    policy_chain, native_chain = EvmChain(), EvmChain(app_state=evm_genesis(policies=False))
    outcomes = []
    for chain in (policy_chain, native_chain):
        world = World(chain)
        outcomes.append([world.decide(m) for m in (GOOD, BACKDOORED, BOTH_BAD)])
    for (with_policy, result), (native, _) in zip(*outcomes, strict=True):
        assert with_policy["status"] == native["status"]
        assert with_policy["decision"]["reasons"] == native["decision"]["reasons"]
        assert "policy" not in native["decision"]
        assert with_policy["decision"]["policy"]["contract"] == "0x" + deployed_address(1).hex()
        (event,) = policy_events(result)
        assert event["kind"] == "promotion" and event["task"] == TASK
    statuses = [v["status"] for v, _ in outcomes[0]]
    assert statuses == ["promoted", "quarantined", "quarantined"]
    assert outcomes[0][2][0]["decision"]["reasons"] == ["canary_accuracy_below_min", "backdoor_asr_above_max"]


def test_a_reverting_promotion_policy_quarantines() -> None:
    revert = deploy_code(const_code(ERROR + encode(["string"], ["no promotions"]), revert=True))
    chain = EvmChain(app_state=evm_genesis(policies=False, contracts=[contract("P", revert, "promotion")]))
    version, _ = World(chain).decide(GOOD)
    assert version["status"] == "quarantined"
    assert version["decision"]["reasons"] == ["policy call failed (reverted: no promotions): deny"]
    assert version["decision"]["policy"]["allow"] is False


def test_a_looping_promotion_policy_spends_exactly_its_gas_budget_and_quarantines() -> None:
    chain = EvmChain(app_state=evm_genesis(policies=False, policy_gas=60_000,
                                           contracts=[contract("Loop", deploy_code(loop_code()), "promotion")]))
    version, result = World(chain).decide(GOOD)
    assert version["status"] == "quarantined"
    assert version["decision"]["reasons"] == ["policy call failed (out of gas): deny"]
    assert version["decision"]["policy"]["gas_used"] == 60_000
    (event,) = policy_events(result)
    receipt = query(chain, f"/evm/receipt/{event['call']}")
    assert receipt["status"] == 0 and receipt["gas_used"] == 60_000 and receipt["error"] == "out of gas"
    # Only the chain's PolicyDecision log: the reverted call's own effects are gone.
    assert [log["address"] for log in receipt["logs"]] == ["0x" + POLICY_LOG_ADDRESS.hex()]


# ----- upgrade by vote -----
def pass_vote(chain: EvmChain, action: dict[str, Any]) -> dict[str, Any]:
    gov = chain.gov
    chain.ok(gov.tx("submit_proposal", {"title": "policy", "action": action}))
    pid = query(chain, "/governance")["next_proposal_id"] - 1
    chain.ok(gov.tx("vote", {"proposal_id": pid, "option": "yes"}))
    while query(chain, f"/proposal/{pid}")["status"] == "voting":
        chain.ok()
    return dict(query(chain, f"/proposal/{pid}"))


def test_governance_points_a_task_at_a_new_admission_policy() -> None:
    chain = EvmChain(app_state=evm_genesis(contracts=[contract("NoTrainers", role_policy("evaluator"))]))
    World(chain)
    new_policy = deployed_address(2)  # after the two default policies
    assert query(chain, f"/evm/policy/admission/{TASK}") == {
        "kind": "admission", "task": TASK, "contract": "0x" + deployed_address(0).hex(), "scope": "default"}
    # Pointing at an address without code is refused when proposed.
    res = chain.block(chain.gov.tx("submit_proposal", {"title": "x", "action": {
        "type": "set_policy_contract", "kind": "admission", "task_id": TASK, "address": "0x" + "12" * 20}}))[0]
    assert res.code == Code.ACTION_INVALID and "no contract is deployed" in res.log
    rec = pass_vote(chain, {"type": "set_policy_contract", "kind": "admission", "task_id": TASK,
                            "address": "0x" + new_policy.hex()})
    assert rec["status"] == "passed" and rec.get("failure") is None, rec
    assert query(chain, f"/evm/policy/admission/{TASK}")["scope"] == "task"
    # The next admission for the task follows the new rule; one naming no task still follows the default.
    res = chain.block(Signer(50).admit("trainer", tasks=[TASK]))[0]
    assert res.code == Code.POLICY_DENIED and "role trainer is not admitted by this policy" in res.log
    assert chain.ok(Signer(51).admit("trainer"))[0].code == 0
    assert chain.ok(Signer(52).admit("evaluator", tasks=[TASK]))[0].code == 0
    # Removing the task's pointer returns it to the default.
    pass_vote(chain, {"type": "set_policy_contract", "kind": "admission", "task_id": TASK, "address": None})
    assert chain.ok(Signer(53).admit("trainer", tasks=[TASK]))[0].code == 0


def test_set_policy_contract_bodies_are_checked() -> None:
    chain = EvmChain()
    for action, needle in (
        ({"kind": "reputation", "address": "0x" + "11" * 20}, "kind must be one of"),
        ({"kind": "admission", "address": None}, "address may be null only with a task_id"),
        ({"kind": "admission", "address": "0x11"}, "address:"),
        ({"kind": "admission", "address": "0x" + "11" * 20, "task_id": "Bad Id"}, "task_id must be"),
    ):
        res = chain.block(chain.gov.tx("submit_proposal", {"title": "x", "action": {
            "type": "set_policy_contract", **action}}))[0]
        assert res.code == Code.INVALID_BODY and needle in res.log, (action, res.log)
    res = chain.block(chain.gov.tx("submit_proposal", {"title": "x", "action": {
        "type": "set_policy_contract", "kind": "admission", "task_id": "nope", "address": "0x" + "11" * 20}}))[0]
    assert res.code == Code.NOT_FOUND
