"""Validator set changes by governance: the set kept from InitChain, the three actions, FinalizeBlock's updates."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from fedledger.abci_app.app import FedLedgerApp
from fedledger.abci_app.canonical import canonical_bytes
from fedledger.abci_app.context import ValidatorUpdate
from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.abci_app.errors import Code
from fedledger.abci_app.modules.governance.validators import (
    MAX_POWER,
    VALIDATORS_KEY,
    init_validators,
    load_validators,
    put_validator,
    take_updates,
)
from fedledger.abci_app.proto import types as pb
from fedledger.abci_app.state_machine import StateMachine
from fedledger.abci_app.store import CommittedStore
from tests.support import CHAIN, ISSUER, Chain, Signer

ORGS = ("org-a", "org-b", "org-c", "org-d")
ADMINS = {org: 600 + i for i, org in enumerate(ORGS)}
PERIOD = 3
NEW_ISSUER = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"valset-new-issuer").digest())
NEW_ADMIN = 650


def raw_key(name: str) -> bytes:
    priv = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(name.encode()).digest())
    return priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


GENESIS_KEYS = [raw_key(f"genesis-validator-{i}") for i in range(4)]
NEW_KEY = b64(raw_key("org-e-validator"))


def did(seed: int) -> str:
    return did_from_private_key(Signer(seed).key)


def app_state() -> bytes:
    orgs = [{"id": org, "name": org.upper(), "enrollment_cap": 10, "issuers": [did_from_private_key(ISSUER)],
             "admins": [did(ADMINS[org])]} for org in ORGS]
    return canonical_bytes({"identity": {"organizations": orgs},
                            "governance": {"voting_period_blocks": PERIOD, "quorum_ppm": 500_000,
                                           "threshold_ppm": 500_000}})


class Net:
    """Four organizations, four genesis validators of power 10, and each organization's admin signer."""

    def __init__(self, keys: list[bytes] | None = None) -> None:
        validators = [ValidatorUpdate(pub_key=k, power=10) for k in (GENESIS_KEYS if keys is None else keys)]
        self.chain = Chain(CommittedStore(":memory:"), app_state=app_state(), validators=validators)
        self.admins = {org: Signer(seed) for org, seed in ADMINS.items()}

    def query(self, path: str) -> Any:
        res = self.chain.sm.query(path, b"", False)
        assert res.code == 0, res.log
        return json.loads(res.value)

    def submit(self, action: dict[str, Any]) -> int:
        self.chain.ok(self.admins["org-a"].tx("submit_proposal", {"title": "valset", "action": action}))
        return int(self.query("/governance")["next_proposal_id"]) - 1

    def pass_(self, *actions: dict[str, Any]) -> tuple[list[Any], list[ValidatorUpdate]]:
        """Submit the actions in one block, all vote yes, run to the deadline; the tally block's updates."""
        a = self.admins["org-a"]
        self.chain.ok(*[a.tx("submit_proposal", {"title": "valset", "action": act}) for act in actions])
        last = int(self.query("/governance")["next_proposal_id"]) - 1
        pids = list(range(last - len(actions) + 1, last + 1))
        self.chain.ok(*[self.admins[org].tx("vote", {"proposal_id": pid, "option": "yes"})
                        for pid in pids for org in ORGS])
        deadline = self.query(f"/proposal/{pids[0]}")["deadline_height"]
        updates: list[ValidatorUpdate] = []
        while self.chain.height < deadline:
            assert self.chain.sm.validator_updates == []  # nothing is emitted before the tally
            self.chain.ok()
            updates = self.chain.sm.validator_updates
        return [self.query(f"/proposal/{pid}") for pid in pids], updates

    def powers(self) -> dict[str, int]:
        return {v["pub_key"]: v["power"] for v in self.query("/validators")["validators"]}


def new_org(org_id: str = "org-e") -> dict[str, Any]:
    return {"id": org_id, "name": "Org E", "enrollment_cap": 5, "issuers": [did_from_private_key(NEW_ISSUER)],
            "admins": [did(NEW_ADMIN)]}


