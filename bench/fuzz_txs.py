"""Validly signed adversarial txs for fuzzing the whole application, and the audited app they run through.

One generator serves both the Hypothesis state-machine test (tests/unit/test_fuzz_members.py) and the
long `fedledger bench fuzz` run: every choice comes from a `random.Random` the caller seeds, so Hypothesis
drives it by drawing seeds and the bench by a fixed one. Bodies are built per tx type from the field
names the type's own parser asks for (`parse({})` answers "missing [...]"), so a tx type added to the
module registry is fuzzed without touching this file.

`AuditedStateMachine` is the real StateMachine with one addition: it records what every delivered tx
wrote, so a rejected tx that changed anything beyond its signer's nonce (the design consumes the
nonce of every authenticated tx, see StateMachine._deliver) is caught key by key.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fedledger.abci_app.canonical import CanonicalError, canonical_bytes
from fedledger.abci_app.context import BlockContext, TxResult
from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.abci_app.did.vc import issue_admission_credential
from fedledger.abci_app.errors import TxError
from fedledger.abci_app.modules.auth.nonces import last_nonce, nonce_key
from fedledger.abci_app.modules.base import Route
from fedledger.abci_app.state_machine import StateMachine, WorkingStore
from fedledger.abci_app.tx import sign_tx

__all__ = ["CHAIN_ID", "AuditedStateMachine", "Member", "TxGenerator", "Violation", "World", "body_fields",
           "fuzz_genesis", "mutate_bytes", "tx_types"]

CHAIN_ID = "fuzz-chain"
ORG = "fuzz-org"
VOTING_PERIOD = 3  # blocks: short, so proposals close within a fuzz run and votes on closed ones happen
_MISSING_RE = re.compile(r"missing \[([^\]]*)\]")


def _key(name: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"fedledger-fuzz/" + name.encode()).digest())


@dataclass
class Member:
    """A fuzzing identity: its key, role and the credential it is admitted with."""

    name: str
    role: str
    key: Ed25519PrivateKey
    hex: str = ""
    did: str = ""

    def __post_init__(self) -> None:
        self.hex = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
        self.did = did_from_private_key(self.key)


@dataclass
class World:
    """The small generated genesis: one issuer, one organization, its admin, an aggregator, trainers, outsiders."""

    issuer: Ed25519PrivateKey
    admin: Member
    aggregator: Member
    trainers: list[Member]
    outsiders: list[Member]
    tasks: list[str] = field(default_factory=lambda: ["fuzz-task", "fuzz-task-2"])

    @property
    def members(self) -> list[Member]:
        """Everyone who may be admitted (admin, aggregator, trainers)."""
        return [self.admin, self.aggregator, *self.trainers]

    @property
    def everyone(self) -> list[Member]:
        """Every key the generator signs with."""
        return [*self.members, *self.outsiders]


def fuzz_genesis(trainers: int = 4, outsiders: int = 1) -> tuple[World, bytes]:
    """The fuzz world and its genesis app_state (identity with an admin, governance with a short period)."""
    issuer = _key("issuer")
    world = World(issuer=issuer, admin=Member("admin", "validator-admin", _key("admin")),
                  aggregator=Member("aggregator", "aggregator", _key("aggregator")),
                  trainers=[Member(f"trainer{i}", "trainer", _key(f"trainer{i}")) for i in range(trainers)],
                  outsiders=[Member(f"outsider{i}", "trainer", _key(f"outsider{i}")) for i in range(outsiders)])
    state = {"identity": {"organizations": [{
        "id": ORG, "name": "Fuzz org", "enrollment_cap": 50, "issuers": [did_from_private_key(issuer)],
        "admins": [world.admin.did]}]},
        "governance": {"voting_period_blocks": VOTING_PERIOD, "quorum_ppm": 500_000, "threshold_ppm": 500_000}}
    return world, canonical_bytes(state)


def tx_types(sm: StateMachine) -> dict[str, Route]:
    """Every JSON tx type the app routes, sorted by name (from the module registry the app was built with)."""
    return dict(sorted(sm.routes.items()))


def body_fields(route: Route) -> list[str]:
    """The required body fields of a tx type, as its parser reports them for an empty body."""
    try:
        route.parse({})
    except TxError as exc:
        found = _MISSING_RE.search(exc.log)
        if found is not None:
            return [f.strip().strip("'\"") for f in found.group(1).split(",") if f.strip()]
    return []


def _ref(tag: str) -> dict[str, Any]:
    digest = hashlib.sha256(tag.encode()).hexdigest()
    return {"cid": "bafkrei" + digest[:52].translate(str.maketrans("0189", "wxyz")), "sha256": digest, "size": 100}


MECHANISM = {"noise_multiplier": "1", "sample_rate": "0.1", "steps": 10, "clip_norm": "1"}
OVER_BUDGET = {"noise_multiplier": "0.3", "sample_rate": "1", "steps": 100000, "clip_norm": "1"}
# Values of every JSON kind that parsers must refuse cleanly where they do not belong.
NASTY: tuple[Any, ...] = (None, True, False, 0, -1, 1, 2**63, -(2**63), 10**30, "", "x" * 300, "\u202e\u0000ü😀",
                          "0", "-1", "1e400", "NaN", [], [None], {}, {"a": {"b": []}}, ["yes"] * 50,
                          "a" * 64, "f" * 128, "did:key:z6Mk", "bafkrei" + "a" * 52)
# Right type, wrong size or case: what a careless or hostile member sends in a field it otherwise gets right.
EDGES: tuple[Any, ...] = (0, -1, 2**62, 2**64, 10**20, "", "FUZZ-TASK", "fuzz-task\u0000", "A" * 64, [], {})


class TxGenerator:
    """Builds validly signed txs with plausible or adversarial bodies for one World on one app."""

    def __init__(self, world: World, routes: dict[str, Route], chain_id: str = CHAIN_ID) -> None:
        self.world = world
        self.chain_id = chain_id
        self.types = sorted(routes)
        self.fields = {name: body_fields(route) for name, route in sorted(routes.items())}
        self.sent: list[bytes] = []  # recent signed txs, replayed now and then
        self._serial = 0

    # ----- values -----
    def plausible(self, rng: random.Random, signer: Member, name: str, proposals: int) -> Any:
        """A value for field `name` that is right in shape, and often in state, so the handler runs.

        One time in eight the field gets an edge value instead (zero, negative, huge, wrong case), so
        stateful checks see the boundaries too; the wholesale twists are applied by `body`.
        """
        w = self.world
        self._serial += 1
        serial = self._serial
        task = rng.choice(w.tasks)
        hex64 = hashlib.sha256(b"%d" % serial).hexdigest()
        addr = "0x" + hex64[:40]
        good: dict[str, Callable[[], Any]] = {
            "task_id": lambda: task,
            "round": lambda: rng.choice([1, 1, 2]),
            "base_version": lambda: 0,
            "num_examples": lambda: rng.randint(1, 50),
            "dp": lambda: rng.choice([MECHANISM, MECHANISM, OVER_BUDGET]),
            "cid": lambda: _ref(str(serial))["cid"],
            "sha256": lambda: hex64,
            "metrics_sha256": lambda: hex64,
            "size": lambda: 100,
            "contributors": lambda: rng.sample([t.hex for t in w.trainers], rng.randint(1, len(w.trainers))),
            "survivors": lambda: rng.sample([t.hex for t in w.trainers], rng.randint(1, len(w.trainers))),
            "aggregator": lambda: w.aggregator.hex,
            "node": lambda: rng.choice(w.everyone).hex,
            "initial_model": lambda: _ref("v0"),
            "model_spec": lambda: "m",
            "privacy": lambda: {"epsilon": "3", "delta": "1e-5", "org_epsilon": None},
            "round_size": lambda: rng.choice([1, 2, len(w.trainers)]),
            "min_contributions": lambda: 1,
            "deadline_blocks": lambda: rng.choice([5, 20]),
            "available": lambda: rng.choice([True, False]),
            "reason": lambda: "fuzz",
            "proposal_id": lambda: rng.randint(1, proposals + 1),
            "option": lambda: rng.choice(["yes", "no", "abstain"]),
            "title": lambda: "fuzz",
            "action": lambda: {"type": "add_issuer", "organization": ORG,
                               "did": did_from_private_key(_key(f"issuer{serial}"))},
            "credential": lambda: self.credential(signer, rng),
            "credential_id": lambda: f"urn:fuzz:{rng.choice(w.everyone).name}:trainer",
            "organization": lambda: ORG,
            "version": lambda: rng.choice([0, 1]),
            "canary_accuracy_ppm": lambda: rng.randint(0, 1_000_000),
            "backdoor_asr_ppm": lambda: rng.randint(0, 1_000_000),
            "tier": lambda: "general",
            "k": lambda: rng.choice([1, 2]),
            "input_mode": lambda: rng.choice(["hashed", "private"]),
            "endpoint": lambda: f"http://node{serial % 3}.example:8080",
            "tasks": lambda: [task],
            "c_pk": lambda: hex64, "s_pk": lambda: hashlib.sha256(hex64.encode()).hexdigest(),
            "new_key": lambda: rng.choice(w.everyone).hex,
            "proof": lambda: hashlib.sha512(hex64.encode()).hexdigest(),
            "signature": lambda: "0x" + hashlib.sha512(hex64.encode()).hexdigest()[:130],
            "node_signature": lambda: hashlib.sha512(hex64.encode()).hexdigest(),
            "address": lambda: addr, "contract": lambda: addr,
            "scheme": lambda: "fedledger-checkpoint-v1",
            "public_chain_id": lambda: 1337,
            "tx_hash": lambda: "0x" + hex64, "block_hash": lambda: "0x" + hex64, "root": lambda: "0x" + hex64,
            "block_number": lambda: rng.randint(0, 100),
            "from_height": lambda: 1, "to_height": lambda: rng.randint(1, 50), "seq": lambda: rng.randint(1, 3),
            "request_id": lambda: hex64,
            "requests": lambda: [], "receipts": lambda: [], "instances": lambda: [],
            "did": lambda: rng.choice(w.everyone).did,
        }
        if rng.random() < 0.125:
            return rng.choice(EDGES)
        make = good.get(name)
        return make() if make is not None else rng.choice(NASTY)

    def credential(self, member: Member, rng: random.Random) -> dict[str, Any]:
        """An admission credential for `member` from the genesis issuer (sometimes expired or for another key)."""
        subject = member if rng.random() < 0.8 else rng.choice(self.world.everyone)
        until = "2100-01-01T00:00:00Z" if rng.random() < 0.9 else "1970-01-02T00:00:00Z"
        return issue_admission_credential(self.world.issuer, did_from_private_key(self.world.issuer), subject.did,
                                          ORG, member.role, [], "1970-01-01T00:00:00Z", until,
                                          f"urn:fuzz:{subject.name}:{member.role}:{self._serial}")

    # ----- bodies -----
    def body(self, rng: random.Random, tx_type: str, signer: Member, proposals: int) -> tuple[dict[str, Any], str]:
        """A body for `tx_type` and a tag naming the adversarial twist applied to it ("plausible" if none)."""
        names = self.fields.get(tx_type, [])
        body = {n: self.plausible(rng, signer, n, proposals) for n in names}
        twist = rng.choice(["plausible"] * 4 + ["wrong_type", "missing", "extra", "nasty_all", "deep"])
        if twist == "wrong_type" and names:
            body[rng.choice(names)] = rng.choice(NASTY)
        elif twist == "missing" and names:
            del body[rng.choice(names)]
        elif twist == "extra":
            body[rng.choice(["extra", "zz", "\u00e9", "nonce"])] = rng.choice(NASTY)
        elif twist == "nasty_all":
            body = {n: rng.choice(NASTY) for n in names}
        elif twist == "deep" and names:
            body[rng.choice(names)] = {n: rng.choice(NASTY) for n in names}
        return body, twist

    # ----- txs -----
    def signed(self, rng: random.Random, next_nonce: Callable[[Member], int], proposals: int,
               signer: Member | None = None, tx_type: str | None = None) -> tuple[bytes, str]:
        """One validly signed tx (or a replay of an earlier one) and a tag saying what kind it is.

        `signer` fixes who signs (the driver gives each signer one tx per block, so CheckTx sees the
        committed nonce and gets past it to the body); otherwise a random key signs. `tx_type` fixes
        the type (a test covering every registered type); otherwise it is drawn, unknown types included.
        """
        if tx_type is None and self.sent and rng.random() < 0.05:
            return rng.choice(self.sent), "replay"
        if signer is None:
            signer = rng.choice(self.world.everyone)
        if tx_type is None:
            tx_type = rng.choice(self.types + ["no_such_type"])
        body, twist = self.body(rng, tx_type, signer, proposals)
        nonce = next_nonce(signer)
        roll = rng.random()
        if roll < 0.04:
            nonce, twist = max(1, nonce - rng.randint(1, 3)), "old_nonce"
        elif roll < 0.07:
            nonce, twist = nonce + rng.randint(1, 5), "nonce_gap"
        elif roll < 0.10:
            nonce, twist = next_nonce(rng.choice(self.world.everyone)), "others_nonce"
        try:
            raw = sign_tx(signer.key, tx_type, body, self.chain_id, nonce)
        except (CanonicalError, ValueError, TypeError):  # a value canonical JSON cannot carry: send the bare type
            raw, twist = sign_tx(signer.key, tx_type, {}, self.chain_id, nonce), "unencodable"
        self.sent.append(raw)
        if len(self.sent) > 256:
            del self.sent[:128]
        return raw, f"{tx_type}:{twist}"

    def valid_script(self) -> Iterator[tuple[Member, str, dict[str, Any]]]:
        """The txs that make state evolve: admissions, a task, a round, a commitment, a proposal and votes."""
        w = self.world
        for m in w.members:
            yield m, "admit", {"credential": self.credential_for(m)}
        task = w.tasks[0]
        yield w.aggregator, "create_task", {
            "task_id": task, "model_spec": "m", "round_size": len(w.trainers), "min_contributions": 1,
            "deadline_blocks": 20,
            "aggregator": w.aggregator.hex, "initial_model": _ref("v0"),
            "privacy": {"epsilon": "10", "delta": "1e-5", "org_epsilon": None}}
        yield w.aggregator, "open_round", {"task_id": task, "round": 1}
        for t in w.trainers[:2]:
            yield t, "commit_contribution", {"task_id": task, "round": 1, "base_version": 0, "num_examples": 5,
                                             "dp": MECHANISM, **_ref(t.hex)}
        yield w.admin, "submit_proposal", {"title": "fuzz", "action": {
            "type": "add_issuer", "organization": ORG, "did": did_from_private_key(_key("new-issuer"))}}
        yield w.admin, "vote", {"proposal_id": 1, "option": "yes"}

    def credential_for(self, member: Member) -> dict[str, Any]:
        """The member's own valid admission credential."""
        return issue_admission_credential(self.world.issuer, did_from_private_key(self.world.issuer), member.did,
                                          ORG, member.role, [], "1970-01-01T00:00:00Z", "2100-01-01T00:00:00Z",
                                          f"urn:fuzz:{member.name}:{member.role}")


