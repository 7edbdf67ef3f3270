"""Secagg tx handlers: post keys and shares, advance the stages, fix the survivors, reveal shares."""

from __future__ import annotations

from typing import Literal

from fedledger.abci_app.context import BlockContext, Event, Reader, Writer
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.events import fl_event
from fedledger.abci_app.modules.base import Handler
from fedledger.abci_app.modules.federation.keeper import find_contribution, load_round, load_task, store_round
from fedledger.abci_app.modules.federation.records import TaskRecord
from fedledger.abci_app.modules.identity.keeper import member_for_key, require_member
from fedledger.abci_app.modules.reputation.keeper import on_contribution_rejected
from fedledger.abci_app.modules.secagg import keys
from fedledger.abci_app.modules.secagg.msgs import Advance, AdvertiseKeys, DeclareSurvivors, PostPayload
from fedledger.abci_app.modules.secagg.records import KeysPost, PayloadPost
from fedledger.abci_app.modules.secagg.screen import screen_reason
from fedledger.abci_app.modules.secagg.stages import require_stage
from fedledger.abci_app.records import load_record, store_record

__all__ = ["HANDLERS"]


def _posters(view: Reader, kind: str, task_id: str, number: int) -> list[str]:
    """Signers who posted `kind` in a round, sorted (store order is byte order of the signer key)."""
    prefix = keys.post_prefix(kind, task_id, number)
    return [k[len(prefix):].decode("ascii") for k, _ in view.iter_prefix(prefix)]


def _trainer_of_task(view: Reader, signer: str, ctx: BlockContext, task_id: str, action: str) -> None:
    member = require_member(view, signer, ctx, ("trainer",), action)
    if member["tasks"] and task_id not in member["tasks"]:
        raise TxError(Code.UNAUTHORIZED, f"this member's credential covers tasks {member['tasks']}, not {task_id!r}")


def _post_once(view: Reader, state: Writer | None, kind: str, task_id: str, rnd_no: int, signer: str,
               record: KeysPost | PayloadPost) -> None:
    key = keys.post_key(kind, task_id, rnd_no, signer)
    if view.get(key) is not None:
        raise TxError(Code.ALREADY_EXISTS, f"this participant already posted secagg {kind} for round {rnd_no}")
    if state is not None:
        store_record(state, key, record)


def advertise_keys(view: Reader, state: Writer | None, ctx: BlockContext, signer: str,
                   msg: AdvertiseKeys) -> list[Event]:
    """A selected trainer advertises its public keys while the round is in stage `keys`."""
    _trainer_of_task(view, signer, ctx, msg.task_id, "advertise secagg keys")
    rnd = load_round(view, msg.task_id, msg.round)
    require_stage(rnd, "keys", "advertise keys")
    if signer not in rnd["selected"]:
        raise TxError(Code.NOT_SELECTED, f"this participant was not selected for round {msg.round}")
    # A copied public key would let one party impersonate another's mask pairs; refuse reuse.
    marks = [keys.public_key_key(msg.task_id, msg.round, pk) for pk in (msg.c_pk, msg.s_pk)]
    if any(view.get(mark) is not None for mark in marks):
        raise TxError(Code.ALREADY_EXISTS, "one of these public keys is already advertised in this round")
    screened_task = load_task(view, msg.task_id)["aggregation"].get("screen") is not None
    if screened_task and msg.screen is None:
        raise TxError(Code.INVALID_BODY, f"task {msg.task_id!r} screens its inputs: secagg_keys must carry the "
                                         "claims of the update (screen: projection_ppm, norm_ppm)")
    record: KeysPost = {"participant": signer, "c_pk": msg.c_pk, "s_pk": msg.s_pk, "height": ctx.height}
    if msg.screen is not None:
        record["screen"] = msg.screen
    _post_once(view, state, "keys", msg.task_id, msg.round, signer, record)
    if state is not None:
        for mark in marks:
            state.set(mark, b"1")
    return [fl_event("secagg_keys", signer, task=msg.task_id, round=msg.round)]


def _post_payload(view: Reader, state: Writer | None, ctx: BlockContext, signer: str, msg: PostPayload,
                  kind: str, stage: str, allowed: Literal["roster", "survivors"], action: str, refusal: str
                  ) -> list[Event]:
    """A trainer in the round's `allowed` list posts a payload reference of `kind`, once, in `stage`."""
    _trainer_of_task(view, signer, ctx, msg.task_id, f"{action} (secagg)")
    rnd = load_round(view, msg.task_id, msg.round)
    sa = require_stage(rnd, stage, action)
    if signer not in sa[allowed]:
        raise TxError(Code.NOT_SELECTED, refusal)
    _post_once(view, state, kind, msg.task_id, msg.round, signer,
               {"participant": signer, **msg.payload.to_json(), "height": ctx.height})
    return [fl_event(f"secagg_{kind}", signer, task=msg.task_id, round=msg.round, cid=msg.payload.cid)]


def post_shares(view: Reader, state: Writer | None, ctx: BlockContext, signer: str,
                msg: PostPayload) -> list[Event]:
    """A roster member posts the reference of its encrypted shares while the round is in stage `shares`."""
    return _post_payload(view, state, ctx, signer, msg, "shares", "shares", "roster", "post shares",
                         "this participant advertised no keys in time and is not on the roster")