def add_new(power: int = 10, key: str = NEW_KEY) -> dict[str, Any]:
    return {"type": "add_validator", "pub_key": key, "power": power, "new_organization": new_org(), "weight": 1}


# ----- the set from genesis -----
def test_genesis_validators_are_the_apps_set_and_the_query_is_proven() -> None:
    net = Net()
    net.chain.ok()  # genesis state is committed with the first block
    answer = net.query("/validators")
    assert answer["count"] == 4 and answer["total_power"] == 40
    assert [v["pub_key"] for v in answer["validators"]] == sorted(b64(k) for k in GENESIS_KEYS)
    assert all(v["organization"] is None and v["effective_height"] == 0 for v in answer["validators"])
    proven = net.chain.sm.query("/validators", b"", True)
    assert proven.key == VALIDATORS_KEY and proven.proof and [p.key for p in proven.proofs] == [VALIDATORS_KEY]
    assert net.chain.sm.validator_updates == []


def test_a_chain_without_genesis_validators_writes_no_set() -> None:
    # In-process chains (no InitChain validators) keep the genesis state they had before.
    plain = Chain(CommittedStore(":memory:"), app_state=app_state())
    plain.ok()
    assert plain.sm.query("/validators", b"", False).code == 0
    assert plain.store.get(VALIDATORS_KEY) is None


# ----- the three actions -----
def test_a_fifth_organization_joins_with_its_validator() -> None:
    net = Net()
    (rec,), updates = net.pass_(add_new(power=10))
    assert rec["status"] == "passed", rec.get("reason")
    assert updates == [ValidatorUpdate(pub_key=raw_key("org-e-validator"), power=10)]
    entry = next(v for v in net.query("/validators")["validators"] if v["pub_key"] == NEW_KEY)
    # CometBFT applies the tally block's updates two blocks later.
    assert entry == {"pub_key": NEW_KEY, "power": 10, "organization": "org-e",
                     "effective_height": rec["final_height"] + 2}
    assert net.query("/governance")["weights"]["org-e"] == 1
    assert did_from_private_key(NEW_ISSUER) in net.query("/org/org-e")["issuers"]
    net.chain.ok()
    assert net.chain.sm.validator_updates == []  # emitted once, in the tally block only


def test_set_power_and_remove_with_its_organization() -> None:
    net = Net()
    net.pass_(add_new(power=10))
    (rec,), updates = net.pass_({"type": "set_validator_power", "pub_key": NEW_KEY, "power": 7})
    assert rec["status"] == "passed" and updates == [ValidatorUpdate(raw_key("org-e-validator"), 7)]
    assert net.powers()[NEW_KEY] == 7
    genesis = b64(GENESIS_KEYS[0])
    (rec,), updates = net.pass_({"type": "set_validator_power", "pub_key": genesis, "power": 12})
    assert rec["status"] == "passed" and updates == [ValidatorUpdate(GENESIS_KEYS[0], 12)]
    (rec,), updates = net.pass_({"type": "remove_validator", "pub_key": NEW_KEY, "remove_organization": True})
    assert rec["status"] == "passed", rec.get("reason")
    assert updates == [ValidatorUpdate(raw_key("org-e-validator"), 0)]
    assert NEW_KEY not in net.powers() and len(net.powers()) == 4
    assert "org-e" not in net.query("/governance")["weights"]
    assert net.chain.sm.query("/org/org-e", b"", False).code == Code.QUERY_NOT_FOUND


def test_remove_a_genesis_validator_keeps_the_organizations() -> None:
    net = Net()
    gone = b64(GENESIS_KEYS[3])
    (rec,), updates = net.pass_({"type": "remove_validator", "pub_key": gone})
    assert rec["status"] == "passed" and updates == [ValidatorUpdate(GENESIS_KEYS[3], 0)]
    assert sorted(net.powers()) == sorted(b64(k) for k in GENESIS_KEYS[:3])
    assert set(net.query("/governance")["weights"]) == set(ORGS)


