"""Score reads and the movement hooks other modules call when contributions and versions are judged.

A DID's state is a record {did, score, height, entries}: the score as of `height` (the height of its
last movement) and how many history entries it has. Decay is lazy: a read at height h returns
decay(score, floor, height, h, half_life) clamped to [floor, cap]; a movement at h applies its
delta to that value, clamps, and stores it with height h. A DID never moved has the `initial`
score, not decaying, until its first movement ("first touch"), which starts from `initial`.

Reads never write, so state depends only on the sequence of movements. Every movement appends
a history entry {seq, height, reason, delta, before, score} under rep/hist/DID/SEQ (zero-padded).
Hooks validate every argument before their first write and raise TxError (never a bare
exception), so a bad call rejects the tx instead of halting the chain.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from fedledger.abci_app.context import Event, Reader, Writer
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.reputation import keys
from fedledger.abci_app.modules.reputation.genesis import PENALTY_REASONS, params
from fedledger.abci_app.modules.reputation.math import clamp, decay
from fedledger.abci_app.records import load_record, store_record

__all__ = [
    "EVENT_TYPE",
    "check_did",
    "check_reason",
    "on_contribution_accepted",
    "on_contribution_rejected",
    "on_inference_penalty",
    "on_version_outcome",
    "score_at",
    "scores_at",
]

EVENT_TYPE = "rep"
# The same alphabet the state machine allows in a query path segment, so every scored DID is queryable.
_DID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def check_did(did: object) -> str:
    """The DID if it can key a score (1-128 chars of A-Z a-z 0-9 _ . : -); TxError(REPUTATION_DID_INVALID) if not."""
    if not isinstance(did, str) or not _DID_RE.match(did):
        raise TxError(Code.REPUTATION_DID_INVALID,
                      f"DID {did!r} is not usable for reputation: 1-128 characters of A-Z a-z 0-9 _ . : -")
    return did


def check_reason(reason: object) -> str:
    """The reason if it is one of PENALTY_REASONS; TxError(REPUTATION_REASON_UNKNOWN) if not."""
    if not isinstance(reason, str) or reason not in PENALTY_REASONS:
        raise TxError(Code.REPUTATION_REASON_UNKNOWN,
                      f"unknown rejection reason {reason!r}; reasons: {list(PENALTY_REASONS)}")
    return reason


def _check_height(height: object) -> int:
    if not isinstance(height, int) or isinstance(height, bool) or height < 0:
        raise ValueError(f"block height must be a non-negative integer, got {height!r}")
    return height


def _current(record: Mapping[str, Any] | None, par: Mapping[str, Any], height: int) -> int:
    """The score a stored record (or its absence) stands for at `height`, under params `par`."""
    if record is None:
        return int(par["initial"])
    if height < record["height"]:
        raise ValueError(f"score of {record['did']} was moved at height {record['height']}; "
                         f"cannot read it at the earlier height {height}")
    value = decay(record["score"], par["floor"], record["height"], height, par["half_life_blocks"])
    return clamp(value, par["floor"], par["cap"])


def score_at(view: Reader, did: str, height: int) -> int:
    """The DID's score at `height` (decayed from its last movement), in micro-units; `initial` if never moved.

    `height` must be at least the height of the DID's last movement (any block height at or after
    the state `view` reflects). Pure: nothing is written.
    """
    check_did(did)
    return _current(load_record(view, keys.score_key(did)), params(view), _check_height(height))


def scores_at(view: Reader, dids: Sequence[str], height: int) -> list[int]:
    """score_at for several DIDs (same order), reading the params once."""
    par = params(view)
    _check_height(height)
    return [_current(load_record(view, keys.score_key(check_did(d))), par, height) for d in dids]


def _move(state: Writer, par: Mapping[str, Any], did: str, height: int, reason: str, delta: int) -> Event:
    """Apply one validated movement and append its history entry."""
    record = load_record(state, keys.score_key(did))
    before = _current(record, par, height)
    after = clamp(before + delta, par["floor"], par["cap"])
    seq = record["entries"] if record is not None else 0
    store_record(state, keys.history_key(did, seq), {
        "seq": seq, "height": height, "reason": reason, "delta": delta, "before": before, "score": after})
    store_record(state, keys.score_key(did), {"did": did, "score": after, "height": height, "entries": seq + 1})
    return Event(type=EVENT_TYPE, attributes=(
        ("did", did), ("reason", reason), ("delta", str(delta)), ("score", str(after)), ("height", str(height))))


def _checked_dids(dids: Sequence[str]) -> list[str]:
    if isinstance(dids, str):
        raise TxError(Code.REPUTATION_DID_INVALID, "expected a list of DIDs, got a single string")
    ordered = sorted(check_did(d) for d in dids)
    for a, b in zip(ordered, ordered[1:], strict=False):
        if a == b:
            raise TxError(Code.REPUTATION_DID_INVALID, f"DID {a} is listed twice")
    return ordered


def on_contribution_accepted(state: Writer, did: str, height: int) -> list[Event]:
    """Credit `weights.contribution_accepted` to the DID for a contribution the chain accepted at `height`."""
    check_did(did)
    _check_height(height)
    par = params(state)
    return [_move(state, par, did, height, "contribution_accepted", par["weights"]["contribution_accepted"])]


def on_contribution_rejected(state: Writer, did: str, height: int, reason: str) -> list[Event]:
    """Debit `weights[reason]` for a rejected contribution; reason is one of PENALTY_REASONS.

    hash_mismatch: the fetched payload does not match its committed sha256/size; robust_flagged:
    robust aggregation flagged it as an outlier; probe_failed: it failed a validation probe.
    """
    check_did(did)
    check_reason(reason)
    _check_height(height)
    par = params(state)
    return [_move(state, par, did, height, reason, -par["weights"][reason])]


def on_version_outcome(state: Writer, dids_included: Sequence[str], promoted: bool, height: int) -> list[Event]:
    """Credit `version_promoted` (promoted=True) or debit `version_quarantined` to every included DID.

    DIDs are processed in sorted order; a malformed or duplicated DID refuses the whole call
    before anything is written.
    """
    ordered = _checked_dids(dids_included)
    if not isinstance(promoted, bool):
        raise ValueError(f"promoted must be a bool, got {promoted!r}")
    _check_height(height)
    par = params(state)
    reason = "version_promoted" if promoted else "version_quarantined"
    delta = par["weights"][reason] if promoted else -par["weights"][reason]
    return [_move(state, par, did, height, reason, delta) for did in ordered]


INFERENCE_REASONS: tuple[str, ...] = ("inference_dissent", "inference_fraud")


def on_inference_penalty(state: Writer, did: str, height: int, reason: str, penalty: int) -> list[Event]:
    """Debit an inference node `penalty` micro-units: outvoted (inference_dissent) or caught equivocating.

    The amount comes from the inference module's params rather than the reputation weights, so a
    chain that serves no inference keeps its reputation params (and state) exactly as they were.
    """
    if reason not in INFERENCE_REASONS:
        raise TxError(Code.REPUTATION_REASON_UNKNOWN, f"unknown inference penalty {reason!r}; "
                                                      f"reasons: {list(INFERENCE_REASONS)}")
    if not isinstance(penalty, int) or isinstance(penalty, bool) or penalty < 0:
        raise ValueError(f"penalty must be a non-negative integer, got {penalty!r}")
    return [_move(state, params(state), check_did(did), _check_height(height), reason, -penalty)]
