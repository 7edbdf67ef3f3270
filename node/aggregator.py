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

from fedledger.abci_app.errors import Code
from fedledger.client.chainview import ChainView
from fedledger.client.errors import ClientError
from fedledger.client.submit import Submitter
from fedledger.ipfs import ContentStore, IntegrityError, StoreError
from fedledger.node.aggregation import AggregationError, WeightedUpdate, apply_delta
from fedledger.node.aggregation.fedavg import aggregate as fedavg
from fedledger.node.follow import PERMANENT, follow_task
from fedledger.node.tensors import PayloadError, decode_tensors, encode_tensors

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

    def step(self) -> str:
        """Advance the task by at most one action, chosen from chain state; returns what it did."""
        task = self.view.task(self.task_id)
        current = task["current_round"]
        if current == 0:
            return self._open(1)
        rnd = self.view.round(self.task_id, current)
        status = rnd["status"]
        if status == "open":
            height = self.submitter.rpc.height()
            if rnd["contributions"] >= task["round_size"] or height > rnd["deadline_height"]:
                self.submitter.send("close_round", {"task_id": self.task_id, "round": current})
                return f"closed round {current}"
            return "waiting"
        if status == "closed":
            outcome = self.aggregate_round(task, rnd)
            return f"proposed version {outcome.version} from round {current}" if outcome.version else "idle"
        pending = self._undecided_version(rnd)
        if pending is not None:
            # Rounds train from the last promoted version: opening now would train from an older one.
            return f"waiting for evaluators to decide version {pending}"
        if self.max_rounds is not None and current >= self.max_rounds:
            return "finished"
        return self._open(current + 1)

    def _undecided_version(self, rnd: dict[str, Any]) -> int | None:
        if rnd["status"] != "aggregated" or rnd["version"] is None:
            return None
        version = self.view.version(self.task_id, rnd["version"])
        return int(version["version"]) if version["status"] == "proposed" else None

    def _open(self, rnd: int) -> str:
        if not self.auto_open:
            return "waiting for the owner to open a round"
        self.submitter.send("open_round", {"task_id": self.task_id, "round": rnd})
        return f"opened round {rnd}"

    def fetch_verified(self, contributions: list[dict[str, Any]]) -> tuple[list[WeightedUpdate], dict[str, str]]:
        """Fetch every committed payload, keep those whose bytes match their commitment."""
        updates: list[WeightedUpdate] = []
        dropped: dict[str, str] = {}
        for c in contributions:
            who = c["participant"]
            try:
                data = self.store.get(c["cid"], c["sha256"])
                if len(data) != c["size"]:
                    raise PayloadError(f"payload is {len(data)} bytes, commitment says {c['size']}")
                tensors = decode_tensors(data)
            except (StoreError, PayloadError) as exc:
                log.warning("dropping contribution of %s…: %s", who[:16], exc)
                dropped[who] = str(exc)
                if isinstance(exc, IntegrityError) or "commitment says" in str(exc):
                    self.mismatched.add(who)  # the bytes do not match what was signed: costs reputation
                continue
            updates.append(WeightedUpdate(contribution_id=c["id"], tensors=tensors, num_examples=c["num_examples"]))
        return updates, dropped

    def aggregate_round(self, task: dict[str, Any], rnd: dict[str, Any]) -> RoundOutcome:
        """Aggregate a closed round and propose the next version with exactly the included contributions."""
        number = rnd["round"]
        outcome = RoundOutcome(round=number)
        updates, outcome.dropped = self.fetch_verified(self.view.contributions(self.task_id, number))
        if not updates:
            log.error("round %d: no verifiable contribution; marking the round failed", number)
            self.submitter.send("fail_round", {"task_id": self.task_id, "round": number,
                                               "reason": "no contribution passed verification"})
            self.outcomes.append(outcome)
            return outcome
        base_rec = self.view.version(self.task_id, rnd["base_version"])
        base = decode_tensors(self.store.get(base_rec["cid"], base_rec["sha256"]))
        try:
            model = apply_delta(base, self.rule(updates))
        except AggregationError as exc:
            # Updates whose shapes disagree cannot be averaged; which side is wrong is guesswork,
            # so the round is failed on chain with the reason, and the task moves on.
            log.error("round %d: aggregation failed: %s", number, exc)
            self.submitter.send("fail_round", {"task_id": self.task_id, "round": number,
                                               "reason": f"aggregation failed: {exc}"[:200]})
            self.outcomes.append(outcome)
            return outcome
        payload = encode_tensors(model)
        cid = self.store.put(payload)
        self.store.pin(cid)
        included = sorted(u.contribution_id.rsplit("/", 1)[1] for u in updates)
        penalized = sorted(w for w in outcome.dropped if w in self.mismatched)
        result = self.submitter.send("propose_version", {
            "task_id": self.task_id, "round": number, "cid": cid, "sha256": hashlib.sha256(payload).hexdigest(),
            "size": len(payload), "contributors": included,
            "dropped": [{"participant": w, "reason": "hash_mismatch"} for w in penalized],
        })
        version = result.attr("fl", "version")
        outcome.version = int(version) if version is not None else None
        outcome.included = included
        log.info("round %d: version %s from %d contributions (%d dropped)", number, version, len(included),
                 len(outcome.dropped))
        self.outcomes.append(outcome)
        return outcome

    async def run(self, poll_s: float = 1.0, on_step: Callable[[str], None] | None = None) -> None:
        """Follow the task's events over the websocket and step on each one (and at least every poll_s)."""
        await asyncio.to_thread(self.check_role)
        await follow_task(self.submitter.rpc.url, self.task_id, self.step, self.done, poll_s=poll_s,
                          on_step=on_step, permanent=PERMANENT | {Code.NOT_FOUND})
