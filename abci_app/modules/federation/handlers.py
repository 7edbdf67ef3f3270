"""Federation tx handlers: a stateful check (reads only) and an execute step (writes) per tx type."""

from __future__ import annotations

from fedledger.abci_app.context import BlockContext, Event, Reader, Writer
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.events import fl_event
from fedledger.abci_app.modules.base import Handler
from fedledger.abci_app.modules.federation import keys
from fedledger.abci_app.modules.federation.aggregation import DEFAULT_POLICY, aggregation_of, is_screened, is_secure
from fedledger.abci_app.modules.federation.keeper import load_round, load_task
from fedledger.abci_app.modules.federation.msgs import (
    ClosedRound,
    CommitContribution,
    CreateTask,
    DeclareAvailability,
    FailRound,
    OpenRound,
    ProposeVersion,
    contribution_id,
)
from fedledger.abci_app.modules.federation.norm_proof import check_norm_proof, store_norm_circuit
from fedledger.abci_app.modules.federation.records import RoundRecord, RoundStatus, TaskRecord
from fedledger.abci_app.modules.federation.selection import select_participants
from fedledger.abci_app.modules.identity.keeper import member_for_key, require_member
from fedledger.abci_app.modules.lifecycle.keeper import last_good, set_task_params
from fedledger.abci_app.modules.privacy.keeper import debit, has_policy, set_policy
from fedledger.abci_app.modules.reputation.keeper import on_contribution_accepted, on_contribution_rejected
from fedledger.abci_app.modules.secagg.keeper import initial_state, require_stage, secure_full
from fedledger.abci_app.records import load_record, store_record

__all__ = ["HANDLERS", "load_round", "load_task"]


def _closed_round_of_aggregator(view: Reader, ctx: BlockContext, signer: str, task_id: str, number: int,
                                action: str, done: str) -> tuple[TaskRecord, RoundRecord]:
    """The task and round for an aggregator-only action on a closed round (propose, fail)."""
    require_member(view, signer, ctx, ("aggregator",), action)
    task = load_task(view, task_id)
    if signer != task["aggregator"]:
        raise TxError(Code.UNAUTHORIZED, f"only the task's aggregator may {action}")
    record = load_round(view, task_id, number)
    if record["status"] != "closed":
        raise TxError(Code.WRONG_STATE, f"round {number} is {record['status']}; only a closed round can be {done}")
    return task, record


def create_task(view: Reader, state: Writer | None, ctx: BlockContext, signer: str,
                msg: CreateTask) -> list[Event]:
    """Create a task and its version 0 (the initial model every lineage starts from)."""
    require_member(view, signer, ctx, ("validator-admin", "aggregator"), "create tasks")
    if view.get(keys.task_key(msg.task_id)) is not None:
        raise TxError(Code.ALREADY_EXISTS, f"task {msg.task_id!r} already exists")
    agg = member_for_key(view, msg.aggregator, ctx)
    if agg is None or agg["role"] != "aggregator":
        raise TxError(Code.UNAUTHORIZED, "the task's aggregator must be an enrolled member with role 'aggregator'")
    if msg.norm_proof is not None:
        store_norm_circuit(view, state, msg.task_id, msg.norm_proof)  # checks it first, writes only in execute
    if state is not None:
        store_record(state, keys.task_key(msg.task_id), {
            "task_id": msg.task_id, "owner": signer, "aggregator": msg.aggregator,
            "model_spec": msg.model_spec, "round_size": msg.round_size,
            "min_contributions": msg.min_contributions, "deadline_blocks": msg.deadline_blocks,
            "created_height": ctx.height, "current_round": 0, "latest_version": 0,
            "aggregation": msg.aggregation or DEFAULT_POLICY,
            # zkDPS: the bound every commit proves (the circuit itself is under norm_circuit_key).
            **({"norm_proof": {"clip": msg.norm_proof.clip, "dim": msg.norm_proof.dim}} if msg.norm_proof else {}),
        })
        if msg.privacy is not None:
            set_policy(state, msg.task_id, msg.privacy)
        if msg.lifecycle is not None:
            set_task_params(state, msg.task_id, msg.lifecycle)
        store_record(state, keys.version_key(msg.task_id, 0), {
            "task_id": msg.task_id, "version": 0, "round": 0, "parent": None, **msg.initial_model.to_json(),
            "contributors": [], "proposer": signer, "height": ctx.height, "total_examples": 0,
            "status": "initial",
        })
    return [fl_event("create_task", signer, task=msg.task_id, version=0, cid=msg.initial_model.cid)]


