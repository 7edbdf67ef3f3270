"""`fedledger bench fuzz`: drive generated txs through an in-process app and check its invariants.

The app under test records, per delivered tx, every key the tx wrote and the value the key had
before; a twin app built independently from the same genesis is fed the same blocks. After each
block the run checks: every tx got a result (no exception escaped), a rejected tx changed nothing
but its signer's nonce (which FinalizeBlock consumes for any authenticated tx, so a failed tx can
never be replayed: see StateMachine._deliver), nonces never decrease, no DP spend is negative or
past its task's budget, and both apps reach the same app hash. Violations are collected, not
raised, so the long run reports them all; the property test asserts there are none.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
import traceback
from collections import Counter
from typing import Any

from fedledger.abci_app.context import BlockContext, TxResult
from fedledger.abci_app.errors import Code
from fedledger.abci_app.modules.auth.nonces import last_nonce, nonce_key
from fedledger.abci_app.state_machine import StateMachine, WorkingStore
from fedledger.abci_app.store import CommittedStore
from fedledger.abci_app.store.state import WorkingState
from fedledger.bench.fuzz_txs import CHAIN_ID, FuzzTx, TxGenerator

__all__ = ["FuzzRun", "bench_fuzz"]

# Rejections that happen before the nonce is consumed: the tx must leave no trace at all.
_PRE_AUTH = {Code.ENCODING, Code.BAD_SIGNATURE, Code.OVERSIZE, Code.WRONG_CHAIN, Code.NONCE_REPLAY,
             Code.NONCE_GAP}


class _RecordingState(WorkingState):
    """A WorkingState that remembers, since the last `begin()`, each written key's earlier value."""

    def __init__(self, store: CommittedStore) -> None:
        super().__init__(store)
        self.before: dict[bytes, bytes | None] = {}

    def begin(self) -> None:
        """Start a new tx's write log."""
        self.before = {}

    def set(self, key: bytes, value: bytes) -> None:
        """Log the old value once per tx, then write."""
        if key not in self.before:
            self.before[key] = self.get(key)
        super().set(key, value)

    def delete(self, key: bytes) -> None:
        """Log the old value once per tx, then delete."""
        if key not in self.before:
            self.before[key] = self.get(key)
        super().delete(key)


class _RecordingStore(CommittedStore):
    """A CommittedStore whose working states record writes."""

    def working(self) -> WorkingState:
        """A recording overlay (same semantics as CommittedStore.working)."""
        self._check_open()
        return _RecordingState(self)


class _ObservedStateMachine(StateMachine):
    """The real StateMachine; only wraps each tx's delivery to capture what it changed."""

    def __init__(self, store: _RecordingStore) -> None:
        super().__init__(store, CHAIN_ID)
        self.tx_changes: list[dict[bytes, tuple[bytes | None, bytes | None]]] = []

    def _deliver(self, working: WorkingStore, ctx: BlockContext, raw: bytes) -> TxResult:
        assert isinstance(working, _RecordingState)
        working.begin()
        result = super()._deliver(working, ctx, raw)
        changed = {k: (old, working.get(k)) for k, old in working.before.items() if working.get(k) != old}
        self.tx_changes.append(changed)
        return result


