"""The reputation module's chain records: its params, each DID's score and its movement history.

Light on purpose (typing only): off-chain code reads these shapes from query answers too.
"""

from __future__ import annotations

from typing import TypedDict

__all__ = ["HistoryEntry", "ReputationParams", "ScoreRecord"]


class ReputationParams(TypedDict):
    """`rep/params`: bounds and decay in micro-units; weights are magnitudes, the hooks choose the sign."""

    floor: int
    cap: int
    initial: int
    half_life_blocks: int
    weights: dict[str, int]  # WEIGHT_NAMES -> weight


class ScoreRecord(TypedDict):
    """`rep/score/<did>`: the score as of `height` (decayed lazily from there) and how many entries it has."""

    did: str
    score: int
    height: int
    entries: int


class HistoryEntry(TypedDict):
    """`rep/hist/<did>/<seq>`: one movement."""

    seq: int
    height: int
    reason: str
    delta: int
    before: int
    score: int
