"""The participant loop behind `fedledger client run`: follow rounds, train locally, upload, commit."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from fedledger.client.chainview import ChainView
from fedledger.client.data import ClientData
from fedledger.client.submit import Submitter
from fedledger.ipfs import ContentStore
from fedledger.node.tensors import decode_tensors, encode_tensors

__all__ = ["ContributionReceipt", "contribute_update", "run_client"]

log = logging.getLogger("fedledger.client")


@dataclass(frozen=True)
class ContributionReceipt:
    """What a participant committed: where and at which height."""

    task_id: str
    round: int
    cid: str
    sha256: str
    size: int
    height: int
    latency_s: float  # broadcast to committed block


def contribute_update(submitter: Submitter, store: ContentStore, task_id: str, rnd: int, base_version: int,
                      payload: bytes, num_examples: int) -> ContributionReceipt:
    """Upload a payload to the content store, then commit its CID and sha256 on chain."""
    cid = store.put(payload)
    store.pin(cid)
    digest = hashlib.sha256(payload).hexdigest()
    started = time.monotonic()
    outcome = submitter.send("commit_contribution", {
        "task_id": task_id, "round": rnd, "base_version": base_version, "cid": cid, "sha256": digest,
        "size": len(payload), "num_examples": num_examples,
    })
    return ContributionReceipt(task_id, rnd, cid, digest, len(payload), outcome.height, time.monotonic() - started)


def run_client(submitter: Submitter, store: ContentStore, task_id: str, data: ClientData, rounds: int | None = None,
               epochs: int = 5, lr: float = 0.5, seed: int = 0, poll_s: float = 0.5,
               should_stop: Callable[[], bool] = lambda: False,
               on_event: Callable[[str, ContributionReceipt | None], None] | None = None,
               train_progress: Callable[[int, int], None] | None = None) -> list[ContributionReceipt]:
    """Contribute to every open round of a task this participant has not contributed to yet.

    Stops after `rounds` contributions, or when should_stop() says so. Only the chain decides what
    is open and what version to train from, so a restarted client simply picks up again.
    """
    from fedledger.client.train import train_local  # torch only where training happens

    view = ChainView(submitter.rpc)
    me = submitter.key.public_hex
    receipts: list[ContributionReceipt] = []
    done_rounds: set[int] = set()
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
        base_rec = view.version(task_id, rnd["base_version"])
        base = decode_tensors(store.get(base_rec["cid"], base_rec["sha256"]))
        if on_event:
            on_event(f"training round {current}", None)
        result = train_local(task["model_spec"], base, data, epochs=epochs, lr=lr, seed=seed + current,
                             progress=train_progress)
        receipt = contribute_update(submitter, store, task_id, current, rnd["base_version"],
                                    encode_tensors(result.delta), result.num_examples)
        receipts.append(receipt)
        done_rounds.add(current)
        if on_event:
            on_event(f"committed round {current}", receipt)
    return receipts
