"""`fedledger bench fuzz`: drive validly signed adversarial txs and mutated bytes through the app in process.

The FuzzDriver runs the audited app (see fuzz_txs.AuditedStateMachine) and an independently constructed
twin side by side: every tx goes through the audited app's CheckTx, the signed ones then through both
apps' FinalizeBlock and Commit, and after every block the two app hashes must be equal and no DP budget
may be negative. The Hypothesis state-machine test drives the same driver (tests/unit/test_fuzz_members.py).
"""

from __future__ import annotations

import hashlib
import json
import random
import time
import traceback
from collections import Counter
from collections.abc import Callable
from typing import Any

from fedledger.abci_app.context import BlockContext, TxResult
from fedledger.abci_app.modules.auth.nonces import last_nonce
from fedledger.abci_app.state_machine import StateMachine
from fedledger.abci_app.store import CommittedStore
from fedledger.abci_app.tx import sign_tx
from fedledger.bench.fuzz_txs import CHAIN_ID, AuditedStateMachine, Member, TxGenerator, fuzz_genesis, mutate_bytes
from fedledger.bench.fuzz_txs import tx_types as _tx_types

__all__ = ["FuzzDriver", "bench_fuzz"]


class FuzzDriver:
    """An audited app, its twin, the fuzz world and the running tallies of one fuzz run."""

    def __init__(self) -> None:
        self.world, genesis = fuzz_genesis()
        self.app = AuditedStateMachine(CommittedStore(":memory:"), CHAIN_ID)
        self.twin = StateMachine(CommittedStore(":memory:"), CHAIN_ID)
        for sm in (self.app, self.twin):
            sm.init_chain(CHAIN_ID, genesis)
        self.gen = TxGenerator(self.world, _tx_types(self.app))
        self.height = 0
        self.check_codes: Counter[int] = Counter()
        self.crashes: list[str] = []
        self.hash_mismatches = 0
        self.negative_budgets: list[str] = []
        self.check_changed_state = 0
        self._in_block: dict[str, int] = {}  # signer -> next nonce within the block being built

    # ----- nonces -----
    def next_nonce(self, member: Member) -> int:
        """The nonce `member`'s next tx needs, counting its txs already in the block being built."""
        return self._in_block.get(member.hex, last_nonce(self.app.store, member.hex) + 1)

    def _note(self, raw: bytes) -> None:
        try:
            env = json.loads(raw)
            signer, nonce = env["signer"], env["nonce"]
        except (ValueError, KeyError, TypeError):
            return
        if isinstance(signer, str) and isinstance(nonce, int):
            expected = self._in_block.get(signer, last_nonce(self.app.store, signer) + 1)
            if nonce == expected:
                self._in_block[signer] = expected + 1

    # ----- driving -----
    def check(self, raw: bytes) -> int | None:
        """CheckTx on the audited app; the code, or None after recording a crash."""
        before = self.app.store.app_hash
        try:
            res = self.app.check_tx(raw)
        except Exception:  # any escape from CheckTx is exactly what the fuzzer hunts for
            self.crashes.append("check_tx: " + traceback.format_exc(limit=6))
            return None
        if self.app.store.app_hash != before:
            self.check_changed_state += 1
        self.check_codes[res.code] += 1
        return res.code

    def block(self, txs: list[bytes]) -> list[TxResult] | None:
        """FinalizeBlock + Commit on both apps; None after recording a crash (the run should stop then)."""
        self.height += 1
        ctx = BlockContext(height=self.height, time_ns=self.height * 10**9,
                           block_hash=hashlib.sha256(b"fuzz%d" % self.height).digest(), chain_id=CHAIN_ID)
        try:
            results, root = self.app.finalize_block(ctx, txs)
            twin_results, twin_root = self.twin.finalize_block(ctx, txs)
            self.app.commit()
            self.twin.commit()
        except Exception:
            self.crashes.append(f"finalize_block at height {self.height}: " + traceback.format_exc(limit=8))
            return None
        finally:
            self._in_block.clear()
        if root != twin_root or [r.code for r in results] != [r.code for r in twin_results]:
            self.hash_mismatches += 1
        self._check_budgets()
        return results

    def _check_budgets(self) -> None:
        for task in self.world.tasks:
            for m in self.world.everyone:
                res = self.app.query(f"/budget/{task}/{m.did}", b"", False)
                if res.code != 0:
                    continue
                b = json.loads(res.value)
                for name in ("epsilon_spent_micro", "epsilon_remaining_micro"):
                    value = b.get(name)
                    if isinstance(value, int) and value < 0:
                        self.negative_budgets.append(f"{task}/{m.name}: {name}={value}")

    def signed_tx(self, rng: random.Random, signer: Member | None = None,
                  tx_type: str | None = None) -> tuple[bytes, str]:
        """One adversarial signed tx from the shared generator, its nonce accounted for in the current block."""
        proposals = 1 + self.height // 5
        raw, tag = self.gen.signed(rng, self.next_nonce, proposals, signer, tx_type)
        self._note(raw)
        return raw, tag

    def valid(self, member: Member, tx_type: str, body: dict[str, Any]) -> bytes:
        """A well-formed tx from the valid script, with the member's right nonce."""
        raw = sign_tx(member.key, tx_type, body, CHAIN_ID, self.next_nonce(member))
        self._note(raw)
        return raw

    def run_valid_script(self) -> list[int]:
        """Run the valid script one tx per block (so each sees the previous); return the codes."""
        codes = []
        for member, tx_type, body in self.gen.valid_script():
            raw = self.valid(member, tx_type, body)
            self.check(raw)
            results = self.block([raw])
            codes.append(-1 if results is None else results[0].code)
        return codes

    def invariant_failures(self) -> list[str]:
        """Every broken invariant so far (empty when all hold)."""
        out = list(self.crashes)
        out += [f"rejected tx changed state: {v}" for v in self.app.violations]
        if self.hash_mismatches:
            out.append(f"{self.hash_mismatches} blocks where the twin app disagreed")
        if self.check_changed_state:
            out.append(f"{self.check_changed_state} CheckTx calls changed committed state")
        out += [f"negative budget {b}" for b in self.negative_budgets]
        if self.app.app_hash != self.twin.app_hash:
            out.append("app hash differs from the twin's")
        return out