def open_round(view: Reader, state: Writer | None, ctx: BlockContext, signer: str,
               msg: OpenRound) -> list[Event]:
    """Open the next round; the previous one must be aggregated or failed."""
    require_member(view, signer, ctx)
    task = load_task(view, msg.task_id)
    if signer not in (task["owner"], task["aggregator"]):
        raise TxError(Code.UNAUTHORIZED, "only the task owner or its aggregator may open rounds")
    if msg.round != task["current_round"] + 1:
        raise TxError(Code.WRONG_STATE, f"the next round of {msg.task_id!r} is {task['current_round'] + 1}")
    if task["current_round"] > 0:
        prev = load_round(view, msg.task_id, task["current_round"])
        if prev["status"] not in ("aggregated", "failed"):
            raise TxError(Code.WRONG_STATE, f"round {prev['round']} is still {prev['status']}")
    if is_screened(task) and msg.reference is None:
        raise TxError(Code.INVALID_BODY, f"task {msg.task_id!r} screens its inputs: open_round must publish the "
                                         "round's reference direction (reference: cid, sha256, size)")
    deadline = ctx.height + task["deadline_blocks"]
    base = last_good(view, msg.task_id)  # clients train only from promoted versions (or version 0)
    if state is not None:
        selected = select_participants(view, msg.task_id, task["round_size"], ctx)
        task["current_round"] = msg.round
        store_record(state, keys.task_key(msg.task_id), task)
        record: RoundRecord = {
            "task_id": msg.task_id, "round": msg.round, "status": "open", "opened_height": ctx.height,
            "deadline_height": deadline, "base_version": base, "contributions": 0,
            "total_examples": 0, "closed_height": None, "version": None, "selected": selected,
        }
        if msg.reference is not None:
            record["reference"] = msg.reference.to_json()
        if is_secure(task):
            record["secagg"] = initial_state(ctx.height, ctx.block_hash)
        store_record(state, keys.round_key(msg.task_id, msg.round), record)
    return [fl_event("open_round", signer, task=msg.task_id, round=msg.round, deadline=deadline,
                     base_version=base)]


