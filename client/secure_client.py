"""A trainer's side of SecAgg+ rounds, driven by chain state: keys, shares, masked input, reveal.

The secrets of a round (X25519 keys, the self-mask seed, the shares received) live only in this
process's memory. A client that restarts mid-round has lost them: it simply becomes a dropout of
that round, which the protocol recovers from, and it takes part again from the next round.

`make_update` trains (or, in tests, fabricates) the update. It is called once per round, while
the round collects keys, so the update is ready by the time masked inputs are due.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from fedledger.abci_app.modules.federation.records import PayloadRef, RoundRecord, TaskRecord
from fedledger.abci_app.modules.secagg.records import Board, PayloadPost
from fedledger.client.receipt import ContributionReceipt
from fedledger.ipfs import ContentStore, StoreError
from fedledger.sdk.chainview import ChainView
from fedledger.sdk.flat import flatten_model
from fedledger.sdk.policy import NotSecureError, secure_of
from fedledger.sdk.secagg import SecAggClient, SecAggError, ShareKeysMessage
from fedledger.sdk.secure_plan import GroupPlan, RoundPlan, advertisements, plan_round
from fedledger.sdk.steps import Action, Step
from fedledger.sdk.submit import Submitter
from fedledger.sdk.tensors import Tensors, decode_tensors

if TYPE_CHECKING:
    from fedledger.sdk.compliance.prover import NormCircuit

__all__ = ["SecureParticipant", "Update", "UpdateFn", "distributed_dp_update"]

log = logging.getLogger("fedledger.secure_client")


@dataclass(frozen=True)
class Update:
    """What a trainer contributes: the delta, its example count and the DP mechanism it declares."""

    delta: Tensors
    num_examples: int
    dp: dict[str, object]
    # zkDPS: the clip-bound proof of the clipped update (sdk.compliance), on tasks that require one. The
    # proof's Poseidon hash is of the unmasked update; nothing here binds it to the masked payload.
    norm_proof: dict[str, object] | None = None


# (task record, round record, base model) -> the update to contribute
UpdateFn = Callable[[TaskRecord, RoundRecord, Tensors], Update]


class _Trained(Protocol):
    @property
    def delta(self) -> Tensors: ...

    @property
    def num_examples(self) -> int: ...


def distributed_dp_update(task: TaskRecord, rnd: RoundRecord, me: str,
                          train: Callable[[], _Trained], norm_circuit: NormCircuit | None = None) -> Update:
    """Update-level distributed DP: train without per-example noise, clip the whole update to the task's
    clip in L2, add this client's 1/g share of N(0, (σ·clip)²) (g = its SecAgg group's size), and
    declare (σ, q=1, 1 step) for the chain's accountant. The group sum then carries the full noise,
    and no party, the aggregator included, ever sees an un-noised sum.

    With `norm_circuit` (a task that requires norm proofs) the clipped update, before its noise share,
    is proved within the circuit's bound: the noise is the DP mechanism's, not the client's choice,
    and its scale is declared; the proof bounds what the client trained, not the noised payload.
    """
    from fedledger.sdk.compliance.prover import prove_norm
    from fedledger.sdk.dp import add_distributed_noise, clip_update, declared_dp
    from fedledger.sdk.flat import flatten_model, unflatten

    secure = secure_of(task)
    if secure["noise_multiplier"] is None:
        raise NotSecureError(f"task {task['task_id']!r} adds no distributed noise (its noise_multiplier is null)")
    sigma, clip = float(secure["noise_multiplier"]), float(secure["clip"])
    result = train()
    vector, layout = flatten_model(result.delta)
    dim = int(vector.shape[0])
    plan = plan_round(task, rnd, dim)
    group_size = len(plan.group_of(plan.index_of(me)).members)
    clipped, _ = clip_update(vector, clip)
    proof = prove_norm(norm_circuit, clipped).body() if norm_circuit is not None else None
    noised = add_distributed_noise(clipped, sigma, clip, group_size)
    # The chain-canonical decimal strings, not the floats: 1.2 as a float would declare 1.199999.
    return Update(unflatten(noised, layout), result.num_examples,
                  declared_dp(secure["noise_multiplier"], secure["clip"]), norm_proof=proof)


@dataclass
class _RoundSecrets:
    plan: RoundPlan
    group: GroupPlan
    index: int
    client: SecAggClient
    update: Update | None = None
    posted: set[str] = field(default_factory=set)


class SecureParticipant:
    """Drives one trainer through every secure round of a task it is selected for."""

    def __init__(self, submitter: Submitter, store: ContentStore, task_id: str, make_update: UpdateFn) -> None:
        self.submitter = submitter
        self.view = ChainView(submitter.rpc)
        self.store = store
        self.task_id = task_id
        self.make_update = make_update
        self.me = submitter.key.public_hex
        self._rounds: dict[int, _RoundSecrets] = {}
        self._residual: np.ndarray[Any, np.dtype[np.float32]] | None = None
        self.receipts: list[ContributionReceipt] = []

    def _put(self, data: bytes) -> PayloadRef:
        cid = self.store.put(data)
        self.store.pin(cid)
        return {"cid": cid, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}

    def _payload(self, ref: PayloadRef | PayloadPost) -> bytes:
        return self.store.get(ref["cid"], ref["sha256"])

    def step(self) -> Step:
        """Take at most one protocol action in the task's current round; returns what it did."""
        task = self.view.task(self.task_id)
        number = task["current_round"]
        if number == 0:
            return Step(Action.WAITING, "waiting for a round")
        rnd = self.view.round(self.task_id, number)
        sa = rnd.get("secagg")
        if sa is None or rnd["status"] == "failed" or self.me not in rnd["selected"]:
            return Step(Action.NOT_SELECTED, "not in this round", round=number)
        board = self.view.board(self.task_id, number)
        stage = sa["stage"]
        if stage == "keys":
            return self._advertise(task, rnd, board)
        state = self._rounds.get(number)
        if state is None:
            return Step(Action.SAT_OUT, "no secrets for this round (restarted?); sitting it out", round=number)
        if stage == "shares" and self.me in sa["roster"] and "shares" not in state.posted:
            return self._share(state, number, board)
        if stage == "input" and self.me in sa["sharers"] and "input" not in state.posted:
            return self._mask(state, task, rnd, board)
        if stage == "unmask" and self.me in sa["survivors"] and "unmask" not in state.posted:
            return self._reveal(state, rnd)
        return Step(Action.WAITING, f"waiting in stage {stage}", round=number)

    def _advertise(self, task: TaskRecord, rnd: RoundRecord, board: Board) -> Step:
        number = rnd["round"]
        if self.me in board["keys"]:
            return Step(Action.WAITING, "keys already posted", round=number)
        base_rec = self.view.version(self.task_id, rnd["base_version"])
        base = decode_tensors(self.store.get(base_rec["cid"], base_rec["sha256"]))
        dim = int(sum(np.asarray(t).size for t in base.values()))
        plan = plan_round(task, rnd, dim)
        index = plan.index_of(self.me)
        group = plan.group_of(index)
        client = SecAggClient(group.setup, index)
        adv = client.advertise()
        state = _RoundSecrets(plan, group, index, client)
        self._rounds = {number: state}  # older rounds' secrets are useless now: drop them
        self.submitter.send("secagg_keys", {"task_id": self.task_id, "round": number,
                                            "c_pk": adv.c_pk.hex(), "s_pk": adv.s_pk.hex()})
        # Train while the others advertise: the update is due only at the input stage.
        state.update = self.make_update(task, rnd, base)
        return Step(Action.POSTED_KEYS, f"posted keys for round {number}", round=number)

    def _share(self, state: _RoundSecrets, number: int, board: Board) -> Step:
        roster = advertisements(state.plan, state.group, board["keys"])
        msg = state.client.share_keys(roster)
        ref = self._put(msg.to_bytes())
        self.submitter.send("secagg_shares", {"task_id": self.task_id, "round": number, **ref})
        state.posted.add("shares")
        return Step(Action.POSTED_SHARES, f"posted shares for round {number}", round=number)

    def _group_shares(self, state: _RoundSecrets, board: Board, sharers: list[str]) -> list[ShareKeysMessage]:
        out = []
        neighbours = set(state.group.setup.neighbours(state.index))
        for participant in sharers:
            index = state.plan.index_of(participant)
            if index not in neighbours:
                continue
            try:
                out.append(ShareKeysMessage.from_bytes(self._payload(board["shares"][participant])))
            except (StoreError, SecAggError) as exc:
                # A neighbour's unreadable shares cannot be used; the round goes on without them.
                log.warning("round %s: shares of %s… unusable: %s", board, participant[:16], exc)
        return out

    def _mask(self, state: _RoundSecrets, task: TaskRecord, rnd: RoundRecord, board: Board) -> Step:
        number = rnd["round"]
        update = state.update
        assert update is not None
        vector, _ = flatten_model(update.delta)
        if state.plan.coords is not None:
            # Error feedback: what the shared coordinates leave out this round is sent in a later one.
            if self._residual is not None and self._residual.shape == vector.shape:
                vector = vector + self._residual
            self._residual = vector.copy()
            self._residual[state.plan.coords] = 0.0
        quantized = state.group.quantizer.quantize(state.plan.to_wire(vector))
        masked = state.client.masked_input(quantized, self._group_shares(state, board, rnd["secagg"]["sharers"]))
        ref = self._put(masked.to_bytes())
        started = time.monotonic()
        outcome = self.submitter.send("commit_contribution", {
            "task_id": self.task_id, "round": number, "base_version": rnd["base_version"], **ref,
            "num_examples": update.num_examples, "dp": update.dp,
            **({"norm_proof": update.norm_proof} if update.norm_proof is not None else {}),
        })
        state.posted.add("input")
        spent = outcome.attr("fl", "epsilon_micro")
        self.receipts.append(ContributionReceipt(self.task_id, number, ref["cid"], ref["sha256"], ref["size"],
                                                 outcome.height, time.monotonic() - started,
                                                 int(spent) / 1e6 if spent is not None else float("nan")))
        return Step(Action.COMMITTED_INPUT, f"committed masked input for round {number}", round=number)

    def _reveal(self, state: _RoundSecrets, rnd: RoundRecord) -> Step:
        sa = rnd["secagg"]
        members = set(state.group.members)
        survivors = [i for i in state.plan.indices(sa["survivors"]) if i in members]
        dropped = [i for i in state.plan.indices(sa["sharers"]) if i in members and i not in survivors]
        if len(survivors) < 2:
            # A one-member sum is that member's input: refuse to help reveal it.
            state.posted.add("unmask")
            return Step(Action.REFUSED_UNMASK,
                        f"refusing to unmask round {rnd['round']}: only {len(survivors)} survivor(s) in my group",
                        round=rnd["round"])
        msg = state.client.unmask(survivors, dropped)
        ref = self._put(msg.to_bytes())
        self.submitter.send("secagg_unmask", {"task_id": self.task_id, "round": rnd["round"], **ref})
        state.posted.add("unmask")
        return Step(Action.REVEALED_SHARES, f"revealed shares for round {rnd['round']}", round=rnd["round"])
