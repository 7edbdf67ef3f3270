"""Record-level proofs of composite answers (lineage, lists, budgets) on a real 4-validator localnet.

A minimal round runs through the Python API (development credentials, a task with a privacy
policy, two DP contributions, close, propose); then `check_query_proof` checks the lineage and
list answers against header H+1, itself verified against the genesis validator set.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.abci_app.query_proofs import PROOF_OP_TYPE
from fedledger.abci_app.store.proof import RecordProof
from fedledger.localnet import manager
from fedledger.localnet.dev import dev_credential, localnet_trust_root
from fedledger.localnet.ports import find_free_base_port
from fedledger.sdk.keys import Key
from fedledger.sdk.lightclient import TrustRoot
from fedledger.sdk.provenance import ProofFailedError, check_query_proof
from fedledger.sdk.rpc import CometRPC
from fedledger.sdk.submit import Submitter
from tests.integration.conftest import down_if_running
from tests.support import named_key, payload_ref, use_pinned_cometbft

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

TASK = "proofs"
POLICY = {"epsilon": "50", "delta": "1e-5", "org_epsilon": None}
MECHANISM = {"noise_multiplier": "1", "sample_rate": "0.05", "steps": 60, "clip_norm": "1"}








@dataclass
class Round:
    rpc: CometRPC
    trust: TrustRoot
    trainers: list[Key]
    included: list[str]


@pytest.fixture(scope="module")
def done(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Round]:
    restore_env = use_pinned_cometbft()
    home = tmp_path_factory.mktemp("proofs") / "net"
    rpc: CometRPC | None = None
    try:
        spec = manager.up(home, 4, base_port=find_free_base_port(40), timeout=60, log=lambda _msg: None)
        rpc = CometRPC(spec.nodes[0].rpc_url)
        chain_id = str(rpc.status()["node_info"]["network"])
        agg, trainers = named_key("proofs-agg"), [named_key(f"proofs-t{i}") for i in range(3)]
        Submitter(rpc, agg, chain_id).send("admit", {"credential": dev_credential(home, agg, "aggregator")})
        subs = [Submitter(rpc, t, chain_id) for t in trainers]
        for h in [s.broadcast("admit", {"credential": dev_credential(home, s.key, "trainer")}) for s in subs]:
            subs[0].wait(h)
        owner = Submitter(rpc, agg, chain_id)
        owner.send("create_task", {"task_id": TASK, "model_spec": "mlp-digits", "round_size": 3,
                                   "min_contributions": 1, "deadline_blocks": 1000, "aggregator": agg.public_hex,
                                   "initial_model": payload_ref("v0"), "privacy": POLICY})
        owner.send("open_round", {"task_id": TASK, "round": 1})
        hashes = [s.broadcast("commit_contribution", {"task_id": TASK, "round": 1, "base_version": 0,
                                                      "num_examples": 50 + i, "dp": MECHANISM, **payload_ref(f"u{i}")})
                  for i, s in enumerate(subs)]
        for h in hashes:
            subs[0].wait(h)
        owner.send("close_round", {"task_id": TASK, "round": 1})
        included = sorted(t.public_hex for t in trainers[:2])  # the aggregator dropped one
        owner.send("propose_version", {"task_id": TASK, "round": 1, **payload_ref("v1"), "contributors": included})
        yield Round(rpc, localnet_trust_root(home), trainers, included)
    finally:
        if rpc is not None:
            rpc.close()
        restore_env()
        down_if_running(home)


def test_lineage_is_verified_against_the_genesis_validators(done: Round) -> None:
    res = done.rpc.abci_query(f"/lineage/{TASK}/1", prove=True)
    assert res.code == 0, res.log
    lineage = json.loads(res.value)
    assert [c["participant"] for c in lineage["contributions"]] == done.included
    assert [a["version"] for a in lineage["ancestors"]] == [0]
    assert len(res.proof_ops) == 4 and {op[0] for op in res.proof_ops} == {PROOF_OP_TYPE}
    verdict = check_query_proof(done.rpc, res, done.trust)
    assert verdict["verified"] is True and verdict["header_signatures_checked"] is True
    assert verdict["records_proven"] == 4 and verdict["total_power"] == 40 and verdict["signed_power"] > 26

    tampered = dataclasses.replace(res, value=res.value.replace(b'"status":"proposed"', b'"status":"promoted"'))
    assert tampered.value != res.value
    with pytest.raises(ProofFailedError, match="the answer differs"):
        check_query_proof(done.rpc, tampered, done.trust)
    with pytest.raises(ProofFailedError, match="does not prove"):  # a node leaving a contribution out
        check_query_proof(done.rpc, dataclasses.replace(res, proof_ops=res.proof_ops[1:]), done.trust)
    # the same answer presented as the answer to another question
    with pytest.raises(ProofFailedError):
        check_query_proof(done.rpc, dataclasses.replace(res, path=f"/lineage/{TASK}/0"), done.trust)


def test_lists_and_absences_are_verified(done: Round) -> None:
    res = done.rpc.abci_query(f"/contributions/{TASK}/1", prove=True)
    assert len(json.loads(res.value)) == 3
    verdict = check_query_proof(done.rpc, res, done.trust)
    assert verdict["complete_listings"] == [f"fl/contrib/{TASK}/0000000001/"]
    # dropping one contribution (record and answer entry): the round's counter gives it away
    ops = [op for op in res.proof_ops if not op[1].endswith(done.trainers[2].public_hex.encode())]
    short = [c for c in json.loads(res.value) if c["participant"] != done.trainers[2].public_hex]
    cut = dataclasses.replace(res, proof_ops=tuple(ops),
                              value=json.dumps(short, sort_keys=True, separators=(",", ":")).encode())
    with pytest.raises(ProofFailedError, match="not proven complete"):
        check_query_proof(done.rpc, cut, done.trust)

    versions = done.rpc.abci_query(f"/versions/{TASK}", prove=True)
    assert check_query_proof(done.rpc, versions, done.trust)["absences_proven"] == 1  # version 2 does not exist

    stranger = did_from_private_key(named_key("never-admitted").private)
    budget = done.rpc.abci_query(f"/budget/{TASK}/{stranger}", prove=True)
    assert json.loads(budget.value)["epsilon_spent_micro"] == 0
    assert check_query_proof(done.rpc, budget, done.trust)["absences_proven"] == 1
    assert [RecordProof.decode(op[2]).value is None for op in budget.proof_ops].count(True) == 1
