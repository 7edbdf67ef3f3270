"""The fuzz tx generator: validly signed txs from enrolled members with adversarial bodies, plus garbage bytes.

One generator serves both `fedledger bench fuzz` and the stateful property test
(tests/unit/test_fuzz_members.py), so what CI fuzzes is exactly what the long run fuzzes. All
choices come from one `random.Random`, so a seed replays a run. Every tx type the app registers is
covered: the types are read from the StateMachine's routes and their field names from each body
parser's dataclass, so a new tx type is fuzzed without touching this file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fedledger.abci_app.canonical import CanonicalError, canonical_bytes
from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.abci_app.did.vc import issue_admission_credential
from fedledger.abci_app.modules.base import Route
from fedledger.abci_app.tx import sign_tx

__all__ = ["CHAIN_ID", "FuzzTx", "Member", "TxGenerator", "body_fields", "genesis_state"]

CHAIN_ID = "fuzz-chain"
ORGS = ("org-a", "org-b")
TASK = "fuzz-task"
# (name, role, organization): the small membership every fuzz run starts from.
MEMBERS = (("owner", "validator-admin", "org-a"), ("agg", "aggregator", "org-a"),
           ("t1", "trainer", "org-a"), ("t2", "trainer", "org-b"), ("t3", "trainer", "org-b"),
           ("eval", "evaluator", "org-b"), ("admin-a", "auditor", "org-a"), ("admin-b", "auditor", "org-b"),
           ("outsider", "trainer", "org-a"))
DP_OK = {"noise_multiplier": "1", "sample_rate": "0.1", "steps": 10, "clip_norm": "1"}
# A mechanism that spends far more than any budget in one go (tiny noise, full sampling, many steps).
DP_OVER = {"noise_multiplier": "0.3", "sample_rate": "1", "steps": 100000, "clip_norm": "1"}
POLICY = {"epsilon": "8", "delta": "1e-5", "org_epsilon": None}

# Values that stress body validation: wrong types, out-of-range numbers, odd text. Integers stay in the
# signed 64-bit range canonical JSON allows: anything wider cannot even be signed (the garbage path covers it).
ADVERSARIAL_VALUES: tuple[Any, ...] = (
    None, True, False, 0, -1, -(2**63), 2**63 - 1, 2**62, -(2**40), 10**15, "", " ", "0", "-1", "1e308", "NaN",
    "\u202e\u0000\ufeff", "\U0001f600" * 8, "a" * 5000, "ünïcødé", [], [None], [1, "x", {}], {}, {"x": 1},
    {"": None}, "bafkrei" + "a" * 52, "0" * 64, "z" * 64, "did:key:z6Mk", "yes", "no", "abstain",
)


def _key(name: str, seed: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"fuzz/{seed}/{name}".encode()).digest())


@dataclass
class Member:
    """A fuzz participant: its key, hex id, DID, role and organization."""

    name: str
    role: str
    org: str
    key: Ed25519PrivateKey
    hex: str = field(init=False)
    did: str = field(init=False)

    def __post_init__(self) -> None:
        self.hex = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
        self.did = did_from_private_key(self.key)


@dataclass(frozen=True)
class FuzzTx:
    """One generated tx: its bytes, who signed it (None for garbage) and the nonce it carries."""

    raw: bytes
    kind: str  # "valid", "adversarial" or "garbage"
    tx_type: str
    signer: str | None
    nonce: int


def genesis_state(seed: int) -> tuple[bytes, Ed25519PrivateKey, list[Member]]:
    """A small genesis (two organizations, each with an issuer and an admin) and its members."""
    issuer = _key("issuer", seed)
    members = [Member(n, r, o, _key(n, seed)) for n, r, o in MEMBERS]
    orgs = [{"id": org, "name": org.upper(), "enrollment_cap": 20, "issuers": [did_from_private_key(issuer)],
             "admins": [m.did for m in members if m.name.startswith("admin-") and m.org == org]} for org in ORGS]
    gov = {"voting_period_blocks": 3, "quorum_ppm": 500_000, "threshold_ppm": 500_000}
    return canonical_bytes({"identity": {"organizations": orgs}, "governance": gov}), issuer, members


def body_fields(route: Route) -> list[str]:
    """The top-level field names of a tx type's body, read from its parser's dataclass (empty if none)."""
    qual = route.parse.__qualname__.split(".")[0]
    module = __import__(route.parse.__module__, fromlist=[qual])
    cls = getattr(module, qual, None)
    if cls is None or not dataclasses.is_dataclass(cls):
        return []
    return [f.name for f in dataclasses.fields(cls)]


def _ref(tag: str) -> dict[str, Any]:
    digest = hashlib.sha256(tag.encode()).hexdigest()
    return {"cid": "bafkrei" + digest[:52].translate(str.maketrans("0189", "wxyz")), "sha256": digest, "size": 100}


class TxGenerator:
    """Draws the next tx. `last_nonce(hex)` reads the chain's committed nonce; `note_block()` resyncs."""

    def __init__(self, rng: random.Random, routes: Mapping[str, Route], last_nonce: Callable[[str], int],
                 seed: int = 0) -> None:
        self.rng = rng
        self.types = sorted(routes)
        self.fields = {name: body_fields(route) for name, route in sorted(routes.items())}
        self.app_state, self.issuer, self.members = genesis_state(seed)
        self.by_name = {m.name: m for m in self.members}
        self._last_nonce = last_nonce
        self._pending: dict[str, int] = {}  # signer -> last nonce handed out in the current block
        self.round = 0  # last round this generator asked to open
        self.proposals = 0  # proposals submitted so far (ids start at 1)
        self._cred = 0

    # ----- nonces -----
    def note_block(self) -> None:
        """A block was committed: forget in-block nonces (the chain's own counter is the truth again)."""
        self._pending.clear()

    def _next_nonce(self, m: Member) -> int:
        last = self._pending.get(m.hex, self._last_nonce(m.hex))
        self._pending[m.hex] = last + 1
        return last + 1

    def _bad_nonce(self, m: Member) -> int:
        last = self._pending.get(m.hex, self._last_nonce(m.hex))
        other = self.rng.choice(self.members)
        return self.rng.choice([last, max(last - 1, 0), last + 2, last + 1000, 0, -1, 2**63 - 1,
                                self._last_nonce(other.hex) + 1])

    # ----- valid bodies -----
    def _credential(self, m: Member) -> dict[str, Any]:
        self._cred += 1
        return issue_admission_credential(self.issuer, did_from_private_key(self.issuer), m.did, m.org, m.role, [],
                                          "1970-01-01T00:00:00Z", "2100-01-01T00:00:00Z",
                                          f"urn:fuzz:{m.name}:{self._cred}")

    def template(self, tx_type: str) -> tuple[Member, dict[str, Any]]:
        """A plausible (often valid) body for `tx_type` and the member who would send it."""
        rng, agg, rnd = self.rng, self.by_name["agg"], max(self.round, 1)
        trainer = self.by_name[rng.choice(["t1", "t2", "t3"])]
        if tx_type in ("admit", "admit_sd"):
            m = rng.choice(self.members)
            return m, {"credential": self._credential(m)}
        if tx_type == "create_task":
            return self.by_name["owner"], {
                "task_id": rng.choice([TASK, TASK, f"task-{rng.randrange(4)}"]), "model_spec": "mlp-digits",
                "round_size": rng.randint(1, 3), "min_contributions": 1, "deadline_blocks": rng.randint(2, 20),
                "aggregator": agg.hex, "initial_model": _ref("init"), "privacy": POLICY}
        if tx_type == "open_round":
            return agg, {"task_id": TASK, "round": self.round + 1}
        if tx_type == "commit_contribution":
            return trainer, {"task_id": TASK, "round": rnd, "base_version": 0, "num_examples": rng.randint(1, 50),
                             "dp": rng.choice([DP_OK, DP_OK, DP_OVER]), **_ref(f"c{rng.randrange(10**6)}")}
        if tx_type in ("close_round", "fail_round", "secagg_advance"):
            body: dict[str, Any] = {"task_id": TASK, "round": rnd}
            if tx_type == "fail_round":
                body["reason"] = "fuzz"
            return agg, body
        if tx_type == "propose_version":
            return agg, {"task_id": TASK, "round": rnd, "contributors": [trainer.hex], **_ref(f"v{rnd}")}
        if tx_type == "submit_proposal":
            admin = self.by_name[rng.choice(["admin-a", "admin-b"])]
            action = {"type": "add_issuer", "organization": admin.org,
                      "did": did_from_private_key(_key(f"new-issuer-{rng.randrange(5)}", 0))}
            return admin, {"title": f"p{rng.randrange(100)}", "action": action}
        if tx_type == "vote":
            admin = self.by_name[rng.choice(["admin-a", "admin-b"])]
            # Old ids are usually closed by now: votes on closed proposals are part of the point.
            pid = rng.randint(0, self.proposals + 1)
            return admin, {"proposal_id": pid, "option": rng.choice(["yes", "no", "abstain", "maybe"])}
        if tx_type == "declare_availability":
            return trainer, {"task_id": TASK, "available": rng.choice([True, False])}
        m = rng.choice(self.members)
        return m, {name: self._value(name) for name in self.fields.get(tx_type, [])}

    def _value(self, name: str) -> Any:
        """A value of roughly the right shape for a field, guessed from its name."""
        rng = self.rng
        if name == "task_id":
            return TASK
        if name in ("round", "version", "block_number", "from_height", "to_height", "proposal_id", "k"):
            return rng.randint(0, self.round + 2)
        if name in ("payload", "initial_model", "artifact"):
            return _ref(name)
        if name in ("did", "node"):
            return rng.choice(self.members).did
        return rng.choice(ADVERSARIAL_VALUES)

    def _sign(self, m: Member, tx_type: str, body: dict[str, Any], nonce: int) -> bytes | None:
        try:
            return sign_tx(m.key, tx_type, body, CHAIN_ID, nonce)
        except (CanonicalError, ValueError, TypeError, OverflowError):
            return None  # a body canonical JSON cannot carry (e.g. a float) never reaches the chain

    # ----- the three kinds -----
    def valid(self) -> FuzzTx:
        """A tx from the happy path (admissions, tasks, rounds, commitments, proposals, votes)."""
        rng = self.rng
        tx_type = rng.choice(["admit", "admit", "create_task", "open_round", "commit_contribution",
                              "commit_contribution", "close_round", "propose_version", "submit_proposal", "vote",
                              "declare_availability"])
        m, body = self.template(tx_type)
        if tx_type == "open_round":
            self.round += 1
        if tx_type == "submit_proposal":
            self.proposals += 1
        nonce = self._next_nonce(m)
        raw = self._sign(m, tx_type, body, nonce)
        assert raw is not None  # templates are canonical by construction
        return FuzzTx(raw, "valid", tx_type, m.hex, nonce)

    def adversarial(self) -> FuzzTx:
        """A validly signed tx of any registered type with a mangled body and/or a wrong nonce."""
        rng = self.rng
        tx_type = rng.choice(self.types + ["", "no_such_type", "ADMIT", "admit "]
                             if rng.random() < 0.05 else self.types)
        m, body = self.template(tx_type)
        if rng.random() < 0.3:
            m = rng.choice(self.members)  # the wrong member for this tx type
        for _ in range(rng.randint(1, 3)):
            self._mutate(body, tx_type)
        bad_nonce = rng.random() < 0.15
        nonce = self._bad_nonce(m) if bad_nonce else self._next_nonce(m)
        raw = self._sign(m, tx_type, body, nonce)
        if raw is None:  # unencodable: send the unmangled template instead, still with the drawn nonce
            raw = self._sign(m, tx_type, self.template(tx_type)[1], nonce)
            if raw is None:
                raw = sign_tx(m.key, tx_type, {}, CHAIN_ID, nonce)
        return FuzzTx(raw, "adversarial", tx_type, m.hex, nonce)

    def _mutate(self, body: dict[str, Any], tx_type: str) -> None:
        rng = self.rng
        op = rng.randrange(7)
        keys = sorted(body)
        if op == 0 and keys:
            del body[rng.choice(keys)]  # missing field
        elif op == 1:
            body[rng.choice(["extra", "x", "", "\u00e9", "task_id ", "__proto__"])] = rng.choice(ADVERSARIAL_VALUES)
        elif op == 2 and keys:
            body[rng.choice(keys)] = rng.choice(ADVERSARIAL_VALUES)  # wrong type / out of range
        elif op == 3 and "round" in body:
            body["round"] = rng.choice([0, -1, self.round + rng.randint(2, 5), max(self.round - 1, 0), 2**63 - 1])
        elif op == 4 and "dp" in body:
            dp = dict(DP_OVER if rng.random() < 0.5 else DP_OK)
            dp[rng.choice(sorted(dp))] = rng.choice(["-1", "0", "1e9", "abc", -5, 2**63 - 1, None, "0.0000001"])
            body["dp"] = dp
        elif op == 5 and keys:
            k = rng.choice(keys)
            if isinstance(body[k], dict) and body[k]:
                inner = dict(body[k])
                inner[rng.choice(sorted(inner))] = rng.choice(ADVERSARIAL_VALUES)
                body[k] = inner
        else:
            body[rng.choice(self.fields.get(tx_type) or ["task_id"])] = self._value(rng.choice(["round", "x"]))

    def garbage(self, signed: list[bytes]) -> bytes:
        """Random bytes, or a signed tx with bytes flipped, inserted or deleted."""
        rng = self.rng
        if not signed or rng.random() < 0.4:
            return rng.randbytes(rng.randint(0, 600))
        raw = bytearray(rng.choice(signed))
        original = bytes(raw)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(raw))
            op = rng.randrange(3)
            if op == 0:
                raw[pos] ^= rng.randint(1, 255)
            elif op == 1:
                raw.insert(pos, rng.randrange(256))
            elif len(raw) > 1:
                del raw[pos]
        if bytes(raw) == original:
            raw.append(0)
        return bytes(raw)