def mutate_bytes(rng: random.Random, base: bytes) -> bytes:
    """Random bytes, or `base` (a signed tx) with a few bytes flipped, inserted or deleted."""
    if rng.random() < 0.3 or not base:
        return rng.randbytes(rng.randint(0, 600))
    raw = bytearray(base)
    for _ in range(rng.randint(1, 4)):
        pos = rng.randrange(len(raw)) if raw else 0
        op = rng.randrange(3)
        if op == 0 and raw:
            raw[pos] ^= rng.randint(1, 255)
        elif op == 1:
            raw.insert(pos, rng.randint(0, 255))
        elif raw:
            del raw[pos]
    return bytes(raw)


@dataclass(frozen=True)
class Violation:
    """A rejected tx that wrote something beyond its nonce, or a nonce that did not go up by one."""

    height: int
    code: int
    log: str
    keys: tuple[str, ...]


class _Recorder:
    """A working store that remembers the value each key had before the current tx first wrote it."""

    def __init__(self, inner: WorkingStore) -> None:
        self.inner = inner
        self.before: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        return self.inner.get(key)

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self.inner.iter_prefix(prefix)

    def set(self, key: bytes, value: bytes) -> None:
        if key not in self.before:
            self.before[key] = self.inner.get(key)
        self.inner.set(key, value)

    def delete(self, key: bytes) -> None:
        if key not in self.before:
            self.before[key] = self.inner.get(key)
        self.inner.delete(key)

    def root(self) -> bytes:
        return self.inner.root()

    def __getattr__(self, name: str) -> Any:  # snapshot/atomic etc. of the real working state
        return getattr(self.inner, name)


