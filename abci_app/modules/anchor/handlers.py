"""The anchor handlers: a validator admin records a confirmed public-chain anchor of the next height range
(record_anchor), or, after a public-chain reorg removed the block of a recorded anchor's tx, restates the
same anchor backed by its new tx or new block (reanchor)."""

from __future__ import annotations

from fedledger.abci_app.context import BlockContext, Event, Reader, Writer
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.events import fl_event
from fedledger.abci_app.modules.anchor import keys
from fedledger.abci_app.modules.anchor.msgs import Reanchor, RecordAnchor
from fedledger.abci_app.modules.anchor.records import AnchorMeta
from fedledger.abci_app.modules.base import Handler
from fedledger.abci_app.modules.identity.keeper import require_member
from fedledger.abci_app.records import load_record, store_record

__all__ = ["HANDLERS", "MAX_REANCHORS", "ROLES", "meta", "reanchor", "record_anchor"]

# Recording an anchor is a statement by the consortium's operators that its history up to a height
# is committed on a public chain; it also fixes where the next anchor must start, so a member who
# could record a bogus one could stall anchoring. Only validator admins (who run the anchoring
# service) may send it. The chain cannot read the public chain (no I/O in consensus): what it
# enforces is who records, contiguity and committed heights; `fedledger anchor verify` checks the
# record against the public chain's receipt.
ROLES = ("validator-admin",)
MAX_REANCHORS = 16  # replaced txs kept per anchor; more reorgs than this under one batch is not a public chain


def meta(view: Reader) -> AnchorMeta:
    """{count, to_height} of the anchors so far (zeros before the first)."""
    rec = load_record(view, keys.META_KEY)
    return {"count": int(rec["count"]), "to_height": int(rec["to_height"])} if rec else {"count": 0, "to_height": 0}


def record_anchor(view: Reader, state: Writer | None, ctx: BlockContext, signer: str,
                  msg: RecordAnchor) -> list[Event]:
    """Record an anchor whose range starts right after the last one and ends at a committed height."""
    member = require_member(view, signer, ctx, ROLES, "record anchors")
    last = meta(view)
    if msg.from_height != last["to_height"] + 1:
        raise TxError(Code.ANCHOR_RANGE, f"anchors are contiguous: the next one must start at height "
                                         f"{last['to_height'] + 1}, this one starts at {msg.from_height}")
    if msg.to_height >= ctx.height:
        raise TxError(Code.ANCHOR_RANGE, f"to_height {msg.to_height} has no checkpoint yet: in block {ctx.height} "
                                         f"anchors can reach height {ctx.height - 1} at most")
    tkey = keys.tx_key(msg.public_chain_id, msg.tx_hash)
    if view.get(tkey) is not None:
        raise TxError(Code.ANCHOR_TX_RECORDED, f"tx {msg.tx_hash} of chain {msg.public_chain_id} already backs "
                                               "an anchor")
    seq = last["count"] + 1
    if state is not None:
        store_record(state, keys.anchor_key(seq), {
            "seq": seq, "scheme": msg.scheme, "public_chain_id": msg.public_chain_id, "contract": msg.contract,
            "tx_hash": msg.tx_hash, "block_number": msg.block_number, "block_hash": msg.block_hash,
            "root": msg.root, "from_height": msg.from_height, "to_height": msg.to_height,
            "checkpoints": msg.to_height - msg.from_height + 1, "recorded_height": ctx.height,
            "signer": signer, "recorder": member["did"],
        })
        store_record(state, keys.META_KEY, {"count": seq, "to_height": msg.to_height})
        store_record(state, tkey, {"seq": seq})
    return [fl_event("record_anchor", signer, seq=seq, from_height=msg.from_height, to_height=msg.to_height,
                     root=msg.root, public_chain_id=msg.public_chain_id, tx_hash=msg.tx_hash)]


def reanchor(view: Reader, state: Writer | None, ctx: BlockContext, signer: str, msg: Reanchor) -> list[Event]:
    """Point anchor `seq` at a new public tx or block; the batch (range, root, chain, contract) must be the same.

    The chain cannot see the public chain's reorg (no I/O in consensus); like record_anchor this is the
    validator admins' statement, checked later by `fedledger anchor verify` against the receipt. The
    replaced tx stays in the record's `replaced` list, so the history of the anchor is not lost.
    """
    require_member(view, signer, ctx, ROLES, "re-anchor")
    last = meta(view)
    if msg.seq > last["count"]:
        raise TxError(Code.QUERY_NOT_FOUND, f"anchor {msg.seq} does not exist ({last['count']} anchors recorded)")
    akey = keys.anchor_key(msg.seq)
    rec = load_record(view, akey)
    if rec is None:
        raise RuntimeError(f"state invariant violated: anchor {msg.seq} below the count is missing")
    new = msg.anchor
    for name in ("scheme", "public_chain_id", "contract", "root", "from_height", "to_height"):
        if rec[name] != getattr(new, name):
            raise TxError(Code.ANCHOR_MISMATCH, f"a reanchor restates anchor {msg.seq} unchanged but for its tx: "
                                                f"{name} is {rec[name]!r} there, {getattr(new, name)!r} here")
    if (rec["tx_hash"], rec["block_hash"]) == (new.tx_hash, new.block_hash):
        raise TxError(Code.ANCHOR_TX_RECORDED, f"anchor {msg.seq} is already backed by tx {new.tx_hash} in block "
                                               f"{new.block_hash}")
    tkey = keys.tx_key(new.public_chain_id, new.tx_hash)
    if new.tx_hash != rec["tx_hash"] and view.get(tkey) is not None:
        raise TxError(Code.ANCHOR_TX_RECORDED, f"tx {new.tx_hash} of chain {new.public_chain_id} already backs "
                                               "an anchor")
    replaced = list(rec.get("replaced", []))
    if len(replaced) >= MAX_REANCHORS:
        raise TxError(Code.ANCHOR_MISMATCH, f"anchor {msg.seq} was re-anchored {len(replaced)} times already; "
                                            "that is the most one anchor keeps")
    replaced.append({"tx_hash": rec["tx_hash"], "block_number": rec["block_number"], "block_hash": rec["block_hash"],
                     "replaced_height": ctx.height})
    if state is not None:
        store_record(state, akey, {**rec, "tx_hash": new.tx_hash, "block_number": new.block_number,
                                   "block_hash": new.block_hash, "replaced": replaced})
        store_record(state, tkey, {"seq": msg.seq})  # the old tx keeps its mark: it may not back another anchor
    return [fl_event("reanchor", signer, seq=msg.seq, from_height=new.from_height, to_height=new.to_height,
                     root=new.root, public_chain_id=new.public_chain_id, tx_hash=new.tx_hash,
                     replaced_tx_hash=str(rec["tx_hash"]))]


HANDLERS: dict[str, Handler] = {"record_anchor": record_anchor, "reanchor": reanchor}
