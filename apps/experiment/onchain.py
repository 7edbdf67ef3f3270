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
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from fedledger.abci_app.errors import Code
from fedledger.abci_app.modules.federation.records import PayloadRef, RoundRecord
from fedledger.abci_app.modules.reputation.hooks import scores_at
from fedledger.apps.experiment.budget import BudgetPlanner, planned_dp
from fedledger.apps.experiment.common import (
    ClientUpdate,
    RunContext,
    RunResult,
    derive_int,
    derive_seed,
    dropped_positions,
    online_clients,
    round_updates,
)
from fedledger.apps.experiment.config import ExperimentConfig
from fedledger.apps.experiment.ledger import Ledger, Member, content_ref
from fedledger.apps.experiment.secure import THRESHOLD_PCT, SecureRound, noise_quorum, secure_round
from fedledger.apps.experiment.submissions import Submission, submissions
from fedledger.node.aggregation.combine import combine_rows
from fedledger.node.aggregation.fedavg import AggregationError, WeightedUpdate, apply_delta
from fedledger.node.aggregation.robust_delta import plaintext_delta
from fedledger.node.aggregation.screen import ScreenPolicy, claims_consistent, unit_reference
from fedledger.node.backdoor_scan import scan_model
from fedledger.node.backdoor_unlearn import unlearn
from fedledger.node.probes import canary_accuracy
from fedledger.node.reference import root_update
from fedledger.sdk.dp import distributed_std
from fedledger.sdk.flat import layout_of, unflatten
from fedledger.sdk.secagg import Quantizer, partition
from fedledger.sdk.tensors import Tensors, decode_tensors, encode_tensors

__all__ = ["TASK", "ChainRun", "RoundFigures", "drive_rounds", "run_fedledger", "task_body", "task_policy"]

TASK = "experiment"
_DEADLINE_BLOCKS = 4
_STAGE_BLOCKS = 2
_MIN_CONTRIBUTIONS = 2


def _ref(tag: bytes, size: int) -> PayloadRef:
    ref = content_ref(tag)
    return {**ref, "size": max(1, size)}


def _pk(seed: bytes, who: str, kind: str) -> str:
    return hashlib.sha256(seed + who.encode() + kind.encode()).hexdigest()