def commit_contribution(view: Reader, state: Writer | None, ctx: BlockContext, signer: str,
                        msg: CommitContribution) -> list[Event]:
    """Record a trainer's commitment (CID, sha256, size, examples) in an open round."""
    member = require_member(view, signer, ctx, ("trainer",), "contribute")
    if member["tasks"] and msg.task_id not in member["tasks"]:
        raise TxError(Code.UNAUTHORIZED, f"this member's credential covers tasks {member['tasks']}, not "
                                         f"{msg.task_id!r}")
    task = load_task(view, msg.task_id)
    rnd = load_round(view, msg.task_id, msg.round)
    if rnd["status"] != "open":
        raise TxError(Code.WRONG_STATE, f"round {msg.round} is {rnd['status']}, not open")
    if ctx.height > rnd["deadline_height"]:
        raise TxError(Code.DEADLINE, f"round {msg.round} closed for commits at height {rnd['deadline_height']}")
    if rnd["contributions"] >= task["round_size"]:
        raise TxError(Code.ROUND_FULL, f"round {msg.round} already has {task['round_size']} contributions")
    if "secagg" in rnd:
        # A secure round takes masked inputs only from those who shared their mask secrets.
        sa = require_stage(rnd, "input", "commit masked inputs")
        if signer not in sa["sharers"]:
            raise TxError(Code.NOT_SELECTED, f"round {msg.round} is secure and this participant posted no "
                                             f"secagg shares in time, so its masks could not be removed")
    if signer not in rnd["selected"]:
        raise TxError(Code.NOT_SELECTED, f"this participant was not selected for round {msg.round} (selection "
                                         f"is drawn from the block hash at opening, weighted by reputation)")
    if msg.base_version != rnd["base_version"]:
        raise TxError(Code.WRONG_STATE, f"round {msg.round} trains from version {rnd['base_version']}, "
                                        f"not {msg.base_version}")
    ckey = keys.contribution_key(msg.task_id, msg.round, signer)
    if view.get(ckey) is not None:
        raise TxError(Code.ALREADY_EXISTS, f"this participant already contributed to round {msg.round}")
    cid = contribution_id(msg.task_id, msg.round, signer)
    # zkDPS: CheckTx checks the proof's shape and output; every validator runs ezkl's verifier in FinalizeBlock.
    update_hash = check_norm_proof(view, msg.task_id, msg.norm_proof, execute=state is not None)
    if has_policy(view, msg.task_id):
        if msg.dp is None:
            raise TxError(Code.INVALID_BODY, f"task {msg.task_id!r} has a privacy budget: the commit must declare "
                                             "its DP mechanism (dp)")
        spent = debit(view, state, msg.task_id, member["did"], member["organization"], msg.dp).after
    elif msg.dp is not None:
        raise TxError(Code.INVALID_BODY, f"task {msg.task_id!r} has no privacy budget, so nothing would be "
                                         "charged: declare dp as null")
    else:
        spent = 0
    if state is not None:
        store_record(state, ckey, {
            "id": cid, "task_id": msg.task_id, "round": msg.round, "participant": signer,
            "base_version": msg.base_version, **msg.payload.to_json(), "num_examples": msg.num_examples,
            "height": ctx.height, "did": member["did"], "organization": member["organization"], "dp": msg.dp,
            "epsilon_after_micro": spent,
            **({"norm_proof": "verified", "update_hash": update_hash} if update_hash is not None else {}),
        })
        rnd["contributions"] += 1
        rnd["total_examples"] += msg.num_examples
        store_record(state, keys.round_key(msg.task_id, msg.round), rnd)
    return [fl_event("commit_contribution", signer, task=msg.task_id, round=msg.round, cid=msg.payload.cid,
                     contribution=cid, epsilon_micro=spent)]


def close_round(view: Reader, state: Writer | None, ctx: BlockContext, signer: str,
                msg: ClosedRound) -> list[Event]:
    """Close a round once full or past its deadline; too few contributions marks it failed."""
    require_member(view, signer, ctx)
    task = load_task(view, msg.task_id)
    rnd = load_round(view, msg.task_id, msg.round)
    if rnd["status"] != "open":
        raise TxError(Code.WRONG_STATE, f"round {msg.round} is already {rnd['status']}")
    if "secagg" in rnd:
        require_stage(rnd, "input", "close the round")
    full = secure_full(rnd) if "secagg" in rnd else rnd["contributions"] >= task["round_size"]
    if not full and ctx.height <= rnd["deadline_height"]:
        raise TxError(Code.WRONG_STATE, f"round {msg.round} is open until height {rnd['deadline_height']} "
                                        f"or until it has {task['round_size']} contributions")
    status: RoundStatus = "closed" if rnd["contributions"] >= task["min_contributions"] else "failed"
    if state is not None:
        rnd["status"] = status
        rnd["closed_height"] = ctx.height
        if "secagg" in rnd:
            rnd["secagg"]["stage"], rnd["secagg"]["since"] = "closed", ctx.height
        store_record(state, keys.round_key(msg.task_id, msg.round), rnd)
    return [fl_event("close_round", signer, task=msg.task_id, round=msg.round, status=status,
                     contributions=rnd["contributions"])]


