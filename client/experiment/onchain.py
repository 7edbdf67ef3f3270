"""The FedLedger method on the in-process chain: selection, SecAgg stages, DP debits, robust verdicts, lifecycle.

Each round is driven through signed txs in blocks, in the order the real services send them:
the aggregator opens the round (the chain selects trainers by reputation from the block hash),
the selected trainers post SecAgg keys and shares, the ones still online commit their masked
inputs with their DP-SGD mechanism (the chain debits ε), the aggregator closes the round, fixes
the survivors, they reveal, and the aggregator proposes the version with the robust rule's
verdicts (flagged members lose reputation). An evaluator measures the version on its canary set
and trigger probe (`fedledger.node.probes`, as `fedledger evaluator run` does) and attests; the
chain promotes or quarantines it, and the next round trains from the chain's last good version.

The SecAgg arithmetic runs in `secure.py` on the same groups. The bulletin-board posts carry the
real message sizes but stand-in key bytes and digests: the simulated clients' keys never leave the
library, so the chain's board here fixes who takes part at each stage, not the key material.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from fedledger.abci_app.errors import Code
from fedledger.client.experiment.common import (
    ClientUpdate,
    RunContext,
    RunResult,
    derive_seed,
    dropped_positions,
    online_clients,
    round_updates,
)
from fedledger.client.experiment.config import ExperimentConfig
from fedledger.client.experiment.ledger import Ledger, Member, content_ref
from fedledger.client.experiment.secure import THRESHOLD_PCT, secure_round
from fedledger.node.aggregation.combine import combine_rows
from fedledger.node.aggregation.fedavg import AggregationError, WeightedUpdate, apply_delta
from fedledger.node.aggregation.flat import layout_of, unflatten
from fedledger.node.aggregation.robust_delta import plaintext_delta
from fedledger.node.probes import attack_success_rate, canary_accuracy
from fedledger.node.tensors import Tensors, decode_tensors, encode_tensors

__all__ = ["TASK", "ChainRun", "RoundFigures", "drive_rounds", "run_fedledger", "task_body", "task_policy"]

TASK = "experiment"
_DEADLINE_BLOCKS = 4
_STAGE_BLOCKS = 2
_MIN_CONTRIBUTIONS = 2


def _ref(tag: bytes, size: int) -> dict[str, Any]:
    ref = content_ref(tag)
    return {**ref, "size": max(1, size)}


def _pk(seed: bytes, who: str, kind: str) -> str:
    return hashlib.sha256(seed + who.encode() + kind.encode()).hexdigest()


def task_policy(cfg: ExperimentConfig, stage_blocks: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The task's lifecycle and aggregation policies for cfg, identical in the fast and the full-stack mode.

    group_size 1 means no SecAgg: the robust rule then sees every client's plaintext update.
    """
    lifecycle = {"quorum_weight": 1, "min_canary_accuracy_ppm": int(cfg.min_canary_accuracy * 1_000_000),
                 "max_backdoor_asr_ppm": int(cfg.max_backdoor_asr * 1_000_000)}
    aggregation: dict[str, Any] = {"rule": cfg.rule, "byzantine": cfg.byzantine}
    if cfg.group_size > 1:
        aggregation["secure"] = {"group_size": cfg.group_size, "clip": cfg.secagg_clip, "stage_blocks": stage_blocks,
                                 "threshold_pct": THRESHOLD_PCT}
    return lifecycle, aggregation


def task_body(ctx: RunContext, aggregator: str, initial_model: dict[str, Any], *, deadline_blocks: int,
              stage_blocks: int, task_id: str = TASK) -> dict[str, Any]:
    """The create_task body of a run: the same task (model, policies, budget) in both execution modes."""
    cfg = ctx.cfg
    lifecycle, aggregation = task_policy(cfg, stage_blocks)
    return {"task_id": task_id, "model_spec": ctx.data.spec, "round_size": cfg.round_size,
            "min_contributions": _MIN_CONTRIBUTIONS, "deadline_blocks": deadline_blocks, "aggregator": aggregator,
            "initial_model": initial_model,
            "privacy": {"epsilon": cfg.epsilon_budget, "delta": cfg.delta, "org_epsilon": None},
            "lifecycle": lifecycle, "aggregation": aggregation}


