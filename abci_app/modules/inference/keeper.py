"""The inference keeper: reads and writes of node records, task policies and the module's counters.

Other modules and the handlers reach inference state only through these functions.
"""

from __future__ import annotations

from typing import cast

from fedledger.abci_app.context import Reader, Writer
from fedledger.abci_app.did.credentials import key_of_did
from fedledger.abci_app.modules.inference import keys
from fedledger.abci_app.modules.inference.params import params, parse_params, store_params
from fedledger.abci_app.modules.inference.records import InferenceMeta, NodeRecord, PolicyRecord
from fedledger.abci_app.records import load_record, store_record

__all__ = ["DEFAULT_K", "find_node", "find_node_by_did", "meta", "node_at", "nodes", "params", "parse_params",
           "policy", "store_meta", "store_node", "store_params"]

DEFAULT_K = 3  # a task that set no policy: general tier, three nodes per request


def meta(view: Reader) -> InferenceMeta:
    """The module's counters (zeros before anything was recorded)."""
    rec = load_record(view, keys.META_KEY)
    return cast(InferenceMeta, rec) if rec is not None else {"nodes": 0, "batches": 0, "slashes": 0}


def store_meta(state: Writer, value: InferenceMeta) -> None:
    """Write the counters."""
    store_record(state, keys.META_KEY, dict(value))


def node_at(view: Reader, seq: int) -> NodeRecord:
    """The seq-th node record; a missing one below the count is a broken invariant."""
    rec = load_record(view, keys.node_key(seq))
    if rec is None:
        raise RuntimeError(f"state invariant violated: inference node {seq} below the count is missing")
    return cast(NodeRecord, rec)


def nodes(view: Reader) -> list[NodeRecord]:
    """Every registered node, in registration order."""
    return [node_at(view, seq) for seq in range(1, meta(view)["nodes"] + 1)]


def find_node(view: Reader, signer: str) -> NodeRecord | None:
    """The node record a signing key registered, if any."""
    rec = load_record(view, keys.node_index_key(signer))
    return node_at(view, int(rec["seq"])) if rec is not None else None


def find_node_by_did(view: Reader, did: str) -> NodeRecord | None:
    """The node record of a DID (through its did:key's signing key), if any."""
    try:
        signer = key_of_did(did)
    except ValueError:
        return None
    return find_node(view, signer)


def store_node(state: Writer, rec: NodeRecord) -> None:
    """Write a node record and its key index."""
    store_record(state, keys.node_key(rec["seq"]), dict(rec))
    store_record(state, keys.node_index_key(rec["key"]), {"seq": rec["seq"]})


def policy(view: Reader, task_id: str) -> PolicyRecord:
    """A task's inference policy; the default (general, k = DEFAULT_K) when its owner set none."""
    rec = load_record(view, keys.policy_key(task_id))
    if rec is None:
        return {"task_id": task_id, "tier": "general", "k": DEFAULT_K, "set_height": 0}
    return cast(PolicyRecord, rec)