def propose_version(view: Reader, state: Writer | None, ctx: BlockContext, signer: str,
                    msg: ProposeVersion) -> list[Event]:
    """Record the aggregator's next model version with exactly the contributions it included."""
    task, rnd = _closed_round_of_aggregator(view, ctx, signer, msg.task_id, msg.round, "propose versions", "aggregated")
    if "secagg" in rnd:
        sa = require_stage(rnd, "unmask", "propose a version")
        outside = sorted(set(msg.contributors) - set(sa["survivors"]))
        if outside:
            raise TxError(Code.INVALID_BODY, f"{outside[0][:16]}… is not a declared survivor; a secure round's "
                                             f"version can only include survivors")
    total = 0
    included_dids: list[str] = []
    for who in msg.contributors:
        contrib = load_record(view, keys.contribution_key(msg.task_id, msg.round, who))
        if contrib is None:
            raise TxError(Code.NOT_FOUND, f"{who[:16]}… made no contribution to round {msg.round}")
        total += contrib["num_examples"]
        included_dids.append(contrib["did"])
    dropped: list[tuple[str, str]] = []
    for who, reason in msg.dropped:
        contrib = load_record(view, keys.contribution_key(msg.task_id, msg.round, who))
        if contrib is None:
            raise TxError(Code.NOT_FOUND, f"{who[:16]}… made no contribution to round {msg.round}")
        dropped.append((contrib["did"], reason))
    central = aggregation_of(task).get("central_noise")
    if msg.next_clip is not None and (central is None or "adaptive" not in central):
        raise TxError(Code.INVALID_BODY, "next_clip is only for tasks with adaptive clipping (central_noise.adaptive)")
    version = task["latest_version"] + 1
    events: list[Event] = []
    if state is not None:
        for did in included_dids:
            events += on_contribution_accepted(state, did, ctx.height)
        for did, reason in dropped:
            events += on_contribution_rejected(state, did, ctx.height, reason)
        store_record(state, keys.version_key(msg.task_id, version), {
            "task_id": msg.task_id, "version": version, "round": msg.round, "parent": rnd["base_version"],
            **msg.payload.to_json(), "contributors": list(msg.contributors), "proposer": signer,
            "dropped": [{"participant": who, "reason": reason} for who, reason in msg.dropped],
            "height": ctx.height, "total_examples": total, "status": "proposed",
            **({"artifact": {"format": "onnx", **msg.artifact.to_json()}} if msg.artifact is not None else {}),
        })
        rnd["status"] = "aggregated"
        rnd["version"] = version
        store_record(state, keys.round_key(msg.task_id, msg.round), rnd)
        task["latest_version"] = version
        if msg.next_clip is not None and central is not None:
            central["clip"] = msg.next_clip  # the next round clips (and scales its noise) to this
        store_record(state, keys.task_key(msg.task_id), task)
    return [fl_event("propose_version", signer, task=msg.task_id, round=msg.round, version=version,
                     cid=msg.payload.cid), *events]


def fail_round(view: Reader, state: Writer | None, ctx: BlockContext, signer: str,
               msg: FailRound) -> list[Event]:
    """Mark a closed round failed (no usable payloads); the next round then opens from the same base."""
    _, rnd = _closed_round_of_aggregator(view, ctx, signer, msg.task_id, msg.round, "fail rounds", "failed")
    if state is not None:
        rnd["status"] = "failed"
        rnd["failure"] = msg.reason
        store_record(state, keys.round_key(msg.task_id, msg.round), rnd)
    return [fl_event("fail_round", signer, task=msg.task_id, round=msg.round)]


def declare_availability(view: Reader, state: Writer | None, ctx: BlockContext, signer: str,
                         msg: DeclareAvailability) -> list[Event]:
    """Record whether a trainer wants to be selected for the task's next rounds."""
    member = require_member(view, signer, ctx, ("trainer",), "declare availability")
    load_task(view, msg.task_id)
    if state is not None:
        key = keys.availability_key(msg.task_id, member["did"])
        if msg.available:
            state.delete(key)
        else:
            state.set(key, b"0")
    return [fl_event("declare_availability", signer, task=msg.task_id, available=str(msg.available).lower())]


HANDLERS: dict[str, Handler] = {
    "create_task": create_task,
    "open_round": open_round,
    "commit_contribution": commit_contribution,
    "close_round": close_round,
    "propose_version": propose_version,
    "fail_round": fail_round,
    "declare_availability": declare_availability,
}