@dataclass
class RoundFigures:
    """What a FedLedger run records round by round, in either execution mode."""

    aggregation_s: list[float] = field(default_factory=list)
    bytes: list[int] = field(default_factory=list)  # per client and round
    commit_s: list[float] = field(default_factory=list)
    benign: list[int] = field(default_factory=lambda: [0, 0])  # accepted, submitted
    byzantine: list[int] = field(default_factory=lambda: [0, 0])

    def count(self, byzantine: frozenset[int], clients: list[int], accepted: set[int]) -> None:
        """Tally which of a round's clients had their input accepted into a version."""
        for i in clients:
            tally = self.byzantine if i in byzantine else self.benign
            tally[1] += 1
            tally[0] += int(i in accepted)


class ChainRun(Protocol):
    """A FedLedger run on some chain (in-process or a localnet), driven one round at a time."""

    figures: RoundFigures

    def round(self, number: int) -> bool:
        """Run round `number`; True if a version was proposed."""

    def epsilon(self) -> float:
        """The largest ε any trainer has spent so far."""

    def trusted(self) -> Tensors:
        """The last promoted model."""

    def quarantined(self) -> int:
        """How many versions the evaluators quarantined."""


def drive_rounds(run: ChainRun, ctx: RunContext, result: RunResult,
                 evaluate_round: Callable[[Tensors], None]) -> Tensors:
    """Run every round, evaluating the trusted model after each; fill the result's chain figures."""
    ok = 0
    times = []
    for number in range(1, ctx.cfg.rounds + 1):
        started = time.perf_counter()
        ok += int(run.round(number))
        times.append(time.perf_counter() - started)
        result.epsilon_curve.append(run.epsilon())
        evaluate_round(run.trusted())
    fig = run.figures
    result.successful_rounds = ok / ctx.cfg.rounds
    result.round_s = float(np.mean(times))
    result.epsilon = run.epsilon()
    result.commit_ms = 1000 * float(np.mean(fig.commit_s)) if fig.commit_s else None
    result.aggregation_ms = 1000 * float(np.mean(fig.aggregation_s)) if fig.aggregation_s else float("nan")
    result.mb_per_client_round = float(np.mean(fig.bytes)) / 1e6 if fig.bytes else 0.0
    result.benign_acceptance = fig.benign[0] / fig.benign[1] if fig.benign[1] else None
    result.byzantine_acceptance = fig.byzantine[0] / fig.byzantine[1] if fig.byzantine[1] else None
    result.quarantined = run.quarantined()
    return run.trusted()