def bench_fuzz(txs: int, seed: int = 0, block_size: int = 0, max_seconds: float | None = None,
               log: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Send `txs` signed adversarial txs (CheckTx + FinalizeBlock) and `txs` mutated byte strings (CheckTx).

    block_size 0 (the default) gives every key one tx per block, so CheckTx judges each signed tx on its
    body rather than refusing it for a nonce gap left by an earlier rejected tx of the same signer.
    max_seconds stops early (at a block boundary) and the report says how many were sent.
    """
    rng = random.Random(seed)
    driver = FuzzDriver()
    signers = driver.world.everyone
    block_size = block_size or len(signers)
    script_codes = driver.run_valid_script()
    start = time.perf_counter()
    sent_signed = sent_raw = 0
    last_log = start
    while sent_signed < txs and not driver.crashes:
        if max_seconds is not None and time.perf_counter() - start > max_seconds:
            break
        batch = []
        order = rng.sample(signers, len(signers))
        for i in range(min(block_size, txs - sent_signed)):
            raw, _tag = driver.signed_tx(rng, order[i] if i < len(order) else None)
            driver.check(raw)
            batch.append(raw)
            garbage = mutate_bytes(rng, raw)
            driver.check(garbage)
            if rng.random() < 0.1:
                batch.append(garbage)
            sent_signed += 1
            sent_raw += 1
        driver.block(batch)
        now = time.perf_counter()
        if now - last_log > 10:
            last_log = now
            log(f"{sent_signed} signed + {sent_raw} raw in {now - start:.0f} s")
    elapsed = time.perf_counter() - start
    app = driver.app
    return {
        "txs_requested": txs, "stopped_early": sent_signed < txs, "txs_signed": sent_signed, "txs_raw": sent_raw,
        "check_tx_calls": sum(driver.check_codes.values()),
        "seed": seed, "blocks": driver.height, "tx_types": len(driver.gen.types),
        "valid_script_codes": script_codes,
        "check_tx_codes": {str(k): v for k, v in sorted(driver.check_codes.items())},
        "finalize_codes": {str(k): v for k, v in sorted(app.delivered.items())},
        "crashes": len(driver.crashes), "crash_details": driver.crashes[:5],
        "rejected_state_changes": len(app.violations), "violations": [str(v) for v in app.violations[:5]],
        "negative_budgets": len(driver.negative_budgets),
        "check_tx_changed_state": driver.check_changed_state,
        "app_hash_equals_twin": driver.hash_mismatches == 0 and app.app_hash == driver.twin.app_hash,
        "app_hash": app.app_hash.hex(), "elapsed_s": round(elapsed, 2),
        "txs_per_s": round((sent_signed + sent_raw) / elapsed, 1) if elapsed > 0 else None,
    }