class AuditedStateMachine(StateMachine):
    """StateMachine that checks, per delivered JSON tx, that a rejection changed nothing but the signer's nonce
    and that the nonce only ever moved to exactly the tx's nonce (monotonic)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.violations: list[Violation] = []
        self.delivered: dict[int, int] = {}  # code -> count over FinalizeBlock

    def _deliver(self, working: WorkingStore, ctx: BlockContext, raw: bytes) -> TxResult:
        rec = _Recorder(working)
        result = super()._deliver(rec, ctx, raw)
        self.delivered[result.code] = self.delivered.get(result.code, 0) + 1
        changed = sorted(k for k, old in rec.before.items() if working.get(k) != old)
        if not changed or self._envelope(raw) is not None:
            return result
        signer, nonce = "", 0
        try:
            tx = self._decode(raw)  # cached by the app: no second signature check
            signer, nonce = tx.signer, tx.nonce
        except TxError:
            pass
        signer_key = nonce_key(signer) if signer else b""
        bad = [k for k in changed if result.code != 0 and k != signer_key]
        if signer_key in changed:
            old = rec.before[signer_key]
            if last_nonce(working, signer) != nonce or (old is not None and int(old) >= nonce):
                bad.append(signer_key)
        if bad:
            self.violations.append(Violation(ctx.height, result.code, result.log,
                                             tuple(k.decode("ascii", "replace") for k in bad)))
        return result