class _Run:
    def __init__(self, ctx: RunContext, init: Tensors) -> None:
        cfg = ctx.cfg
        self.ctx = ctx
        self.ledger = Ledger(derive_seed(ctx.seed, "chain", ctx.attack), cfg.clients, evaluators=1,
                             byzantine=ctx.byzantine)
        self.by_hex = {t.hex: i for i, t in enumerate(self.ledger.trainers)}
        self.models: dict[int, Tensors] = {0: init}
        self.epsilon_micro: dict[str, int] = {}
        agg = self.ledger.aggregator
        self.ledger.ok(self.ledger.admin.tx("create_task", task_body(
            ctx, agg.hex, content_ref(encode_tensors(init)), deadline_blocks=_DEADLINE_BLOCKS,
            stage_blocks=_STAGE_BLOCKS)))
        self.figures = RoundFigures(commit_s=self.ledger.commit_seconds)
        self.available = [True] * cfg.clients  # the chain's default: every trainer available
        # Sybil identities try to enroll under the attackers' organization; its enrollment cap refuses them.
        self.sybils = self.ledger.attempt_sybils(cfg.sybils) if ctx.attack == "sybil" else (0, 0)

    def trainer(self, key: str) -> Member:
        return self.ledger.trainers[self.by_hex[key]]

    def declare_availability(self, number: int) -> None:
        """Trainers whose availability changed for this round say so on chain (selection skips the unavailable)."""
        online = set(online_clients(self.ctx, number))
        changes = [i for i in range(self.ctx.cfg.clients) if (i in online) != self.available[i]]
        if changes:
            self.ledger.ok(*[self.ledger.trainers[i].tx("declare_availability",
                                                        {"task_id": TASK, "available": i in online})
                             for i in changes])
            for i in changes:
                self.available[i] = i in online

    def close_and_fail(self, ids: dict[str, Any], reason: str) -> None:
        """Close the round at its deadline and mark it failed, so the next round opens from the same base."""
        self._close(ids)
        self.ledger.ok(self.ledger.aggregator.tx("fail_round", {**ids, "reason": reason}))

    def round(self, number: int) -> bool:
        """One round; True if a version was proposed (whatever the evaluators then decide)."""
        ledger, agg, ids = self.ledger, self.ledger.aggregator, {"task_id": TASK, "round": number}
        self.declare_availability(number)
        ledger.ok(agg.tx("open_round", ids))
        rnd = ledger.query(f"/round/{TASK}/{number}")
        selected: list[str] = rnd["selected"]
        if len(selected) < 2:  # nobody (or one trainer) online: SecAgg cannot hide a single input
            self.close_and_fail(ids, f"{len(selected)} trainer(s) available")
            return False
        base = self.models[rnd["base_version"]]
        clients = [self.by_hex[k] for k in selected]
        updates, layout = round_updates(self.ctx, base, clients, number)
        if self.ctx.cfg.group_size == 1:
            return self._plaintext(number, rnd, base, updates)
        seed = bytes.fromhex(rnd["secagg"]["seed"])
        dropped = dropped_positions(self.ctx, clients, number)
        started = time.perf_counter()
        sec = secure_round(np.stack([u.vector for u in updates]), float(self.ctx.cfg.secagg_clip), seed,
                           self.ctx.cfg.group_size, dropped)
        vector = verdicts = None
        if sec.means:
            try:
                vector, verdicts = combine_rows(np.stack(sec.means), np.asarray(sec.counts, dtype=np.int64),
                                                self.ctx.cfg.rule, self.ctx.cfg.byzantine)
            except AggregationError:
                # As the aggregator does: a rule that cannot run on these groups fails the round on chain.
                vector = verdicts = None
        self.figures.aggregation_s.append(time.perf_counter() - started)
        self.figures.bytes.extend(sec.bytes_sent.values())
        # The chain's stages, in order: keys, advance, shares, advance, masked inputs (debits ε).
        ledger.ok(*[self.trainer(k).tx("secagg_keys", {**ids, "c_pk": _pk(seed, k, "c"), "s_pk": _pk(seed, k, "s")})
                    for k in selected])
        ledger.ok(agg.tx("secagg_advance", ids))
        ledger.ok(*[self.trainer(k).tx("secagg_shares", {**ids, **_ref(seed + k.encode() + b"shares",
                                                                        sec.shares_bytes.get(pos, 1))})
                    for pos, k in enumerate(selected)])
        ledger.ok(agg.tx("secagg_advance", ids))
        online = [pos for pos in range(len(selected)) if pos not in dropped]
        self._commit(ids, rnd, selected, online, updates,
                     [_ref(updates[pos].vector.tobytes(), sec.masked_bytes.get(pos, 1)) for pos in online])
        self._close(ids)
        survivors = sorted(selected[pos] for group in sec.survivors for pos in group)
        if len(survivors) < _MIN_CONTRIBUTIONS or vector is None or verdicts is None:
            ledger.ok(agg.tx("fail_round", {**ids, "reason": "too few usable masked inputs"}))
            self.figures.count(self.ctx.byzantine, clients, set())
            return False
        ledger.ok(agg.tx("secagg_survivors", {**ids, "survivors": survivors}))
        ledger.ok(*[self.trainer(k).tx("secagg_unmask", {**ids, **_ref(seed + k.encode() + b"unmask", 1)})
                    for k in survivors])
        kept = sorted(selected[pos] for group, v in zip(sec.survivors, verdicts, strict=True) if v != "flagged"
                      for pos in group)
        flagged = sorted(selected[pos] for group, v in zip(sec.survivors, verdicts, strict=True) if v == "flagged"
                         for pos in group)
        return self._propose(ids, clients, base, unflatten(vector, layout), kept, flagged)

    def _commit(self, ids: dict[str, Any], rnd: dict[str, Any], selected: list[str], online: list[int],
                updates: list[ClientUpdate], refs: list[dict[str, Any]]) -> None:
        """The online trainers' commit_contribution txs in one block; records the ε the chain debited."""
        results = self.ledger.ok(*[self.trainer(selected[pos]).tx("commit_contribution", {
            **ids, "base_version": rnd["base_version"], "num_examples": updates[pos].num_examples,
            "dp": updates[pos].mechanism, **ref}) for pos, ref in zip(online, refs, strict=True)])
        for pos, res in zip(online, results, strict=True):
            for ev in res.events:
                spent = dict(ev.attributes).get("epsilon_micro")
                if spent is not None:
                    self.epsilon_micro[selected[pos]] = int(spent)

    def _close(self, ids: dict[str, Any]) -> None:
        """close_round as the aggregator sends it: refused until the round is full or past its deadline."""
        for _ in range(_DEADLINE_BLOCKS + 2):
            if self.ledger.block(self.ledger.aggregator.tx("close_round", ids))[0].code == 0:
                break

    def _plaintext(self, number: int, rnd: dict[str, Any], base: Tensors, updates: list[ClientUpdate]) -> bool:
        """A round without SecAgg: payloads in the clear, the aggregator's own plaintext rule over each update."""
        ids = {"task_id": TASK, "round": number}
        selected: list[str] = rnd["selected"]
        clients = [self.by_hex[k] for k in selected]
        dropped = dropped_positions(self.ctx, clients, number)
        online = [pos for pos in range(len(selected)) if pos not in dropped]
        payloads = {selected[pos]: encode_tensors(unflatten(updates[pos].vector, layout_of(base))) for pos in online}
        self.figures.bytes.extend(len(payloads[selected[pos]]) for pos in online)
        self._commit(ids, rnd, selected, online, updates, [content_ref(payloads[selected[pos]]) for pos in online])
        self._close(ids)
        contributions = self.ledger.query(f"/contributions/{TASK}/{number}")
        started = time.perf_counter()
        try:
            delta, flagged_ids = plaintext_delta(
                [WeightedUpdate(c["id"], decode_tensors(payloads[c["participant"]]), c["num_examples"])
                 for c in contributions], self.ctx.cfg.rule, self.ctx.cfg.byzantine)
        except AggregationError as exc:
            self.figures.aggregation_s.append(time.perf_counter() - started)
            reason = f"aggregation failed: {exc}"[:200]
            self.ledger.ok(self.ledger.aggregator.tx("fail_round", {**ids, "reason": reason}))
            self.figures.count(self.ctx.byzantine, clients, set())
            return False
        self.figures.aggregation_s.append(time.perf_counter() - started)
        flagged = sorted(cid.rsplit("/", 1)[1] for cid in flagged_ids)
        kept = sorted(c["participant"] for c in contributions if c["participant"] not in flagged)
        return self._propose(ids, clients, base, delta, kept, flagged)

    def _propose(self, ids: dict[str, Any], clients: list[int], base: Tensors, delta: Tensors, kept: list[str],
                 flagged: list[str]) -> bool:
        """Propose base + delta with its contributors and robust-flagged members, then attest it."""
        self.figures.count(self.ctx.byzantine, clients, {self.by_hex[k] for k in kept})
        if not kept:
            self.ledger.ok(self.ledger.aggregator.tx("fail_round", {**ids,
                                                                    "reason": "the robust rule flagged every input"}))
            return False
        model = apply_delta(base, delta)
        proposed = self.ledger.ok(self.ledger.aggregator.tx("propose_version", {
            **ids, **content_ref(encode_tensors(model)), "contributors": kept,
            "dropped": [{"participant": w, "reason": "robust_flagged"} for w in flagged]}))
        version = next(int(dict(e.attributes)["version"]) for e in proposed[0].events
                       if "version" in dict(e.attributes))
        self.models[version] = model
        self._attest(version, model)
        return True

    def _attest(self, version: int, model: Tensors) -> None:
        """The evaluator's attestation: canary accuracy and trigger-probe ASR, measured on its own canary set."""
        canary = self.ctx.data.canary
        acc = canary_accuracy(self.ctx.data.spec, model, canary)
        asr = 0
        if self.ctx.probe is not None:
            asr = attack_success_rate(self.ctx.data.spec, model, canary, self.ctx.probe).asr_ppm
        metrics = hashlib.sha256(f"{acc.accuracy_ppm}/{asr}".encode()).hexdigest()
        res = self.ledger.block(self.ledger.evaluators[0].tx("attest_version", {
            "task_id": TASK, "version": version, "metrics_sha256": metrics,
            "canary_accuracy_ppm": acc.accuracy_ppm, "backdoor_asr_ppm": asr}))
        if res[0].code not in (0, Code.VERSION_DECIDED):
            raise RuntimeError(f"attestation refused: {res[0].log}")

    def trusted(self) -> Tensors:
        return self.models[int(self.ledger.query(f"/lifecycle/{TASK}")["last_good"])]

    def epsilon(self) -> float:
        return max(self.epsilon_micro.values(), default=0) / 1e6

    def quarantined(self) -> int:
        versions = self.ledger.query(f"/versions/{TASK}")
        return sum(1 for v in versions if v.get("status") == "quarantined")


def run_fedledger(ctx: RunContext, init: Tensors, result: RunResult,
                  evaluate_round: Callable[[Tensors], None]) -> Tensors:
    """Run every round on the chain; fills the result's chain figures and returns the last promoted model."""
    run = _Run(ctx, init)
    try:
        final = drive_rounds(run, ctx, result, evaluate_round)
        result.sybil_attempts, result.sybil_refused = run.sybils
        return final
    finally:
        run.ledger.close()
