"""Stateful fuzzing of the whole app by enrolled members: validly signed txs with adversarial bodies.

Hypothesis drives bench/fuzz.py's FuzzRun (the same generator and invariant checks as
`fedledger bench fuzz`): each rule reseeds the generator from a drawn integer, so shrinking works
on the rule sequence and the seeds. After every step: no exception escaped CheckTx/FinalizeBlock,
a rejected tx changed nothing but its signer's nonce (consumed by FinalizeBlock once the tx is
authenticated), nonces never went down, no DP spend is negative or past its budget, and the app
hash equals that of an independently built twin app fed the same blocks.
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.base import Route
from fedledger.bench.fuzz import FuzzRun
from fedledger.bench.fuzz_txs import FuzzTx, TxGenerator, body_fields

# CI profile: derandomized (the same examples every run), a few hundred steps in all.
settings.register_profile("fedledger-fuzz-ci", max_examples=6, stateful_step_count=25, derandomize=True,
                          deadline=None, suppress_health_check=[HealthCheck.too_slow])
SEEDS = st.integers(0, 2**32 - 1)


def _problems(run: FuzzRun) -> list[str]:
    return run.crashes + run.rejected_state_changes + run.violations


class MembersFuzz(RuleBasedStateMachine):
    """The app under enrolled members' adversarial txs, one block per rule."""

    run: FuzzRun

    @initialize(seed=SEEDS)
    def start(self, seed: int) -> None:
        self.run = FuzzRun(seed % 1000)
        self.committed: list[FuzzTx] = []
        # Enrol everyone first so later rules reach the handlers past the membership checks.
        self.run.gen.rng.seed(seed)
        self._block([self.run.gen.valid() for _ in range(4)])

    def _block(self, txs: list[FuzzTx]) -> None:
        results = self.run.block(txs)
        self.committed += [t for t, r in zip(txs, results, strict=False) if r.code == Code.OK]

    def _gen(self, seed: int) -> TxGenerator:
        self.run.gen.rng.seed(seed)
        return self.run.gen

    @rule(seed=SEEDS, n=st.integers(1, 6))
    def valid_block(self, seed: int, n: int) -> None:
        gen = self._gen(seed)
        self._block([gen.valid() for _ in range(n)])

    @rule(seed=SEEDS, n=st.integers(1, 6))
    def adversarial_block(self, seed: int, n: int) -> None:
        gen = self._gen(seed)
        self._block([gen.adversarial() for _ in range(n)])

    @rule(seed=SEEDS, n=st.integers(2, 8))
    def mixed_block(self, seed: int, n: int) -> None:
        gen = self._gen(seed)
        self._block([gen.valid() if gen.rng.random() < 0.5 else gen.adversarial() for _ in range(n)])

    @rule(seed=SEEDS, n=st.integers(1, 4))
    def garbage(self, seed: int, n: int) -> None:
        gen = self._gen(seed)
        for _ in range(n):
            self.run.check_garbage(gen.garbage([t.raw for t in self.committed[-16:]]))

    @precondition(lambda self: bool(self.committed))
    @rule(pick=st.integers(0, 2**16))
    def replay(self, pick: int) -> None:
        old = self.committed[pick % len(self.committed)]
        (res,) = self.run.block([old])
        assert res.code == Code.NONCE_REPLAY, (res.code, res.log)

    @rule()
    def empty_block(self) -> None:
        self.run.block([])  # lets voting periods and round deadlines run out

    @invariant()
    def nothing_broke(self) -> None:
        if hasattr(self, "run"):
            assert not self.run.broken
            assert _problems(self.run) == []
            assert self.run.hash_mismatches == 0

    def teardown(self) -> None:
        if hasattr(self, "run"):
            self.run.close()


MembersFuzz.TestCase.settings = settings.get_profile("fedledger-fuzz-ci")
TestMembersFuzz = MembersFuzz.TestCase


def test_every_registered_tx_type_is_generated_with_its_fields() -> None:
    run = FuzzRun(3)
    try:
        gen = run.gen
        assert gen.types == sorted(run.app.routes)  # read from the registry, not a list kept here
        seen = {gen.adversarial().tx_type for _ in range(3000)}
        assert set(run.app.routes) <= seen
        assert body_fields(run.app.routes["commit_contribution"])[:2] == ["task_id", "round"]
    finally:
        run.close()


def test_the_run_state_evolves_and_nonces_are_consumed_by_rejected_authenticated_txs() -> None:
    run = FuzzRun(5)
    try:
        for _ in range(30):
            run.step(6)
        assert not _problems(run) and not run.broken
        ok = sum(v for k, v in run.codes.items() if k == "deliver:OK")
        assert ok >= 10  # admissions, tasks, rounds... really happen, not only rejections
        assert run.codes["deliver:INVALID_BODY"] > 0 and run.codes["check:ENCODING"] > 0
    finally:
        run.close()


def _write_then_fail(view: Any, state: Any, ctx: Any, signer: str, msg: Any) -> list[Any]:
    if state is not None:
        state.set(b"fuzz/leak", b"1")  # the bug the checker must see: a write before the raise
    raise TxError(Code.INVALID_BODY, "planted failure after a write")


def test_the_checker_catches_a_rejected_tx_that_writes_and_a_diverging_twin() -> None:
    run = FuzzRun(7)
    try:
        route = run.app.routes["declare_availability"]
        run.app.routes["declare_availability"] = Route(parse=route.parse, handle=_write_then_fail)
        gen = run.gen
        gen.rng = random.Random(1)
        m = gen.by_name["t1"]
        raw = gen._sign(m, "declare_availability", {"task_id": "t", "available": True}, 1)
        assert raw is not None
        run.block([FuzzTx(raw, "adversarial", "declare_availability", m.hex, 1)])
        assert any("fuzz/leak" in p for p in run.rejected_state_changes)
        assert run.hash_mismatches == 1  # the twin runs the real handler and does not leak
    finally:
        run.close()