class FuzzRun:
    """An app under test, its twin, a generator, and the violations found so far."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.app_store = _RecordingStore(":memory:")
        self.twin_store = CommittedStore(":memory:")
        self.app = _ObservedStateMachine(self.app_store)
        self.twin = StateMachine(self.twin_store, CHAIN_ID)
        self.gen = TxGenerator(random.Random(seed), self.app.routes, lambda h: last_nonce(self.app_store, h), seed)
        self.app.init_chain(CHAIN_ID, self.gen.app_state)
        self.twin.init_chain(CHAIN_ID, self.gen.app_state)
        self.height = 0
        self.codes: Counter[str] = Counter()
        self.sent = {"signed": 0, "garbage": 0}
        self.crashes: list[str] = []
        self.rejected_state_changes: list[str] = []
        self.violations: list[str] = []
        self.hash_mismatches = 0
        self.broken = False
        self._signed_sample: list[bytes] = []
        self._nonces: dict[str, int] = {}
        self.block([])  # commit genesis

    def _count(self, where: str, code: int) -> None:
        try:
            name = Code(code).name
        except ValueError:
            name = str(code)
            self.violations.append(f"{where}: unregistered code {code}")
        self.codes[f"{where}:{name}"] += 1

    def check_garbage(self, raw: bytes) -> None:
        """CheckTx on bytes that are not a valid tx: must be rejected, must not touch committed state."""
        self.sent["garbage"] += 1
        before = self.app.app_hash
        try:
            res = self.app.check_tx(raw)
        except Exception:  # noqa: BLE001 - an escaped exception is exactly what the fuzzer hunts
            self.crashes.append(f"check_tx(garbage {raw[:60]!r}): {traceback.format_exc(limit=-4)}")
            return
        self._count("check", res.code)
        if res.code == Code.OK:
            self.violations.append(f"garbage accepted by CheckTx: {raw[:80]!r}")
        if self.app.app_hash != before:
            self.rejected_state_changes.append("CheckTx on garbage changed the app hash")

    def block(self, txs: list[FuzzTx]) -> list[TxResult]:
        """CheckTx each tx, then FinalizeBlock + Commit on both apps; check every invariant."""
        for tx in txs:
            self.sent["signed"] += 1
            try:
                self._count("check", self.app.check_tx(tx.raw).code)
            except Exception:  # noqa: BLE001
                self.crashes.append(f"check_tx({tx.tx_type}): {traceback.format_exc(limit=-4)}")
        self.height += 1
        ctx = BlockContext(height=self.height, time_ns=self.height * 10**9,
                           block_hash=hashlib.sha256(b"%d" % self.height).digest(), chain_id=CHAIN_ID)
        raws = [t.raw for t in txs]
        self.app.tx_changes = []
        try:
            results, root = self.app.finalize_block(ctx, raws)
            twin_results, twin_root = self.twin.finalize_block(ctx, raws)
            self.app.commit()
            self.twin.commit()
        except Exception:  # noqa: BLE001
            self.crashes.append(f"finalize_block: {traceback.format_exc(limit=-4)}")
            self.broken = True  # the two apps can no longer be compared; the run stops
            return []
        if root != twin_root or self.app.app_hash != self.twin.app_hash:
            self.hash_mismatches += 1
            self.violations.append(f"app hash differs from the twin at height {self.height}")
        if [r.code for r in results] != [r.code for r in twin_results]:
            self.violations.append(f"result codes differ from the twin at height {self.height}")
        for tx, res, changed in zip(txs, results, self.app.tx_changes, strict=True):
            self._count("deliver", res.code)
            self._check_tx_effect(tx, res, changed)
        if len(self._signed_sample) < 64:
            self._signed_sample += raws[: 64 - len(self._signed_sample)]
        self._check_state()
        self.gen.note_block()
        return results

    def _check_tx_effect(self, tx: FuzzTx, res: TxResult,
                         changed: dict[bytes, tuple[bytes | None, bytes | None]]) -> None:
        if not res.log and res.code != Code.OK:
            self.violations.append(f"{tx.tx_type}: code {res.code} without a log")
        if res.code == Code.OK or tx.signer is None:
            return
        allowed: dict[bytes, bytes] = {}
        if res.code not in _PRE_AUTH:
            allowed[nonce_key(tx.signer)] = str(tx.nonce).encode("ascii")
        for key, (old, new) in sorted(changed.items()):
            if allowed.get(key) == new:
                continue
            self.rejected_state_changes.append(
                f"{tx.tx_type} rejected with {Code(res.code).name} but changed {key!r}: {old!r} -> {new!r}")
        for key, value in allowed.items():
            if key not in changed or changed[key][1] != value:
                self.violations.append(f"{tx.tx_type} rejected with {Code(res.code).name} after auth but its "
                                       f"nonce {tx.nonce} was not consumed")

    def _check_state(self) -> None:
        for key, value in self.app_store.iter_prefix(b"auth/nonce/"):
            signer, nonce = key.decode("ascii"), int(value)
            if nonce < self._nonces.get(signer, 0):
                self.violations.append(f"nonce of {signer} went down to {nonce}")
            self._nonces[signer] = nonce
        budgets: dict[str, int] = {}
        for key, value in self.app_store.iter_prefix(b"dp/policy/"):
            budgets[key[len(b"dp/policy/"):].decode("ascii")] = int(json.loads(value)["epsilon_micro"])
        for prefix in (b"dp/spend/", b"dp/orgspend/"):
            for key, value in self.app_store.iter_prefix(prefix):
                rec = json.loads(value)
                task = key[len(prefix):].decode("ascii").split("/")[0]
                spent = int(rec["spent_micro"])
                if spent < 0 or any(r.startswith("-") for r in rec["rdp"]):
                    self.violations.append(f"negative DP spend at {key!r}: {rec}")
                if prefix == b"dp/spend/" and task in budgets and spent > budgets[task]:
                    self.violations.append(f"DP spend past the budget at {key!r}: {spent} > {budgets[task]}")

    def step(self, n_txs: int) -> None:
        """One block of `n_txs` generated signed txs (a mix of valid and adversarial) plus as many garbage ones."""
        gen = self.gen
        txs = [gen.valid() if gen.rng.random() < 0.35 else gen.adversarial() for _ in range(n_txs)]
        for _ in range(n_txs):
            self.check_garbage(gen.garbage(self._signed_sample))
        self.block(txs)

    def report(self, seconds: float) -> dict[str, Any]:
        """The run's figures as a JSON-ready dict."""
        total = self.sent["signed"] + self.sent["garbage"]
        return {"seed": self.seed, "txs_sent": total, "signed_txs": self.sent["signed"],
                "garbage_txs": self.sent["garbage"], "blocks": self.height,
                "codes": dict(sorted(self.codes.items())), "crashes": len(self.crashes),
                "rejected_state_changes": len(self.rejected_state_changes),
                "other_violations": len(self.violations),
                "app_hash_equals_twin": self.hash_mismatches == 0, "app_hash": self.app.app_hash.hex(),
                "seconds": round(seconds, 2), "txs_per_s": round(total / seconds, 1) if seconds else None,
                "first_problems": (self.crashes + self.rejected_state_changes + self.violations)[:10]}

    def close(self) -> None:
        """Release both stores."""
        self.app_store.close()
        self.twin_store.close()


def bench_fuzz(txs: int, seed: int = 0, block_txs: int = 8) -> dict[str, Any]:
    """Drive `txs` signed adversarial txs and `txs` garbage byte strings through the app; report the figures."""
    run = FuzzRun(seed)
    start = time.perf_counter()
    try:
        done = 0
        while done < txs:
            n = min(block_txs, txs - done)
            run.step(n)
            if run.broken:
                break
            done += n
        return run.report(time.perf_counter() - start)
    finally:
        run.close()