def test_changes_to_one_validator_in_one_block_become_one_update() -> None:
    # CometBFT refuses a block whose updates name a key twice: the last power wins, once.
    net = Net()
    genesis = b64(GENESIS_KEYS[1])
    recs, updates = net.pass_({"type": "set_validator_power", "pub_key": genesis, "power": 5},
                              {"type": "set_validator_power", "pub_key": genesis, "power": 8},
                              {"type": "set_validator_power", "pub_key": b64(GENESIS_KEYS[0]), "power": 9})
    assert [r["status"] for r in recs] == ["passed"] * 3
    assert updates == sorted([ValidatorUpdate(GENESIS_KEYS[1], 8), ValidatorUpdate(GENESIS_KEYS[0], 9)],
                             key=lambda u: b64(u.pub_key))
    assert net.powers()[genesis] == 8


def test_state_moved_since_submit_fails_the_second_action() -> None:
    net = Net()
    first, second = add_new(), {"type": "add_validator", "pub_key": NEW_KEY, "power": 5, "organization": "org-b"}
    recs, updates = net.pass_(first, second)
    assert [r["status"] for r in recs] == ["passed", "failed"]
    assert recs[1]["reason"].startswith("ALREADY_EXISTS")
    assert updates == [ValidatorUpdate(raw_key("org-e-validator"), 10)]


def test_two_nodes_agree_on_app_hash_and_updates() -> None:
    nets = [Net(), Net()]
    for net in nets:
        net.pass_(add_new())
    assert nets[0].chain.sm.app_hash == nets[1].chain.sm.app_hash
    assert nets[0].powers() == nets[1].powers()


# ----- every bad input -----
BAD_AT_SUBMIT = [
    ({"type": "add_validator", "pub_key": "not base64!", "power": 1, "organization": "org-a"}, Code.INVALID_BODY,
     "base64"),
    ({"type": "add_validator", "pub_key": b64(b"\x01" * 31), "power": 1, "organization": "org-a"},
     Code.INVALID_BODY, "32 bytes"),
    ({"type": "add_validator", "pub_key": NEW_KEY.rstrip("="), "power": 1, "organization": "org-a"},
     Code.INVALID_BODY, "base64"),
    ({"type": "add_validator", "pub_key": 7, "power": 1, "organization": "org-a"}, Code.INVALID_BODY, "pub_key"),
    ({"type": "add_validator", "pub_key": NEW_KEY, "power": 0, "organization": "org-a"}, Code.INVALID_BODY,
     "remove_validator"),
    ({"type": "add_validator", "pub_key": NEW_KEY, "power": MAX_POWER + 1, "organization": "org-a"},
     Code.INVALID_BODY, "power"),
    ({"type": "add_validator", "pub_key": NEW_KEY, "power": True, "organization": "org-a"}, Code.INVALID_BODY,
     "power"),
    ({"type": "add_validator", "pub_key": NEW_KEY, "power": 1}, Code.INVALID_BODY, "exactly one"),
    ({"type": "add_validator", "pub_key": NEW_KEY, "power": 1, "organization": "org-a",
      "new_organization": new_org()}, Code.INVALID_BODY, "exactly one"),
    ({"type": "add_validator", "pub_key": NEW_KEY, "power": 1, "organization": "org-a", "weight": 1},
     Code.INVALID_BODY, "weight"),
    ({"type": "add_validator", "pub_key": NEW_KEY, "power": 1, "new_organization": {"id": "Bad Id"}},
     Code.INVALID_BODY, "organization"),
    ({"type": "add_validator", "pub_key": NEW_KEY, "power": 1, "organization": "org-z"}, Code.NOT_FOUND, "org-z"),
    ({"type": "add_validator", "pub_key": NEW_KEY, "power": 1, "new_organization": new_org("org-a")},
     Code.ALREADY_EXISTS, "org-a"),
    ({"type": "add_validator", "pub_key": b64(GENESIS_KEYS[0]), "power": 1, "organization": "org-a"},
     Code.ALREADY_EXISTS, "already a validator"),
    # 20 of a new total of 60 is a third: if the newcomer is offline the other 40 are not > 2/3.
    ({"type": "add_validator", "pub_key": NEW_KEY, "power": 20, "organization": "org-a"},
     Code.VALIDATOR_SET_UNSAFE, "1/3"),
    ({"type": "add_validator", "pub_key": NEW_KEY, "power": 1, "organization": "org-a", "extra": 1},
     Code.INVALID_BODY, "unexpected"),
    ({"type": "remove_validator", "pub_key": NEW_KEY}, Code.NOT_FOUND, "not a validator"),
    ({"type": "remove_validator", "pub_key": b64(GENESIS_KEYS[0]), "remove_organization": "yes"},
     Code.INVALID_BODY, "true or false"),
    ({"type": "remove_validator", "pub_key": b64(GENESIS_KEYS[0]), "remove_organization": True},
     Code.ACTION_INVALID, "no organization"),
    ({"type": "set_validator_power", "pub_key": NEW_KEY, "power": 3}, Code.NOT_FOUND, "not a validator"),
    ({"type": "set_validator_power", "pub_key": b64(GENESIS_KEYS[0]), "power": 10}, Code.ACTION_INVALID,
     "already has power"),
    ({"type": "set_validator_power", "pub_key": b64(GENESIS_KEYS[0]), "power": -1}, Code.INVALID_BODY, "power"),
    ({"type": "set_validator_power", "pub_key": b64(GENESIS_KEYS[0])}, Code.INVALID_BODY, "missing"),
]


