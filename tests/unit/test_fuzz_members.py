"""Stateful fuzzing by enrolled members: validly signed adversarial txs through the whole in-process app.

A Hypothesis RuleBasedStateMachine drives bench/fuzz.py's FuzzDriver (the same generator as
`fedledger bench fuzz`): admitted members, an aggregator and an admin send every registered tx type
with wrong types, missing/extra fields, huge/negative numbers and unicode, replays, other members'
nonces, over-budget DP mechanisms, out-of-order rounds and votes on closed proposals, mixed with the
valid txs that build a task, a round, commitments and a proposal. After every step: no uncaught
exception, a rejected tx changed nothing but its signer's nonce (the design consumes the nonce of every
authenticated tx in FinalizeBlock), nonces only go up, no budget is negative and the app hash equals
that of a twin app fed the same blocks.
"""

from __future__ import annotations

import json
import random
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from fedledger.abci_app.context import BlockContext, Event, Reader, Writer
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.anchor.msgs import RecordAnchor
from fedledger.abci_app.modules.base import Module, Route
from fedledger.abci_app.modules.registry import DEFAULT_MODULES
from fedledger.abci_app.store import CommittedStore
from fedledger.abci_app.tx import sign_tx
from fedledger.bench.fuzz import FuzzDriver, bench_fuzz
from fedledger.bench.fuzz_txs import (
    CHAIN_ID,
    MECHANISM,
    OVER_BUDGET,
    VOTING_PERIOD,
    AuditedStateMachine,
    body_fields,
    fuzz_genesis,
    mutate_bytes,
    tx_types,
)

