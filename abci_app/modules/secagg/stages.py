"""The stages of a SecAgg+ round kept in the federation round record, and the rules that move them.

A secure round runs Bell et al.'s SecAgg+ with the chain as the bulletin board:

    keys    selected participants advertise two X25519 public keys       (secagg_keys)
    shares  the roster (those who advertised) posts encrypted shares      (secagg_shares)
    input   the sharers commit masked inputs: commit_contribution         (federation)
    closed  the round is closed; the aggregator fixes the survivor set    (secagg_survivors)
    unmask  survivors reveal the shares that the survivor set calls for  (secagg_unmask)

`secagg_advance` moves keys→shares and shares→input once everyone expected has posted, or once
`stage_blocks` blocks have passed. Every list (roster, sharers, survivors) is fixed on chain, so
every party sees the same key list and the same survivor set and the aggregator cannot equivocate.
"""

from __future__ import annotations

from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.federation.records import RoundRecord
from fedledger.abci_app.modules.secagg.records import SecaggState

__all__ = ["STAGES", "initial_state", "require_stage", "secure_full"]

STAGES = ("keys", "shares", "input", "closed", "unmask")


def initial_state(height: int, block_hash: bytes) -> SecaggState:
    """The secagg part of a freshly opened secure round.

    The round seed (groups, neighbour graphs, PRG contexts) is the opening block's hash, the same
    draw that selected the participants: fixed before anyone could post a key, chosen by no one.
    """
    return {"stage": "keys", "since": height, "seed": block_hash.hex(), "roster": [], "sharers": [],
            "survivors": []}


def require_stage(rnd: RoundRecord, stage: str, action: str) -> SecaggState:
    """The round's secagg state, or WRONG_STATE unless the round is a secure one in `stage`."""
    sa = rnd.get("secagg")
    if sa is None:
        raise TxError(Code.WRONG_STATE, f"round {rnd['round']} of {rnd['task_id']!r} does not run secure "
                                        f"aggregation; cannot {action}")
    if rnd["status"] == "failed":
        raise TxError(Code.WRONG_STATE, f"round {rnd['round']} failed; cannot {action}")
    if sa["stage"] != stage:
        raise TxError(Code.WRONG_STATE, f"round {rnd['round']} is in secagg stage {sa['stage']!r}, not "
                                        f"{stage!r}; cannot {action}")
    return sa


def secure_full(rnd: RoundRecord) -> bool:
    """A secure round is full once every sharer has committed its masked input."""
    sa = rnd["secagg"]
    return bool(rnd["contributions"] >= len(sa["sharers"]))