@pytest.mark.parametrize(("action", "code", "text"), BAD_AT_SUBMIT)
def test_bad_validator_actions_are_refused_at_submit(action: dict[str, Any], code: Code, text: str) -> None:
    net = Net()
    res = net.chain.block(net.admins["org-a"].tx("submit_proposal", {"title": "bad", "action": action}))
    assert [r.code for r in res] == [code] and text in res[0].log, res[0].log
    assert net.query("/governance")["next_proposal_id"] == 1


def test_the_last_validator_cannot_be_removed() -> None:
    net = Net(keys=GENESIS_KEYS[:1])
    res = net.chain.block(net.admins["org-a"].tx("submit_proposal", {"title": "bad", "action": {
        "type": "remove_validator", "pub_key": b64(GENESIS_KEYS[0])}}))
    assert res[0].code == Code.VALIDATOR_SET_UNSAFE and "last validator" in res[0].log


def test_an_organization_running_validators_is_not_removed_alone() -> None:
    net = Net()
    net.pass_(add_new())
    res = net.chain.block(net.admins["org-a"].tx("submit_proposal", {"title": "bad", "action": {
        "type": "remove_organization", "id": "org-e"}}))
    assert res[0].code == Code.ACTION_INVALID and "still runs validators" in res[0].log


def test_bad_genesis_validators_halt_init_chain() -> None:
    sm = StateMachine(CommittedStore(":memory:"), CHAIN)
    with pytest.raises(RuntimeError, match="malformed or repeated"):
        sm.init_chain(CHAIN, app_state(), [ValidatorUpdate(GENESIS_KEYS[0], 1), ValidatorUpdate(GENESIS_KEYS[0], 2)])


# ----- the ABCI surface -----
def test_abci_init_chain_and_finalize_block_carry_the_validators() -> None:
    app = FedLedgerApp(StateMachine(CommittedStore(":memory:"), CHAIN))
    app.init_chain(pb.RequestInitChain(chain_id=CHAIN, app_state_bytes=app_state(), validators=[
        pb.ValidatorUpdate(pub_key=pb.PublicKey(ed25519=k), power=10) for k in GENESIS_KEYS]))
    admins = {org: Signer(seed) for org, seed in ADMINS.items()}
    blocks: list[list[bytes]] = [[admins["org-a"].tx("submit_proposal", {"title": "x", "action": add_new()})],
                                 [admins[org].tx("vote", {"proposal_id": 1, "option": "yes"}) for org in ORGS]]
    emitted: dict[int, list[tuple[bytes, int]]] = {}
    for height in range(1, 2 + PERIOD + 1):
        txs = blocks[height - 1] if height <= len(blocks) else []
        resp = app.finalize_block(pb.RequestFinalizeBlock(height=height, txs=txs, hash=b"%032d" % height))
        assert all(r.code == 0 for r in resp.tx_results), [r.log for r in resp.tx_results]
        if resp.validator_updates:
            emitted[height] = [(u.pub_key.ed25519, u.power) for u in resp.validator_updates]
        app.commit(pb.RequestCommit())
    assert emitted == {1 + PERIOD: [(raw_key("org-e-validator"), 10)]}


