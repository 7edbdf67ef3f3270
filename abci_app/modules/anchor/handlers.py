"""The record_anchor handler: a validator admin records a confirmed public-chain anchor of the next height range."""

from __future__ import annotations

from fedledger.abci_app.context import BlockContext, Event, Reader, Writer
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.events import fl_event
from fedledger.abci_app.modules.anchor import keys
from fedledger.abci_app.modules.anchor.msgs import RecordAnchor
from fedledger.abci_app.modules.anchor.records import AnchorMeta
from fedledger.abci_app.modules.base import Handler
from fedledger.abci_app.modules.identity.keeper import require_member
from fedledger.abci_app.records import load_record, store_record

__all__ = ["HANDLERS", "ROLES", "meta", "record_anchor"]

# Recording an anchor is a statement by the consortium's operators that its history up to a height
# is committed on a public chain; it also fixes where the next anchor must start, so a member who
# could record a bogus one could stall anchoring. Only validator admins (who run the anchoring
# service) may send it. The chain cannot read the public chain (no I/O in consensus): what it
# enforces is who records, contiguity and committed heights; `fedledger anchor verify` checks the
# record against the public chain's receipt.
ROLES = ("validator-admin",)


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


HANDLERS: dict[str, Handler] = {"record_anchor": record_anchor}
