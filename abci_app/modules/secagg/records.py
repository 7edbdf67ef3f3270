"""The secagg module's chain records: a secure round's stage state and its participants' postings.

Light on purpose (typing only): off-chain code (the aggregator, clients) reads these shapes too.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

__all__ = ["Board", "KeysPost", "PayloadPost", "ScreenClaims", "SecaggStage", "SecaggState"]

SecaggStage = Literal["keys", "shares", "input", "closed", "unmask"]


class SecaggState(TypedDict):
    """The `secagg` part of a secure round's record (`fl/round/...`), moved by the secagg txs."""

    stage: SecaggStage
    since: int  # height the stage began
    seed: str  # the opening block's hash (hex): groups, graphs and PRG contexts derive from it
    roster: list[str]  # who advertised keys (and passed the screen)
    sharers: list[str]  # who posted shares
    survivors: list[str]  # whose masked inputs enter the sum
    screened: NotRequired[dict[str, str]]  # screened-out key posters -> reason


class ScreenClaims(TypedDict):
    """The input screen's claims a key advertisement carries on a screened task."""

    projection_ppm: int
    norm_ppm: int


class KeysPost(TypedDict):
    """`sa/keys/<task>/<round>/<signer>`: a participant's two X25519 public keys."""

    participant: str
    c_pk: str
    s_pk: str
    height: int
    screen: NotRequired[ScreenClaims]


class PayloadPost(TypedDict):
    """`sa/shares|unmask/<task>/<round>/<signer>`: where a participant's shares (or revealed shares) live."""

    participant: str
    cid: str
    sha256: str
    size: int
    height: int


class Board(TypedDict):
    """The `/secagg/TASK/ROUND` answer: a secure round's posts, by kind, keyed by participant."""

    keys: dict[str, KeysPost]
    shares: dict[str, PayloadPost]
    unmask: dict[str, PayloadPost]