# ----- the updates always rebuild the app's set -----
@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 30)), max_size=4), min_size=1, max_size=6))
def test_emitted_updates_applied_like_cometbft_give_the_apps_set(blocks: list[list[tuple[int, int]]]) -> None:
    """Blocks of validator changes (key index, power; 0 removes) through the keeper: CometBFT's view
    (genesis plus every block's updates, each key at most once per block) equals the app's set."""
    store = CommittedStore(":memory:")
    keys = [raw_key(f"prop-{i}") for i in range(6)]
    working = store.working()
    init_validators(working, [ValidatorUpdate(keys[0], 10)])
    comet = {keys[0]: 10}
    for height, changes in enumerate(blocks, start=1):
        for index, power in changes:
            key = b64(keys[index])
            present = any(v["pub_key"] == key for v in load_validators(working))
            if power == 0 and present and len(load_validators(working)) > 1:
                put_validator(working, key, 0, None, height)
            elif power > 0:
                put_validator(working, key, power, None, height)
        updates = take_updates(working)
        assert len({u.pub_key for u in updates}) == len(updates)  # CometBFT refuses a key twice
        assert [b64(u.pub_key) for u in updates] == sorted(b64(u.pub_key) for u in updates)
        for u in updates:
            if u.power == 0:
                comet.pop(u.pub_key, None)
            else:
                comet[u.pub_key] = u.power
        assert {base64.b64decode(v["pub_key"]): v["power"] for v in load_validators(working)} == comet
        store.commit(working, height)
        working = store.working()


# ----- who runs a genesis validator -----
def owned_state(owners: dict[str, str]) -> bytes:
    state = json.loads(app_state())
    state["governance"]["validator_organizations"] = owners
    return canonical_bytes(state)


def test_genesis_names_the_organization_of_each_validator() -> None:
    owners = {b64(k): org for k, org in zip(GENESIS_KEYS, ORGS, strict=True)}
    net = Net()
    net.chain = Chain(CommittedStore(":memory:"), app_state=owned_state(owners),
                      validators=[ValidatorUpdate(k, 10) for k in GENESIS_KEYS])
    net.chain.ok()
    assert {v["pub_key"]: v["organization"] for v in net.query("/validators")["validators"]} == owners
    assert net.chain.store.get(b"gov/genesis_validator_orgs") is None  # genesis scaffolding, gone
    (rec,), updates = net.pass_({"type": "remove_validator", "pub_key": b64(GENESIS_KEYS[3]),
                                 "remove_organization": True})
    assert rec["status"] == "passed", rec.get("reason")
    assert updates == [ValidatorUpdate(GENESIS_KEYS[3], 0)]
    assert "org-d" not in net.query("/governance")["weights"]


@pytest.mark.parametrize(("owners", "match"), [
    ({b64(GENESIS_KEYS[0]): "org-z"}, "not an organization"),
    ({"bad": "org-a"}, "base64"),
    ({b64(raw_key("stranger")): "org-a"}, "not genesis validators"),
])
def test_bad_validator_organizations_halt_genesis(owners: dict[str, str], match: str) -> None:
    sm = StateMachine(CommittedStore(":memory:"), CHAIN)
    with pytest.raises((ValueError, RuntimeError), match=match):
        sm.init_chain(CHAIN, owned_state(owners), [ValidatorUpdate(k, 10) for k in GENESIS_KEYS])
