"""The aggregator service: follows a task on chain, closes rounds, verifies payloads, publishes versions.

It keeps no memory between steps: every decision is derived from chain state, so a restarted
aggregator resumes exactly where the chain is.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fedledger.abci_app.errors import Code, ConfigError
from fedledger.abci_app.modules.federation.aggregation import aggregation_of
from fedledger.abci_app.modules.federation.records import ContributionRecord, RoundRecord, TaskRecord
from fedledger.ipfs import ContentStore, IntegrityError, StoreError
from fedledger.node.aggregation import AggregationError, WeightedUpdate, apply_delta
from fedledger.node.aggregation.central import central_dp_mean, next_clip
from fedledger.node.aggregation.fedavg import aggregate as fedavg
from fedledger.node.aggregation.robust_delta import plaintext_delta
from fedledger.node.follow import PERMANENT, follow_task
from fedledger.sdk.chainview import ChainView
from fedledger.sdk.compression import CompressionError
from fedledger.sdk.compression.payload import decode_update
from fedledger.sdk.dp import update_noise_multiplier
from fedledger.sdk.errors import ClientError
from fedledger.sdk.policy import secure_of
from fedledger.sdk.secure_plan import RoundPlan
from fedledger.sdk.steps import Action, Step
from fedledger.sdk.submit import Submitter
from fedledger.sdk.tensors import PayloadError, Tensors, decode_tensors, encode_tensors

__all__ = ["Aggregator", "RoundOutcome"]

log = logging.getLogger("fedledger.aggregator")
Rule = Callable[[Sequence[WeightedUpdate]], dict[str, Any]]


@dataclass
class RoundOutcome:
    """What the aggregator did with one closed round."""

    round: int
    version: int | None = None
    included: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)  # participant -> reason


class Aggregator:
    """Drives one task's rounds: open, close at deadline or when full, aggregate, propose."""

    def __init__(self, submitter: Submitter, store: ContentStore, task_id: str, rule: Rule = fedavg,
                 max_rounds: int | None = None, auto_open: bool = True) -> None:
        self.submitter = submitter
        self.view = ChainView(submitter.rpc)
        self.store = store
        self.task_id = task_id
        self.rule = rule
        self.max_rounds = max_rounds
        self.auto_open = auto_open
        self.outcomes: list[RoundOutcome] = []
        self.mismatched: set[str] = set()

    def check_role(self) -> None:
        """Refuse to start unless this key is the task's aggregator (a permanent misconfiguration)."""
        task = self.view.task(self.task_id)
        me = self.submitter.key.public_hex
        if task["aggregator"] != me:
            raise ClientError(f"key {self.submitter.key.name} ({me[:16]}…) is not the aggregator of task "
                              f"{self.task_id!r}; its aggregator is {task['aggregator'][:16]}…")

    def done(self) -> bool:
        """True once max_rounds rounds are aggregated or failed."""
        if self.max_rounds is None:
            return False
        task = self.view.task(self.task_id)
        if task["current_round"] < self.max_rounds:
            return False
        rnd = self.view.round(self.task_id, task["current_round"])
        return rnd["status"] in ("aggregated", "failed") and self._undecided_version(rnd) is None

    def step(self) -> Step:
        """Advance the task by at most one action, chosen from chain state; returns what it did."""
        task = self.view.task(self.task_id)
        current = task["current_round"]
        if current == 0:
            return self._open(1)
        rnd = self.view.round(self.task_id, current)
        status = rnd["status"]
        if "secagg" in rnd and status in ("open", "closed"):
            return self._secure_step(task, rnd)
        if status == "open":
            height = self.submitter.rpc.height()
            if rnd["contributions"] >= task["round_size"] or height > rnd["deadline_height"]:
                self.submitter.send("close_round", {"task_id": self.task_id, "round": current})
                return Step(Action.CLOSED_ROUND, f"closed round {current}", round=current)
            return Step(Action.WAITING, "waiting", round=current)
        if status == "closed":
            outcome = self.aggregate_round(task, rnd)
            if outcome.version:
                return Step(Action.PROPOSED_VERSION, f"proposed version {outcome.version} from round {current}",
                            round=current, version=outcome.version)
            return Step(Action.IDLE, "idle", round=current)
        pending = self._undecided_version(rnd)
        if pending is not None:
            # Rounds train from the last promoted version: opening now would train from an older one.
            return Step(Action.WAITING, f"waiting for evaluators to decide version {pending}", round=current,
                        version=pending)
        if self.max_rounds is not None and current >= self.max_rounds:
            return Step(Action.FINISHED, "finished", round=current)
        return self._open(current + 1)

    def _secure_step(self, task: TaskRecord, rnd: RoundRecord) -> Step:
        """One action in a secure round: advance a stage, close, fix the survivors, or unmask and propose."""
        from fedledger.node.secure_aggregate import check_masked_inputs, combine_groups

        number, sa = rnd["round"], rnd["secagg"]
        height = self.submitter.rpc.height()
        policy = secure_of(task)
        ids = {"task_id": self.task_id, "round": number}
        timed_out = height > sa["since"] + policy["stage_blocks"]
        if sa["stage"] in ("keys", "shares"):
            board = self.view.board(self.task_id, number)
            expected = rnd["selected"] if sa["stage"] == "keys" else sa["roster"]
            if len(board[sa["stage"]]) >= len(expected) or timed_out:
                self.submitter.send("secagg_advance", ids)
                return Step(Action.ADVANCED_STAGE, f"advanced round {number} past stage {sa['stage']}", round=number)
            return Step(Action.WAITING, f"waiting for {sa['stage']} ({len(board[sa['stage']])}/{len(expected)})",
                        round=number)
        if sa["stage"] == "input":
            if rnd["contributions"] >= len(sa["sharers"]) or height > rnd["deadline_height"]:
                self.submitter.send("close_round", ids)
                return Step(Action.CLOSED_ROUND, f"closed round {number}", round=number)
            return Step(Action.WAITING, "waiting for masked inputs", round=number)
        plan, base = self._secure_plan(task, rnd)
        contributions = self.view.contributions(self.task_id, number)
        if sa["stage"] == "closed":
            survivors, unusable = check_masked_inputs(self.store, plan, contributions, task)
            self.mismatched |= {w for w, why in unusable.items() if "commitment" in why or "sha256" in why}
            if len(survivors) < task["min_contributions"]:
                self.submitter.send("fail_round", {**ids, "reason": f"only {len(survivors)} usable masked inputs"})
                return Step(Action.FAILED_ROUND, f"failed round {number}", round=number)
            self.submitter.send("secagg_survivors", {**ids, "survivors": survivors})
            return Step(Action.FIXED_SURVIVORS, f"fixed {len(survivors)} survivors of round {number}", round=number)
        board = self.view.board(self.task_id, number)
        if len(board["unmask"]) < len(sa["survivors"]) and not timed_out:
            return Step(Action.WAITING, f"waiting for revealed shares ({len(board['unmask'])}/{len(sa['survivors'])})",
                        round=number)
        outcome = combine_groups(self.store, plan, task, rnd, board, contributions)
        if outcome.vector is None or not outcome.contributors:
            self.submitter.send("fail_round", {**ids, "reason": "no group could be unmasked"[:200]})
            return Step(Action.FAILED_ROUND, f"failed round {number}: {outcome.failed_groups}", round=number)
        from fedledger.sdk.flat import layout_of, unflatten

        delta = unflatten(outcome.vector, layout_of(base))
        dropped = {w: "robust_flagged" for w in outcome.flagged}
        dropped |= {c["participant"]: "hash_mismatch" for c in contributions
                    if c["participant"] in self.mismatched and c["participant"] not in outcome.contributors}
        return self._publish(number, apply_delta(base, delta), outcome.contributors, dropped)

    def _secure_plan(self, task: TaskRecord, rnd: RoundRecord) -> tuple[RoundPlan, Tensors]:
        from fedledger.sdk.secure_plan import plan_round

        base_rec = self.view.version(self.task_id, rnd["base_version"])
        base = decode_tensors(self.store.get(base_rec["cid"], base_rec["sha256"]))
        dim = int(sum(v.size for v in base.values()))
        return plan_round(task, rnd, dim), base

    def _publish(self, number: int, model: Tensors, included: list[str], dropped: dict[str, str],
                 extra: dict[str, str] | None = None) -> Step:
        """Store the model and propose it as the round's version with its contributors and penalized drops."""
        payload = encode_tensors(model)
        cid = self.store.put(payload)
        self.store.pin(cid)
        result = self.submitter.send("propose_version", {
            "task_id": self.task_id, "round": number, "cid": cid, "sha256": hashlib.sha256(payload).hexdigest(),
            "size": len(payload), "contributors": sorted(included),
            "dropped": [{"participant": w, "reason": r} for w, r in sorted(dropped.items())],
            **self._artifact(model), **(extra or {}),
        })
        attr = result.attr("fl", "version")
        version = int(attr) if attr is not None else None
        self.outcomes.append(RoundOutcome(round=number, version=version, included=sorted(included),
                                          dropped=dict(dropped)))
        return Step(Action.PROPOSED_VERSION, f"proposed version {attr} from round {number}", round=number,
                    version=version)

    def _artifact(self, model: Tensors) -> dict[str, Any]:
        """The version's ONNX export, stored and pinned, as the proposal's `artifact` field.

        The export is deterministic (sdk/inference/onnx_export.py), so anyone can rebuild it from
        the weights and check the sha256 the proposal signs. Without the inference extra (no onnx
        installed) the version is proposed without one, and inference nodes will not serve it.
        """
        try:
            from fedledger.sdk.inference.onnx_export import export_onnx
        except ImportError:
            return {}
        spec = self.view.task(self.task_id)["model_spec"]
        try:
            data = export_onnx(spec, model)
        except ConfigError as exc:
            # A task whose model is not one of the exporter's specs (any string names a task's model on
            # chain) still trains; its versions just cannot be served.
            log.warning("task %s: version proposed without an ONNX artifact: %s", self.task_id, exc)
            return {}
        cid = self.store.put(data)
        self.store.pin(cid)
        return {"artifact": {"format": "onnx", "cid": cid, "sha256": hashlib.sha256(data).hexdigest(),
                             "size": len(data)}}

    def _undecided_version(self, rnd: RoundRecord) -> int | None:
        if rnd["status"] != "aggregated" or rnd["version"] is None:
            return None
        version = self.view.version(self.task_id, rnd["version"])
        return int(version["version"]) if version["status"] == "proposed" else None

    def _open(self, number: int) -> Step:
        if not self.auto_open:
            return Step(Action.WAITING, "waiting for the owner to open a round", round=number)
        self.submitter.send("open_round", {"task_id": self.task_id, "round": number})
        return Step(Action.OPENED_ROUND, f"opened round {number}", round=number)

    def fetch_verified(self, contributions: list[ContributionRecord], base: Tensors,
                       task: TaskRecord | None = None) -> tuple[list[WeightedUpdate], dict[str, str]]:
        """Fetch every committed payload, keep those whose bytes match their commitment and decode.

        Compressed payloads (the task's compression policy) decode in the base model's layout. On a
        task that requires norm proofs (given `task`), an update whose Poseidon hash is not its
        verified proof's is dropped too, and costs reputation like a sha256 mismatch.
        """
        from fedledger.node.compliance_check import requires_norm_proof, update_hash_mismatch
        from fedledger.sdk.flat import flatten_model

        check_norm = task is not None and requires_norm_proof(task)
        updates: list[WeightedUpdate] = []
        dropped: dict[str, str] = {}
        for c in contributions:
            who = c["participant"]
            try:
                data = self.store.get(c["cid"], c["sha256"])
                if len(data) != c["size"]:
                    raise PayloadError(f"payload is {len(data)} bytes, commitment says {c['size']}")
                tensors = decode_update(data, base)
                why = update_hash_mismatch(c, flatten_model(tensors)[0]) if check_norm else None
                if why is not None:
                    self.mismatched.add(who)
                    raise PayloadError(why)
            except (StoreError, PayloadError, CompressionError, AggregationError) as exc:
                log.warning("dropping contribution of %s…: %s", who[:16], exc)
                dropped[who] = str(exc)
                if isinstance(exc, IntegrityError) or "commitment says" in str(exc):
                    self.mismatched.add(who)  # the bytes do not match what was signed: costs reputation
                continue
            updates.append(WeightedUpdate(contribution_id=c["id"], tensors=tensors, num_examples=c["num_examples"]))
        return updates, dropped

    def aggregate_round(self, task: TaskRecord, rnd: RoundRecord) -> RoundOutcome:
        """Aggregate a closed round and propose the next version with exactly the included contributions."""
        number = rnd["round"]
        outcome = RoundOutcome(round=number)
        base_rec = self.view.version(self.task_id, rnd["base_version"])
        base = decode_tensors(self.store.get(base_rec["cid"], base_rec["sha256"]))
        updates, outcome.dropped = self.fetch_verified(self.view.contributions(self.task_id, number), base,
                                                        task)
        if not updates:
            log.error("round %d: no verifiable contribution; marking the round failed", number)
            self.submitter.send("fail_round", {"task_id": self.task_id, "round": number,
                                               "reason": "no contribution passed verification"})
            self.outcomes.append(outcome)
            return outcome
        flagged: list[str] = []
        extra: dict[str, str] = {}
        try:
            policy = aggregation_of(task)
            central = policy.get("central_noise")
            if central is not None:
                sigma, clip = float(central["noise_multiplier"]), float(central["clip"])
                if "adaptive" in central:
                    # The bits spend part of the budget: the updates get z_Δ so the round costs what z costs.
                    sigma = update_noise_multiplier(sigma, float(central["adaptive"]["bit_noise"]))
                    extra["next_clip"] = next_clip(updates, clip, central["adaptive"], task["round_size"])
                delta = central_dp_mean(updates, sigma, clip)
            elif policy["rule"] == "fedavg" and self.rule is not fedavg:
                delta = self.rule(updates)  # a rule injected by the caller (tests, custom deployments)
            else:
                delta, flagged = plaintext_delta(updates, policy["rule"], policy["byzantine"])
            model = apply_delta(base, delta)
        except AggregationError as exc:
            # Updates whose shapes disagree cannot be combined; which side is wrong is guesswork,
            # so the round is failed on chain with the reason, and the task moves on.
            log.error("round %d: aggregation failed: %s", number, exc)
            self.submitter.send("fail_round", {"task_id": self.task_id, "round": number,
                                               "reason": f"aggregation failed: {exc}"[:200]})
            self.outcomes.append(outcome)
            return outcome
        included = sorted(u.contribution_id.rsplit("/", 1)[1] for u in updates if u.contribution_id not in flagged)
        dropped = {w: "hash_mismatch" for w in outcome.dropped if w in self.mismatched}
        dropped |= {cid.rsplit("/", 1)[1]: "robust_flagged" for cid in flagged}
        self._publish(number, model, included, dropped, extra)
        published = self.outcomes[-1]
        published.dropped = {**outcome.dropped, **published.dropped}
        log.info("round %d: version %s from %d contributions (%d dropped)", number, published.version,
                 len(included), len(published.dropped))
        return published

    async def run(self, poll_s: float = 1.0, on_step: Callable[[Step], None] | None = None) -> None:
        """Follow the task's events over the websocket and step on each one (and at least every poll_s)."""
        await asyncio.to_thread(self.check_role)
        await follow_task(self.submitter.rpc.url, self.task_id, self.step, self.done, poll_s=poll_s,
                          on_step=on_step, permanent=PERMANENT | {Code.NOT_FOUND})
