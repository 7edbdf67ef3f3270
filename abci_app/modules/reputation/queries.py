"""Read-only queries of the reputation module: a DID's score, its movement history, and the params.

/reputation/DID returns the stored record (score as of its last movement, and that height) with
the params a client needs to decay it to any later height H itself with
`fedledger.abci_app.modules.reputation.math.decay(score, floor, height, H, half_life_blocks)`
clamped to [floor, cap]. It also returns `score_now`, that value at the committed height the
answer was read at (`now_height`), when the store exposes it. The proof (with --prove) covers the
stored record at rep/score/DID, or its absence for a DID never moved (whose score is `initial`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fedledger.abci_app.context import Reader
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.base import QueryAnswer
from fedledger.abci_app.modules.reputation import keys
from fedledger.abci_app.modules.reputation.genesis import params
from fedledger.abci_app.modules.reputation.hooks import check_did, score_at
from fedledger.abci_app.modules.reputation.math import PRECISION_BITS, SCALE
from fedledger.abci_app.records import load_record

__all__ = ["HISTORY_LIMIT", "QUERIES"]

HISTORY_LIMIT = 100  # most history entries one answer returns (the latest ones)


def _did(arg: str) -> str:
    try:
        return check_did(arg)
    except TxError as exc:
        raise TxError(Code.BAD_QUERY, exc.log) from exc


def _q_reputation(view: Reader, args: list[str]) -> QueryAnswer:
    """/reputation/DID: stored score and height, the decay params, and the score at the committed height."""
    if len(args) != 1:
        raise TxError(Code.BAD_QUERY, "usage: /reputation/DID")
    did = _did(args[0])
    par = params(view)
    record = load_record(view, keys.score_key(did))
    answer: dict[str, Any] = {
        "did": did, "moved": record is not None,
        "score": record["score"] if record is not None else par["initial"],
        "height": record["height"] if record is not None else None,
        "entries": record["entries"] if record is not None else 0,
        "unit": f"1/{SCALE}", "floor": par["floor"], "cap": par["cap"], "initial": par["initial"],
        "half_life_blocks": par["half_life_blocks"], "precision_bits": PRECISION_BITS,
    }
    # The committed store knows its height; the Reader protocol does not promise it, hence getattr.
    now = getattr(view, "height", None)
    if isinstance(now, int) and not isinstance(now, bool) and (record is None or now >= record["height"]):
        answer["now_height"] = now
        answer["score_now"] = score_at(view, did, now)
    return QueryAnswer(answer, keys.score_key(did))


def _q_history(view: Reader, args: list[str]) -> QueryAnswer:
    """/reputation-history/DID[/LIMIT]: the latest LIMIT (default and max 100) movements, oldest first."""
    if len(args) not in (1, 2):
        raise TxError(Code.BAD_QUERY, f"usage: /reputation-history/DID[/LIMIT], LIMIT in 1..{HISTORY_LIMIT}")
    did = _did(args[0])
    limit = HISTORY_LIMIT
    if len(args) == 2:
        if not args[1].isdigit() or not 1 <= int(args[1]) <= HISTORY_LIMIT:
            raise TxError(Code.BAD_QUERY, f"history limit must be an integer in 1..{HISTORY_LIMIT}, got {args[1]!r}")
        limit = int(args[1])
    record = load_record(view, keys.score_key(did))
    total = record["entries"] if record is not None else 0
    entries = []
    # Keys are zero-padded sequence numbers, so the latest entries are read directly, not scanned.
    for seq in range(max(0, total - limit), total):
        entry = load_record(view, keys.history_key(did, seq))
        if entry is None:
            raise RuntimeError(f"state invariant violated: history entry {seq} of {did} is missing")
        entries.append(entry)
    return QueryAnswer({"did": did, "total": total, "returned": len(entries), "entries": entries}, None)


def _q_params(view: Reader, args: list[str]) -> QueryAnswer:
    """/reputation-params: the params in force (floor, cap, initial, half-life, weights)."""
    if args:
        raise TxError(Code.BAD_QUERY, "usage: /reputation-params")
    stored = load_record(view, keys.PARAMS_KEY)
    return QueryAnswer(params(view), keys.PARAMS_KEY if stored is not None else None)


QUERIES: dict[str, Callable[[Reader, list[str]], QueryAnswer]] = {
    "reputation": _q_reputation, "reputation-history": _q_history, "reputation-params": _q_params}
