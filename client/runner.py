"""The participant loop behind `fedledger client run`: follow rounds, train locally, upload, commit."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable

from fedledger.abci_app.did.credentials import did_of_key
from fedledger.abci_app.modules.federation.records import RoundRecord, TaskRecord
from fedledger.client.receipt import ContributionReceipt
from fedledger.ipfs import ContentStore, StoreError
from fedledger.sdk.chainview import ChainView
from fedledger.sdk.compression.payload import UpdateEncoder
from fedledger.sdk.errors import ClientError
from fedledger.sdk.ml.data import ClientData
from fedledger.sdk.ml.dpsgd import DPConfig, fresh_seed
from fedledger.sdk.policy import secure_of
from fedledger.sdk.steps import Action, Step
from fedledger.sdk.submit import Submitter
from fedledger.sdk.tensors import Tensors, decode_tensors

__all__ = ["contribute_update", "run_client"]

log = logging.getLogger("fedledger.client")
_BATCH = 32


def contribute_update(submitter: Submitter, store: ContentStore, task_id: str, number: int, base_version: int,
                      payload: bytes, num_examples: int, mechanism: dict[str, object],
                      norm_proof: dict[str, object] | None = None) -> ContributionReceipt:
    """Upload a payload to the content store, then commit its CID, sha256 and declared DP mechanism on chain.

    `norm_proof`: on a task that requires norm proofs, the clip-bound proof of the update
    (sdk.compliance.prove_norm(circuit, vector).body()); it travels in the same commit tx.
    """
    cid = store.put(payload)
    store.pin(cid)
    digest = hashlib.sha256(payload).hexdigest()
    started = time.monotonic()
    outcome = submitter.send("commit_contribution", {
        "task_id": task_id, "round": number, "base_version": base_version, "cid": cid, "sha256": digest,
        "size": len(payload), "num_examples": num_examples, "dp": mechanism,
        **({"norm_proof": norm_proof} if norm_proof is not None else {}),
    })
    spent = outcome.attr("fl", "epsilon_micro")
    return ContributionReceipt(task_id, number, cid, digest, len(payload), outcome.height, time.monotonic() - started,
                               int(spent) / 1e6 if spent is not None else float("nan"))


def plan_charge(view: ChainView, task_id: str, did: str, mechanism: dict[str, object]) -> str | None:
    """None if the chain will accept this mechanism's charge; otherwise why not (the budget it would exceed).

    Uses the chain's own accountant on the chain's own stored RDP curve, so the plan is exactly
    what FinalizeBlock will compute.
    """
    from fedledger.abci_app.accountant import ZERO_RDP, Mechanism, charge, decode_rdp

    budget = view.get(f"/budget/{task_id}/{did}")
    curve = decode_rdp(budget["rdp"]) if budget["rdp"] is not None else ZERO_RDP
    mech = Mechanism.parse({k: v for k, v in mechanism.items() if k != "clip_norm"})
    after = charge(curve, mech, budget["delta"]).epsilon_micro
    if after > budget["epsilon_budget_micro"]:
        return (f"another contribution would bring ε to {after / 1e6:.3f}, over the budget of "
                f"{budget['epsilon_budget_micro'] / 1e6:.3f} (δ={budget['delta']})")
    return None


def run_client(submitter: Submitter, store: ContentStore, task_id: str, data: ClientData, dp: DPConfig,
               rounds: int | None = None,
               epochs: int = 3, lr: float = 0.7, poll_s: float = 0.5,
               should_stop: Callable[[], bool] = lambda: False,
               on_event: Callable[[str, ContributionReceipt | None], None] | None = None,
               train_progress: Callable[[int, int], None] | None = None) -> list[ContributionReceipt]:
    """Contribute to every open round of a task this participant has not contributed to yet.

    Local training is DP-SGD with `dp`; the mechanism it actually ran is what each commit declares,
    and what the chain's accountant charges against the participant's budget.

    Stops after `rounds` contributions, or when should_stop() says so. Only the chain decides what
    is open and what version to train from, so a restarted client simply picks up again.
    """
    from fedledger.sdk.ml.train import train_local  # torch only where training happens

    view = ChainView(submitter.rpc)
    me = submitter.key.public_hex
    if view.task(task_id).get("aggregation", {}).get("secure") is not None:
        return _run_secure(submitter, store, task_id, data, dp, rounds, epochs, lr, poll_s, should_stop, on_event,
                           train_progress)
    receipts: list[ContributionReceipt] = []
    done_rounds: set[int] = set()
    # One encoder for the whole run: top-k compression carries what it did not send to the next round.
    encoder = UpdateEncoder(view.task(task_id).get("aggregation", {}).get("compression"))
    while not should_stop() and (rounds is None or len(receipts) < rounds):
        task = view.task(task_id)
        current = task["current_round"]
        if current == 0 or current in done_rounds:
            time.sleep(poll_s)
            continue
        rnd = view.round(task_id, current)
        if rnd["status"] != "open":
            done_rounds.add(current)
        if rnd["status"] != "open" or submitter.rpc.height() >= rnd["deadline_height"]:
            time.sleep(poll_s)
            continue
        if view.exists(f"/contribution/{task_id}/{current}/{me}"):
            done_rounds.add(current)
            continue
        mechanism = {**dp.mechanism(len(data.y), _BATCH, epochs), "clip_norm": dp.plan(len(data.y), _BATCH,
                                                                                   epochs).clip_norm_text}
        left = plan_charge(view, task_id, did_of_key(me), mechanism)
        if left is not None:
            if on_event:
                on_event(f"stopping: {left}", None)
            break
        base_rec = view.version(task_id, rnd["base_version"])
        base = decode_tensors(store.get(base_rec["cid"], base_rec["sha256"]))
        if on_event:
            on_event(f"training round {current}", None)
        # The DP noise seed must be secret: with a guessable seed anyone could regenerate the noise
        # and subtract it, so every run differs by design.
        result = train_local(task["model_spec"], base, data, epochs=epochs, lr=lr, seed=fresh_seed(),
                             batch_size=_BATCH, progress=train_progress, dp=dp)
        assert result.mechanism is not None and result.clip_norm is not None
        declared = {**result.mechanism, "clip_norm": result.clip_norm}
        receipt = contribute_update(submitter, store, task_id, current, rnd["base_version"],
                                    encoder.encode(result.delta), result.num_examples, declared)
        receipts.append(receipt)
        done_rounds.add(current)
        if on_event:
            on_event(f"committed round {current}", receipt)
    return receipts


def _run_secure(submitter: Submitter, store: ContentStore, task_id: str, data: ClientData, dp: DPConfig,
                rounds: int | None, epochs: int, lr: float, poll_s: float, should_stop: Callable[[], bool],
                on_event: Callable[[str, ContributionReceipt | None], None] | None,
                train_progress: Callable[[int, int], None] | None) -> list[ContributionReceipt]:
    """run_client for a SecAgg task: the same DP-SGD training, contributed through the SecAgg+ stages."""
    from fedledger.client.secure_client import SecureParticipant, Update, distributed_dp_update
    from fedledger.sdk.ml.train import train_local

    view = ChainView(submitter.rpc)
    did = did_of_key(submitter.key.public_hex)

    def make_update(task: TaskRecord, rnd: RoundRecord, base: Tensors) -> Update:
        if on_event:
            on_event(f"training round {rnd['round']}", None)
        if secure_of(task)["noise_multiplier"] is not None:
            return distributed_dp_update(task, rnd, submitter.key.public_hex, lambda: train_local(
                str(task["model_spec"]), base, data, epochs=epochs, lr=lr, seed=fresh_seed(), batch_size=_BATCH,
                progress=train_progress))
        result = train_local(str(task["model_spec"]), base, data, epochs=epochs, lr=lr, seed=fresh_seed(),
                             batch_size=_BATCH, progress=train_progress, dp=dp)
        assert result.mechanism is not None and result.clip_norm is not None
        return Update(result.delta, result.num_examples, {**result.mechanism, "clip_norm": result.clip_norm})

    participant = SecureParticipant(submitter, store, task_id, make_update)
    while not should_stop() and (rounds is None or len(participant.receipts) < rounds):
        mechanism = {**dp.mechanism(len(data.y), _BATCH, epochs),
                     "clip_norm": dp.plan(len(data.y), _BATCH, epochs).clip_norm_text}
        left = plan_charge(view, task_id, did, mechanism)
        if left is not None:
            if on_event:
                on_event(f"stopping: {left}", None)
            break
        try:
            did_what = participant.step()
        except (ClientError, StoreError, ValueError) as exc:
            # One failed stage makes this client a dropout of the round, which SecAgg+ recovers from.
            did_what = Step(Action.ERROR, f"secagg step failed: {exc}")
            log.warning("%s", did_what)
        if on_event and did_what.action not in (Action.WAITING, Action.NOT_SELECTED):
            on_event(str(did_what), None)
        if did_what.action in (Action.WAITING, Action.NOT_SELECTED, Action.SAT_OUT):
            time.sleep(poll_s)
    return participant.receipts