NONCE_PREFIX = b"auth/nonce/"
ALL_TYPES = sorted(r for m in DEFAULT_MODULES for r in m.routes)
# CI size: ~40 runs x ~8 steps, each step a block of up to 8 txs; derandomized, so CI runs the same cases.
FUZZ_SETTINGS = settings(max_examples=40, stateful_step_count=8, deadline=None, derandomize=True,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
seeds = st.integers(0, 2**32 - 1)


class MembersFuzz(RuleBasedStateMachine):
    """The whole app under adversarial but validly signed traffic from its own members."""

    def __init__(self) -> None:
        super().__init__()
        self.d = FuzzDriver()
        self.nonces: dict[bytes, int] = {}
        self.included: list[bytes] = []  # authenticated txs already in a block (their replays must fail)

    @initialize()
    def genesis_and_valid_script(self) -> None:
        # Admissions, a task, an open round, two commitments, a proposal and a vote all succeed.
        assert self.d.run_valid_script() == [0] * 12

    def _block(self, txs: list[bytes]) -> list[int]:
        results = self.d.block(txs)
        assert results is not None, self.d.crashes
        for raw, r in zip(txs, results, strict=True):
            assert r.code == 0 or r.log, "every rejection carries a readable log"
            if r.code not in (Code.ENCODING, Code.BAD_SIGNATURE, Code.WRONG_CHAIN, Code.OVERSIZE,
                              Code.NONCE_REPLAY, Code.NONCE_GAP):
                self.included.append(raw)
        return [r.code for r in results]

    @rule(seed=seeds, n=st.integers(1, 8))
    def adversarial_block(self, seed: int, n: int) -> None:
        rng = random.Random(seed)
        order = rng.sample(self.d.world.everyone, len(self.d.world.everyone))
        txs = []
        for signer in order[:n]:  # one tx per key: CheckTx then judges the body, not a nonce gap
            raw, _tag = self.d.signed_tx(rng, signer)
            self.d.check(raw)
            txs.append(raw)
        self._block(txs)

    @rule(seed=seeds, tx_type=st.sampled_from(ALL_TYPES))
    def every_registered_type(self, seed: int, tx_type: str) -> None:
        rng = random.Random(seed)
        raw, _tag = self.d.signed_tx(rng, rng.choice(self.d.world.members), tx_type)
        self.d.check(raw)
        self._block([raw])

    @rule(seed=seeds)
    def garbage_bytes(self, seed: int) -> None:
        rng = random.Random(seed)
        base = rng.choice(self.included) if self.included else b""
        raws = [mutate_bytes(rng, base) for _ in range(3)]
        for raw in raws:
            self.d.check(raw)
        codes = self._block([r for r in raws if r != base])
        assert all(c != 0 for c in codes)

    @precondition(lambda self: bool(self.included))
    @rule(seed=seeds)
    def replays_fail(self, seed: int) -> None:
        rng = random.Random(seed)
        raws = rng.sample(self.included, min(3, len(self.included)))
        assert self._block(raws) == [Code.NONCE_REPLAY] * len(raws)

    @rule(seed=seeds)
    def someone_elses_nonce(self, seed: int) -> None:
        rng = random.Random(seed)
        a, b = rng.sample(self.d.world.everyone, 2)
        if self.d.next_nonce(a) == self.d.next_nonce(b):
            return
        raw = sign_tx(a.key, "declare_availability", {"task_id": "fuzz-task", "available": True}, CHAIN_ID,
                      self.d.next_nonce(b))
        assert self._block([raw])[0] in (Code.NONCE_REPLAY, Code.NONCE_GAP)

    @rule(trainer=st.integers(0, 3), round_=st.sampled_from([1, 2, 7]))
    def over_budget_commitment(self, trainer: int, round_: int) -> None:
        t = self.d.world.trainers[trainer]
        before = self._budget(t.did)
        raw = self.d.valid(t, "commit_contribution", {
            "task_id": "fuzz-task", "round": round_, "base_version": 0, "num_examples": 5, "dp": OVER_BUDGET,
            "cid": "bafkrei" + "a" * 52, "sha256": "ab" * 32, "size": 10})
        assert self._block([raw])[0] != 0
        assert self._budget(t.did) == before

    @rule(round_=st.sampled_from([0, 3, 9, 2**40]))
    def out_of_order_round(self, round_: int) -> None:
        agg = self.d.world.aggregator
        assert self._block([self.d.valid(agg, "open_round", {"task_id": "fuzz-task", "round": round_})])[0] != 0

    @rule(option=st.sampled_from(["yes", "no", "abstain"]))
    def vote_on_closed_proposal(self, option: str) -> None:
        for _ in range(VOTING_PERIOD + 1):  # proposal 1 (from the valid script) is past its deadline after this
            self._block([])
        res = self.d.app.query("/proposal/1", b"", False)
        assert res.code == 0 and json.loads(res.value)["status"] != "voting"
        admin = self.d.world.admin
        assert self._block([self.d.valid(admin, "vote", {"proposal_id": 1, "option": option})])[0] != 0

    @rule(seed=seeds)
    def valid_commitment_from_a_fresh_round(self, seed: int) -> None:
        # Mixes real state changes in: a trainer's plausible commitment to the open round succeeds or is refused.
        rng = random.Random(seed)
        t = rng.choice(self.d.world.trainers)
        raw = self.d.valid(t, "commit_contribution", {
            "task_id": "fuzz-task", "round": 1, "base_version": 0, "num_examples": 5, "dp": MECHANISM,
            "cid": "bafkrei" + "b" * 52, "sha256": f"{seed:064x}", "size": 10})
        self._block([raw])

    def _budget(self, did: str) -> Any:
        res = self.d.app.query(f"/budget/fuzz-task/{did}", b"", False)
        return json.loads(res.value) if res.code == 0 else None

    @invariant()
    def invariants_hold(self) -> None:
        assert self.d.invariant_failures() == []
        nonces = dict(self.d.app.store.iter_prefix(NONCE_PREFIX))
        for key, value in nonces.items():
            assert int(value) >= self.nonces.get(key, 0), f"nonce of {key!r} went down"
        self.nonces = {k: int(v) for k, v in nonces.items()}


MembersFuzz.TestCase.settings = FUZZ_SETTINGS
TestMembersFuzz = MembersFuzz.TestCase


def test_every_registered_type_gets_its_fields_discovered() -> None:
    # The generator builds bodies from each parser's own "missing [...]" answer; a type whose parser
    # stops saying so would silently be fuzzed with empty bodies only.
    routes = tx_types(FuzzDriver().app)
    assert sorted(routes) == ALL_TYPES
    assert all(body_fields(route) for route in routes.values())


def _write_then_refuse(view: Reader, state: Writer | None, ctx: BlockContext, signer: str, msg: Any) -> list[Event]:
    if state is not None:
        state.set(b"fuzz/leak", b"1")  # the bug the audit exists to catch: a write before the refusal
    raise TxError(Code.INVALID_BODY, "refused after writing")


def test_audit_catches_a_rejected_tx_that_writes() -> None:
    leaky = Module(name="leaky", routes={"leaky": Route(parse=lambda body: body, handle=_write_then_refuse)})
    world, genesis = fuzz_genesis()
    app = AuditedStateMachine(CommittedStore(":memory:"), CHAIN_ID, modules=(*DEFAULT_MODULES, leaky))
    app.init_chain(CHAIN_ID, genesis)
    raw = sign_tx(world.outsiders[0].key, "leaky", {}, CHAIN_ID, 1)
    results, _root = app.finalize_block(BlockContext(1, 10**9, b"\x01" * 32, CHAIN_ID), [raw])
    assert results[0].code == Code.INVALID_BODY
    assert [v.keys for v in app.violations] == [("fuzz/leak",)]


def test_regression_anchor_scheme_of_wrong_type_is_refused_not_raised() -> None:
    # Found by the fuzzer: `scheme in frozenset` raised TypeError for a list, crashing CheckTx and FinalizeBlock.
    body = {"scheme": ["fedledger-checkpoint-v1"], "public_chain_id": 1, "contract": "0x" + "a" * 40,
            "tx_hash": "0x" + "b" * 64, "block_number": 1, "block_hash": "0x" + "c" * 64, "root": "0x" + "d" * 64,
            "from_height": 1, "to_height": 1}
    for bad in (["fedledger-checkpoint-v1"], {"a": 1}, None, 7):
        try:
            RecordAnchor.parse({**body, "scheme": bad})
        except TxError as exc:
            assert exc.code == Code.INVALID_BODY and "scheme" in exc.log
        else:
            raise AssertionError(f"scheme {bad!r} accepted")


def test_bench_fuzz_small_run_reports_clean() -> None:
    result = bench_fuzz(300, seed=1)
    assert result["txs_signed"] == 300 and result["txs_raw"] == 300
    assert result["crashes"] == 0 and result["rejected_state_changes"] == 0
    assert result["app_hash_equals_twin"] is True and result["negative_budgets"] == 0
    assert sum(result["finalize_codes"].values()) >= 300
    assert result["valid_script_codes"] == [0] * 12