def advance(view: Reader, state: Writer | None, ctx: BlockContext, signer: str, msg: Advance) -> list[Event]:
    """Move keys→shares (fixing the roster) or shares→input (fixing the sharers)."""
    require_member(view, signer, ctx)
    task = load_task(view, msg.task_id)
    rnd = load_round(view, msg.task_id, msg.round)
    if rnd["status"] != "open":
        raise TxError(Code.WRONG_STATE, f"round {msg.round} is {rnd['status']}, not open")
    sa = rnd.get("secagg")
    if sa is None or sa["stage"] not in ("keys", "shares"):
        current = None if sa is None else sa["stage"]
        raise TxError(Code.WRONG_STATE, f"round {msg.round} has no secagg stage to advance (stage {current!r})")
    policy = task["aggregation"]["secure"] if "aggregation" in task else None
    if policy is None:
        raise RuntimeError(f"state invariant violated: secure round {msg.round} of a task without a secure policy")
    expected = rnd["selected"] if sa["stage"] == "keys" else sa["roster"]
    posted = _posters(view, sa["stage"], msg.task_id, msg.round)
    timed_out = ctx.height > sa["since"] + policy["stage_blocks"]
    if len(posted) < len(expected) and not timed_out:
        raise TxError(Code.WRONG_STATE, f"stage {sa['stage']!r} waits for {len(expected) - len(posted)} more "
                                        f"posts or until height {sa['since'] + policy['stage_blocks'] + 1}")
    enough = len(posted) >= max(task["min_contributions"], 2)
    events: list[Event] = []
    if state is not None:
        if not enough:
            rnd["status"] = "failed"
            rnd["failure"] = f"only {len(posted)} participants posted secagg {sa['stage']}"
        elif sa["stage"] == "keys":
            roster, screened = _screen(view, task, msg.task_id, msg.round, posted)
            events += _penalize(state, view, ctx, screened)
            sa["stage"], sa["since"], sa["roster"] = "shares", ctx.height, roster
            if screened:
                sa["screened"] = screened
        else:
            sa["stage"], sa["since"], sa["sharers"] = "input", ctx.height, posted
            rnd["deadline_height"] = ctx.height + task["deadline_blocks"]
        store_round(state, rnd)
    stage = "failed" if not enough else ("shares" if sa["stage"] == "keys" else "input")
    return [fl_event("secagg_advance", signer, task=msg.task_id, round=msg.round, stage=stage), *events]


def _screen(view: Reader, task: TaskRecord, task_id: str, number: int,
            posted: list[str]) -> tuple[list[str], dict[str, str]]:
    """The roster the screen lets through (sorted, as posted) and the screened posters with their reasons."""
    policy = task["aggregation"].get("screen") if "aggregation" in task else None
    if policy is None:
        return posted, {}
    roster: list[str] = []
    screened: dict[str, str] = {}
    for who in posted:
        rec = load_record(view, keys.post_key("keys", task_id, number, who))
        reason = "no_claims" if rec is None or "screen" not in rec else screen_reason(rec["screen"], policy)
        if reason is None:
            roster.append(who)
        else:
            screened[who] = reason
    return roster, screened


def _penalize(state: Writer, view: Reader, ctx: BlockContext, screened: dict[str, str]) -> list[Event]:
    """Screened trainers lose reputation as robust-flagged ones do (sorted order: deterministic)."""
    events: list[Event] = []
    for who in sorted(screened):
        member = member_for_key(view, who, ctx)
        if member is not None:
            events += on_contribution_rejected(state, member["did"], ctx.height, "robust_flagged")
    return events


def declare_survivors(view: Reader, state: Writer | None, ctx: BlockContext, signer: str,
                      msg: DeclareSurvivors) -> list[Event]:
    """The task's aggregator fixes which contributors' masked inputs enter the sum."""
    require_member(view, signer, ctx, ("aggregator",), "declare secagg survivors")
    task = load_task(view, msg.task_id)
    if signer != task["aggregator"]:
        raise TxError(Code.UNAUTHORIZED, "only the task's aggregator may declare the survivors")
    rnd = load_round(view, msg.task_id, msg.round)
    sa = require_stage(rnd, "closed", "declare survivors")
    for who in msg.survivors:
        if find_contribution(view, msg.task_id, msg.round, who) is None:
            raise TxError(Code.NOT_FOUND, f"{who[:16]}… committed no masked input to round {msg.round}")
    if len(msg.survivors) < task["min_contributions"]:
        raise TxError(Code.INVALID_BODY, f"{len(msg.survivors)} survivors is below the task's min_contributions "
                                         f"({task['min_contributions']}); fail the round instead")
    if state is not None:
        sa["stage"], sa["since"], sa["survivors"] = "unmask", ctx.height, list(msg.survivors)
        store_round(state, rnd)
    return [fl_event("secagg_survivors", signer, task=msg.task_id, round=msg.round, survivors=len(msg.survivors))]


def post_unmask(view: Reader, state: Writer | None, ctx: BlockContext, signer: str,
                msg: PostPayload) -> list[Event]:
    """A survivor posts the shares it reveals: self-mask shares of survivors, key shares of dropouts."""
    return _post_payload(view, state, ctx, signer, msg, "unmask", "unmask", "survivors", "reveal shares",
                         "only declared survivors reveal shares")


HANDLERS: dict[str, Handler] = {
    "secagg_keys": advertise_keys,
    "secagg_shares": post_shares,
    "secagg_advance": advance,
    "secagg_survivors": declare_survivors,
    "secagg_unmask": post_unmask,
}
