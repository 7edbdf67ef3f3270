"""Read-only queries of the anchor module: one anchor, the list, and the anchor covering a height.

Every answer is built from point reads (the meta record, then records by sequence number), so
`--verify` proves it without a listing rule: the meta record's count pins how many exist.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from fedledger.abci_app.context import Reader
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.anchor import keys
from fedledger.abci_app.modules.anchor.handlers import meta
from fedledger.abci_app.modules.anchor.records import AnchorRecord
from fedledger.abci_app.modules.base import QueryAnswer
from fedledger.abci_app.records import load_record

__all__ = ["PAGE", "QUERIES", "covering"]

PAGE = 100  # most anchors one /anchors answer lists


def _num(text: str, what: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise TxError(Code.BAD_QUERY, f"{text!r} is not a {what}")
    return int(text)


def _record(view: Reader, seq: int) -> AnchorRecord:
    rec = load_record(view, keys.anchor_key(seq))
    if rec is None:
        raise RuntimeError(f"state invariant violated: anchor {seq} below the count is missing")
    return cast(AnchorRecord, rec)


def covering(view: Reader, height: int) -> AnchorRecord | None:
    """The anchor whose range holds `height`, or None. Ranges are contiguous from 1, so this is a binary search."""
    m = meta(view)
    if height < 1 or height > m["to_height"]:
        return None
    lo, hi = 1, m["count"]
    while lo <= hi:
        mid = (lo + hi) // 2
        rec = _record(view, mid)
        if height < rec["from_height"]:
            hi = mid - 1
        elif height > rec["to_height"]:
            lo = mid + 1
        else:
            return rec
    raise RuntimeError(f"state invariant violated: height {height} is below the anchored {m['to_height']} "
                       "but no anchor covers it")


def _q_anchor(view: Reader, args: list[str]) -> QueryAnswer:
    """/anchor/SEQ or /anchor/latest: one anchor record."""
    if len(args) != 1:
        raise TxError(Code.BAD_QUERY, "usage: /anchor/SEQ or /anchor/latest")
    m = meta(view)
    seq = m["count"] if args[0] == "latest" else _num(args[0], "anchor number")
    if seq < 1 or seq > m["count"]:
        raise TxError(Code.QUERY_NOT_FOUND, f"anchor {args[0]} not found ({m['count']} anchors recorded)")
    return QueryAnswer(_record(view, seq), keys.anchor_key(seq))


def _q_anchors(view: Reader, args: list[str]) -> QueryAnswer:
    """/anchors or /anchors/FROM_SEQ: {count, anchored_to, anchors: up to PAGE records (default: the last PAGE)}."""
    if len(args) > 1:
        raise TxError(Code.BAD_QUERY, "usage: /anchors or /anchors/FROM_SEQ")
    m = meta(view)
    start = _num(args[0], "anchor number") if args else max(1, m["count"] - PAGE + 1)
    records = [_record(view, s) for s in range(max(1, start), min(m["count"], max(1, start) + PAGE - 1) + 1)]
    return QueryAnswer({"count": m["count"], "anchored_to": m["to_height"], "anchors": records}, None)


def _q_anchor_at(view: Reader, args: list[str]) -> QueryAnswer:
    """/anchor-at/HEIGHT: the anchor whose height range holds HEIGHT."""
    if len(args) != 1:
        raise TxError(Code.BAD_QUERY, "usage: /anchor-at/HEIGHT")
    height = _num(args[0], "height")
    rec = covering(view, height)
    if rec is None:
        raise TxError(Code.QUERY_NOT_FOUND, f"height {height} is not anchored yet (anchored up to height "
                                            f"{meta(view)['to_height']}); run `fedledger anchor run`")
    return QueryAnswer(rec, keys.anchor_key(int(rec["seq"])))


QUERIES: dict[str, Callable[[Reader, list[str]], QueryAnswer]] = {
    "anchor": _q_anchor,
    "anchors": _q_anchors,
    "anchor-at": _q_anchor_at,
}
