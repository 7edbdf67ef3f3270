"""Recompute a published model version from chain records and payloads, and compare its hash.

Aggregation is deterministic (sorted inputs, float64 accumulation, integer SecAgg arithmetic), so
a second node that reads the same records and payloads must produce the same bytes. A mismatch
means the aggregator published something other than what its declared inputs give.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from fedledger.abci_app.errors import VerificationError
from fedledger.abci_app.modules.federation.aggregation import aggregation_of
from fedledger.abci_app.modules.federation.records import PayloadRef
from fedledger.ipfs import ContentStore
from fedledger.node.aggregation import WeightedUpdate, apply_delta
from fedledger.node.aggregation.robust_delta import plaintext_delta
from fedledger.sdk.chainview import ChainView
from fedledger.sdk.compression.payload import decode_update
from fedledger.sdk.flat import layout_of, unflatten
from fedledger.sdk.tensors import Tensors, decode_tensors, encode_tensors

__all__ = ["Verification", "VerifyError", "recompute_version", "verify_version"]


class VerifyError(VerificationError, ValueError):
    """The version cannot be recomputed (initial model, missing inputs, shares that do not unmask)."""

    error_code = "AGGREGATE_MISMATCH"


@dataclass(frozen=True)
class Verification:
    """The verdict of a recomputation."""

    task_id: str
    version: int
    published_sha256: str
    recomputed_sha256: str
    inputs: int
    secure: bool

    @property
    def ok(self) -> bool:
        """True when the recomputed model's bytes hash to the published sha256."""
        return self.published_sha256 == self.recomputed_sha256


def _load(store: ContentStore, ref: PayloadRef) -> Tensors:
    return decode_tensors(store.get(ref["cid"], ref["sha256"]))


def recompute_version(view: ChainView, store: ContentStore, task_id: str, version: int) -> tuple[bytes, int, bool]:
    """The payload bytes the version's declared inputs give, the number of inputs, and whether it was secure."""
    rec = view.version(task_id, version)
    if rec["round"] == 0:
        raise VerifyError(f"version {version} of {task_id!r} is the initial model; there is nothing to recompute")
    task = view.task(task_id)
    rnd = view.round(task_id, rec["round"])
    parent = rec["parent"]
    assert parent is not None  # only the initial version (round 0, refused above) has no parent
    base = _load(store, view.version(task_id, parent))
    flagged = [d["participant"] for d in rec.get("dropped", []) if d["reason"] == "robust_flagged"]
    used = sorted([*rec["contributors"], *flagged])
    policy = aggregation_of(task)
    if policy.get("central_noise") is not None:
        raise VerifyError(f"version {version} of {task_id!r} carries central DP noise drawn by the aggregator, so "
                          f"it cannot be recomputed bit for bit; tasks that need both use distributed noise "
                          f"under SecAgg")
    if "secagg" in rnd:
        from fedledger.node.secure_aggregate import combine_groups
        from fedledger.sdk.secure_plan import plan_round

        plan = plan_round(task, rnd, int(sum(v.size for v in base.values())))
        groups = {plan.group_of(plan.index_of(w)).number for w in used}
        board = view.board(task_id, rec["round"])
        outcome = combine_groups(store, plan, task, rnd, board, view.contributions(task_id, rec["round"]),
                                 only_groups=groups)
        if outcome.vector is None:
            raise VerifyError(f"the groups of version {version} cannot be unmasked from the posted shares")
        delta = unflatten(outcome.vector, layout_of(base))
        return encode_tensors(apply_delta(base, delta)), len(used), True
    updates = []
    for c in view.contributions(task_id, rec["round"]):
        if c["participant"] in used:
            data = store.get(c["cid"], c["sha256"])
            updates.append(WeightedUpdate(c["id"], decode_update(data, base), c["num_examples"]))
    if len(updates) != len(used):
        raise VerifyError(f"version {version} names {len(used)} inputs but the round holds {len(updates)} of them")
    delta, _ = plaintext_delta(updates, policy["rule"], policy["byzantine"])
    return encode_tensors(apply_delta(base, delta)), len(updates), False


def verify_version(view: ChainView, store: ContentStore, task_id: str, version: int) -> Verification:
    """Recompute the version and compare its sha256 with the published one."""
    published = view.version(task_id, version)["sha256"]
    payload, inputs, secure = recompute_version(view, store, task_id, version)
    return Verification(task_id, version, published, hashlib.sha256(payload).hexdigest(), inputs, secure)