def task_policy(cfg: ExperimentConfig, stage_blocks: int,
                private: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """The task's lifecycle and aggregation policies for cfg, identical in the fast and the full-stack mode.

    group_size 1 means no SecAgg: the robust rule then sees every client's plaintext update. With
    distributed DP (and `private`), clients add noise shares sized for the noise quorum; with the
    screen, every commit carries claims checked against the round's reference.
    """
    lifecycle = {"quorum_weight": 1, "min_canary_accuracy_ppm": int(cfg.min_canary_accuracy * 1_000_000),
                 "max_backdoor_asr_ppm": int(cfg.max_backdoor_asr * 1_000_000),
                 "max_regression_ppm": int(round(cfg.max_regression * 1_000_000))}
    # create_task bodies, not records: the chain fills the defaults and validates them (free-form until then).
    aggregation: dict[str, Any] = {"rule": cfg.rule, "byzantine": cfg.byzantine}
    if cfg.group_size > 1:
        secure: dict[str, Any] = {"group_size": min(cfg.group_size, cfg.round_size), "clip": cfg.secagg_clip,
                                  "stage_blocks": stage_blocks, "threshold_pct": THRESHOLD_PCT}
        if private and cfg.dp_mode == "distributed":
            secure["noise_multiplier"] = cfg.noise_multiplier
            secure["noise_quorum_pct"] = cfg.noise_quorum_pct
        aggregation["secure"] = secure
    if cfg.screen:
        aggregation["screen"] = {"min_cosine_ppm": int(round(cfg.screen_min_cosine * 1_000_000)),
                                 "max_norm": cfg.clip_norm}
    return lifecycle, aggregation


def task_body(ctx: RunContext, aggregator: str, initial_model: PayloadRef, *, deadline_blocks: int,
              stage_blocks: int, task_id: str = TASK) -> dict[str, Any]:
    """The create_task body of a run: the same task (model, policies, budget) in both execution modes."""
    cfg = ctx.cfg
    private = ctx.method != "fedledger_nodp"
    lifecycle, aggregation = task_policy(cfg, stage_blocks, private)
    return {"task_id": task_id, "model_spec": ctx.data.spec, "round_size": cfg.round_size,
            "min_contributions": _MIN_CONTRIBUTIONS, "deadline_blocks": deadline_blocks, "aggregator": aggregator,
            "initial_model": initial_model,
            "privacy": {"epsilon": cfg.epsilon_budget, "delta": cfg.delta, "org_epsilon": None} if private else None,
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

    def promoted_versions(self) -> int:
        """How many versions the evaluators promoted."""

    def reputation(self) -> tuple[float, float]:
        """Mean reputation of the honest and of the Byzantine trainers now (nan where a side is empty)."""


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
        honest, byz = run.reputation()
        result.reputation_honest_curve.append(honest)
        result.reputation_byzantine_curve.append(byz)
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
    result.promoted_rounds = run.promoted_versions() / ctx.cfg.rounds
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
        self.private = ctx.method == "fedledger"  # fedledger_nodp: the same defense on a task without DP
        self.noised = self.private and ctx.distributed_dp
        self.screen = ScreenPolicy.from_task(task_policy(cfg, _STAGE_BLOCKS, self.private)[1])
        self.screened = self.screen is not None
        self.group_size = min(cfg.group_size, cfg.round_size)
        self.unit_ref: npt.NDArray[np.float64] | None = None
        self.screened_count = 0
        self.planner = BudgetPlanner(cfg.epsilon_budget, cfg.delta)
        self.declared = planned_dp(ctx) if self.private else None
        self.promoted = 0
        self.unlearned = 0  # candidates the backdoor scan flagged and the aggregator cleaned
        # Sybil identities try to enroll under the attackers' organization; its enrollment cap refuses them.
        self.sybils = self.ledger.attempt_sybils(cfg.sybils) if ctx.attack == "sybil" else (0, 0)

    def trainer(self, key: str) -> Member:
        return self.ledger.trainers[self.by_hex[key]]

    def declare_availability(self, number: int) -> None:
        """Trainers whose availability changed for this round say so on chain (selection skips the unavailable)."""
        # A trainer also sits out once its next contribution would pass its ε budget (it plans with the
        # chain's accountant, as `fedledger client run` does), so the chain never has to refuse it.
        online = {i for i in online_clients(self.ctx, number) if self.planner.affords(i, self.declared)}
        changes = [i for i in range(self.ctx.cfg.clients) if (i in online) != self.available[i]]
        if changes:
            self.ledger.ok(*[self.ledger.trainers[i].tx("declare_availability",
                                                        {"task_id": TASK, "available": i in online})
                             for i in changes])
            for i in changes:
                self.available[i] = i in online

    def _reference(self) -> dict[str, Any]:
        """The round's reference for the screen (the root update of the base model on the canary set), if any."""
        if not self.screened:
            self.unit_ref = None
            return {}
        cfg = self.ctx.cfg
        base = self.models[self.ledger.view.last_good(TASK)]
        root = root_update(self.ctx.data.spec, base, self.ctx.data.canary, lr=cfg.lr, batch_size=cfg.batch_size,
                           seed=derive_int(self.ctx.seed, "root", self.ledger.height))
        self.unit_ref = unit_reference(root)
        return {"reference": content_ref(root.tobytes())}

    def close_and_fail(self, ids: dict[str, Any], reason: str) -> None:
        """Close the round at its deadline and mark it failed, so the next round opens from the same base.

        A secure round still collecting keys is failed by the chain itself once its stage times out
        with too few posts (secagg_advance), as the aggregator service lets it.
        """
        rnd = self.ledger.view.round(TASK, ids["round"])
        if "secagg" in rnd:
            for _ in range(_STAGE_BLOCKS + 3):
                self.ledger.block(self.ledger.aggregator.tx("secagg_advance", ids))
                if self.ledger.view.round(TASK, ids["round"])["status"] == "failed":
                    return
        self._close(ids)
        self.ledger.ok(self.ledger.aggregator.tx("fail_round", {**ids, "reason": reason}))

    def round(self, number: int) -> bool:
        """One round; True if a version was proposed (whatever the evaluators then decide)."""
        ledger, agg, ids = self.ledger, self.ledger.aggregator, {"task_id": TASK, "round": number}
        self.declare_availability(number)
        ledger.ok(agg.tx("open_round", {**ids, **self._reference()}))
        rnd = ledger.view.round(TASK, number)
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
        claims = submissions(self.ctx, updates, number, self.unit_ref, {}, clip=self.screened or self.noised,
                             noise=False)
        # The chain's stages, in order: keys with the screen's claims, advance (the chain screens them and
        # fixes the roster), shares, advance, masked inputs (debits ε).
        def keys_body(pos: int, k: str) -> dict[str, Any]:
            claim = claims[pos].claim
            return {**ids, "c_pk": _pk(seed, k, "c"), "s_pk": _pk(seed, k, "s"),
                    **({"screen": claim.to_json()} if self.screened and claim is not None else {})}

        ledger.ok(*[self.trainer(k).tx("secagg_keys", keys_body(pos, k)) for pos, k in enumerate(selected)])
        ledger.ok(agg.tx("secagg_advance", ids))
        roster_keys = set(ledger.view.round(TASK, number)["secagg"]["roster"])
        # SecAgg runs over the roster only: groups, neighbour graphs and noise shares are the roster's.
        roster = [pos for pos, k in enumerate(selected) if k in roster_keys]
        self.screened_count += len(selected) - len(roster)
        groups = partition(list(range(len(roster))), seed, self.group_size)
        sizes = {clients[roster[i]]: len(members) for members in groups for i in members}
        subs = submissions(self.ctx, [updates[pos] for pos in roster], number, self.unit_ref, sizes,
                           clip=self.screened or self.noised, noise=self.noised)
        gone = {i for i, pos in enumerate(roster) if pos in dropped}
        started = time.perf_counter()
        sec = secure_round(np.stack([sub.row for sub in subs]), float(self.ctx.cfg.secagg_clip), seed,
                           self.group_size, gone, self.ctx.cfg.noise_quorum_pct if self.noised else 0)
        bad_groups = self._inconsistent_groups(sec, subs)
        good = [g for g in range(len(sec.means)) if g not in bad_groups]
        vector = verdicts = None
        if good:
            try:
                vector, verdicts = combine_rows(np.stack([sec.means[g] for g in good]),
                                                np.asarray([sec.counts[g] for g in good], dtype=np.int64),
                                                self.ctx.cfg.rule, self.ctx.cfg.byzantine)
            except AggregationError:
                # As the aggregator does: a rule that cannot run on these groups fails the round on chain.
                vector = verdicts = None
        self.figures.aggregation_s.append(time.perf_counter() - started)
        self.figures.bytes.extend(sec.bytes_sent.values())
        ledger.ok(*[self.trainer(selected[pos]).tx("secagg_shares", {
            **ids, **_ref(seed + selected[pos].encode() + b"shares", sec.shares_bytes.get(i, 1))})
            for i, pos in enumerate(roster)])
        ledger.ok(agg.tx("secagg_advance", ids))
        online = [i for i in range(len(roster)) if i not in gone]
        self._commit(ids, rnd, [selected[pos] for pos in roster], online, subs,
                     [_ref(subs[i].row.tobytes(), sec.masked_bytes.get(i, 1)) for i in online])
        self._close(ids)
        sec.survivors = [[roster[i] for i in group] for group in sec.survivors]  # back to positions in selected
        survivors = sorted(selected[pos] for group in sec.survivors for pos in group)
        if len(survivors) < _MIN_CONTRIBUTIONS or vector is None or verdicts is None:
            ledger.ok(agg.tx("fail_round", {**ids, "reason": "too few usable masked inputs"}))
            self.figures.count(self.ctx.byzantine, clients, set())
            return False
        ledger.ok(agg.tx("secagg_survivors", {**ids, "survivors": survivors}))
        ledger.ok(*[self.trainer(k).tx("secagg_unmask", {**ids, **_ref(seed + k.encode() + b"unmask", 1)})
                    for k in survivors])
        used = [sec.survivors[g] for g in good]
        kept = sorted(selected[pos] for group, v in zip(used, verdicts, strict=True) if v != "flagged"
                      for pos in group)
        # Screened trainers were already penalized by the chain at the roster; these are the rule's flags.
        flagged = sorted([selected[pos] for group, v in zip(used, verdicts, strict=True) if v == "flagged"
                          for pos in group] + [selected[pos] for g in bad_groups for pos in sec.survivors[g]])
        return self._propose(ids, clients, base, unflatten(vector, layout), kept, flagged)

    def _inconsistent_groups(self, sec: SecureRound, subs: list[Submission]) -> set[int]:
        """Unmasked groups whose members' projection claims do not add up to ⟨group sum, r̂⟩ (someone lied)."""
        if self.unit_ref is None:
            return set()
        bad = set()
        cfg = self.ctx.cfg
        for g, (mean, count, members, size) in enumerate(zip(sec.means, sec.counts, sec.survivors, sec.sizes,
                                                              strict=True)):  # members: rows of `subs`
            share_sd = distributed_std(float(cfg.noise_multiplier), float(cfg.clip_norm), size,
                                       noise_quorum(cfg.noise_quorum_pct, size)) if self.noised else 0.0
            step = 1.0 / Quantizer.for_field(float(cfg.secagg_clip), size).scale
            claims = [subs[pos].claim for pos in members]
            if not claims_consistent([c for c in claims if c is not None], mean.astype(np.float64) * count,
                                     self.unit_ref, share_sd * math.sqrt(count), step):
                bad.add(g)
        return bad

    def _commit(self, ids: dict[str, Any], rnd: RoundRecord, selected: list[str], online: list[int],
                subs: list[Submission] | list[ClientUpdate], refs: list[PayloadRef]) -> None:
        """The online trainers' commit_contribution txs in one block; records the ε the chain debited."""
        bodies = []
        for pos, ref in zip(online, refs, strict=True):
            sub = subs[pos]
            dp = sub.dp if isinstance(sub, Submission) else sub.mechanism
            bodies.append(self.trainer(selected[pos]).tx("commit_contribution", {
                **ids, "base_version": rnd["base_version"], "num_examples": sub.num_examples,
                "dp": dp if self.private else None, **ref}))
            if self.private:
                self.planner.spend(sub.client, dp)
        results = self.ledger.ok(*bodies)
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

    def _plaintext(self, number: int, rnd: RoundRecord, base: Tensors, updates: list[ClientUpdate]) -> bool:
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
        contributions = self.ledger.view.contributions(TASK, number)
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
        model = self._cleaned(apply_delta(base, delta))
        proposed = self.ledger.ok(self.ledger.aggregator.tx("propose_version", {
            **ids, **content_ref(encode_tensors(model)), "contributors": kept,
            "dropped": [{"participant": w, "reason": "robust_flagged"} for w in flagged]}))
        version = next(int(dict(e.attributes)["version"]) for e in proposed[0].events
                       if "version" in dict(e.attributes))
        self.models[version] = model
        self._attest(version, model)
        return True

    def _cleaned(self, model: Tensors) -> Tensors:
        """With backdoor_unlearning: scan the candidate on the root data and unlearn a suspected stamp."""
        cfg = self.ctx.cfg
        if not cfg.backdoor_unlearning:
            return model
        found = scan_model(self.ctx.data.spec, model, self.ctx.data.canary)
        if found.suspect_label is None or found.mask is None or found.pattern is None:
            return model
        self.unlearned += 1
        return unlearn(self.ctx.data.spec, model, self.ctx.data.canary, found.mask, found.pattern, lr=cfg.lr,
                       epochs=5, batch_size=cfg.batch_size, fraction=1.0,
                       seed=derive_int(self.ctx.seed, "unlearn", self.ledger.height))

    def _attest(self, version: int, model: Tensors) -> None:
        """The evaluator's attestation: canary accuracy on its own canary set; no trigger (it knows none).

        The chain quarantines a version whose accuracy regressed past the task's max_regression_ppm.
        """
        acc = canary_accuracy(self.ctx.data.spec, model, self.ctx.data.canary)
        asr = 0
        metrics = hashlib.sha256(f"{acc.accuracy_ppm}/{asr}".encode()).hexdigest()
        res = self.ledger.block(self.ledger.evaluators[0].tx("attest_version", {
            "task_id": TASK, "version": version, "metrics_sha256": metrics,
            "canary_accuracy_ppm": acc.accuracy_ppm, "backdoor_asr_ppm": asr}))
        if res[0].code not in (0, Code.VERSION_DECIDED):
            raise RuntimeError(f"attestation refused: {res[0].log}")
        if self.ledger.view.version(TASK, version)["status"] == "promoted":
            self.promoted += 1

    def reputation(self) -> tuple[float, float]:
        """Mean reputation (units) of the honest and of the Byzantine trainers at the current height."""
        dids = [t.did for t in self.ledger.trainers]
        scores = scores_at(self.ledger.store, dids, self.ledger.height)
        honest = [sc for i, sc in enumerate(scores) if i not in self.ctx.byzantine]
        byz = [sc for i, sc in enumerate(scores) if i in self.ctx.byzantine]
        return (float(np.mean(honest)) / 1e6 if honest else float("nan"),
                float(np.mean(byz)) / 1e6 if byz else float("nan"))

    def promoted_versions(self) -> int:
        """How many proposed versions the evaluators promoted."""
        return self.promoted

    def trusted(self) -> Tensors:
        return self.models[self.ledger.view.last_good(TASK)]

    def epsilon(self) -> float:
        return max(self.epsilon_micro.values(), default=0) / 1e6

    def quarantined(self) -> int:
        versions = self.ledger.view.versions(TASK)
        return sum(1 for v in versions if v.get("status") == "quarantined")


def run_fedledger(ctx: RunContext, init: Tensors, result: RunResult,
                  evaluate_round: Callable[[Tensors], None]) -> Tensors:
    """Run every round on the chain; fills the result's chain figures and returns the last promoted model."""
    run = _Run(ctx, init)
    try:
        final = drive_rounds(run, ctx, result, evaluate_round)
        result.sybil_attempts, result.sybil_refused = run.sybils
        result.screened = run.screened_count
        return final
    finally:
        run.ledger.close()
