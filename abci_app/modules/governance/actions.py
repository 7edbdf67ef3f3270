"""What a passed proposal does: a registry of actions, each a stateless parse, a stateful check and an execute.

A proposal's action is parsed when the tx is checked, checked against state when it is submitted,
and checked again and executed when the proposal passes (state may have moved in between). An
action writes only after its check, and `run_action` executes it on an overlay that is applied
only if it succeeds, so a failing action changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, cast

from fedledger.abci_app.context import BlockContext, Event, Reader, Writer
from fedledger.abci_app.did.credentials import key_of_did
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.events import EVENT_TYPE
from fedledger.abci_app.modules.evm.keeper import check_set_policy, execute_set_policy, parse_set_policy
from fedledger.abci_app.modules.federation.keeper import MAX_DEADLINE_BLOCKS, MAX_ROUND_SIZE, load_task, store_task
from fedledger.abci_app.modules.fields import int_value, require_fields
from fedledger.abci_app.modules.governance.params import effective_weights, load_params, parse_params, store_params
from fedledger.abci_app.modules.governance.records import GovParams
from fedledger.abci_app.modules.governance.validators import (
    check_add,
    check_remove,
    check_set_power,
    find_validator,
    load_validators,
    parse_power,
    parse_pub_key,
    put_validator,
)
from fedledger.abci_app.modules.identity.keeper import (
    delete_org,
    find_org,
    members,
    org_exists,
    organization_record,
    store_member,
    store_org,
)
from fedledger.abci_app.modules.identity.records import OrganizationRecord
from fedledger.abci_app.modules.inference.keeper import parse_params as parse_inference_params
from fedledger.abci_app.modules.inference.keeper import store_params as store_inference_params
from fedledger.abci_app.modules.lifecycle.keeper import PARAM_NAMES as LIFECYCLE_CHANGES
from fedledger.abci_app.modules.lifecycle.keeper import check_rollback, check_task_params, rollback, set_task_params
from fedledger.abci_app.modules.lifecycle.keeper import parse_params as parse_lifecycle_params
from fedledger.abci_app.modules.privacy.keeper import MICRO, parse_policy, policy, set_policy
from fedledger.abci_app.modules.reputation.keeper import params as reputation_params
from fedledger.abci_app.modules.reputation.keeper import set_params as set_reputation_params
from fedledger.abci_app.modules.reputation.keeper import validate_params as validate_reputation_params

__all__ = ["ACTIONS", "UNAVAILABLE", "Action", "check_action", "parse_action", "run_action"]

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
PRIVACY_CHANGES = ("epsilon", "delta", "org_epsilon")
ROUND_CHANGES = ("round_size", "min_contributions", "deadline_blocks")


@dataclass(frozen=True)
class Action:
    """One governance action.

    parse: stateless validation of the action body (without its "type"); returns the normalized body
    that is stored in the proposal, or raises TxError(INVALID_BODY).
    check: stateful validation against a read-only view; raises TxError.
    execute: the writes, called only right after check passed against the same state; returns events.
    """

    parse: Callable[[Mapping[str, Any]], dict[str, Any]]
    check: Callable[[Reader, Mapping[str, Any]], None]
    execute: Callable[[Writer, Mapping[str, Any], BlockContext], list[Event]]


# ----- body helpers -----



def _id(body: Mapping[str, Any], name: str, what: str) -> str:
    value = body[name]
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise TxError(Code.INVALID_BODY, f"{name} must be {what} (1-64 chars of a-z, 0-9, '-' or '_')")
    return value





def _did(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise TxError(Code.INVALID_BODY, f"{name} must be an Ed25519 did:key")
    try:
        key_of_did(value)
    except (ValueError, TypeError) as exc:
        raise TxError(Code.INVALID_BODY, f"{name} {value[:80]!r} is not an Ed25519 did:key: {exc}") from exc
    return value


def _org(view: Reader, org: str) -> OrganizationRecord:
    rec = find_org(view, org)
    if rec is None:
        raise TxError(Code.NOT_FOUND, f"organization {org!r} is not registered on this chain")
    return rec


# ----- set_task_policy -----
def _micro_str(micro: int) -> str:
    """A micro-ε integer back as the exact decimal string parse_policy reads (ceil of it is micro again)."""
    return format(Decimal(micro).scaleb(-6), "f")


def _policy_body(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """The full policy body: the current policy with the privacy changes applied."""
    org = current["org_epsilon_micro"]
    body = {"epsilon": _micro_str(current["epsilon_micro"]), "delta": current["delta"],
            "org_epsilon": None if org is None else _micro_str(org)}
    body.update({k: changes[k] for k in PRIVACY_CHANGES if k in changes})
    return body


def _parse_task_policy(body: Mapping[str, Any]) -> dict[str, Any]:
    require_fields(body, {"task_id", "changes"}, what="action")
    task_id = _id(body, "task_id", "a task id")
    changes = body["changes"]
    known = PRIVACY_CHANGES + ROUND_CHANGES + LIFECYCLE_CHANGES
    if not isinstance(changes, Mapping) or not changes:
        raise TxError(Code.INVALID_BODY, f"changes must be a non-empty object with some of {sorted(known)}")
    unknown = sorted(set(changes) - set(known))
    if unknown:
        raise TxError(Code.INVALID_BODY, f"set_task_policy cannot change {unknown}; it changes {sorted(known)}")
    if any(k in changes for k in PRIVACY_CHANGES):
        # Placeholders stand in for what the change leaves out; they are valid, so any error is the change's.
        parse_policy(_policy_body({"epsilon_micro": MICRO, "delta": "0.00001", "org_epsilon_micro": None}, changes))
    limits = {"round_size": MAX_ROUND_SIZE, "min_contributions": MAX_ROUND_SIZE,
              "deadline_blocks": MAX_DEADLINE_BLOCKS}
    for name in ROUND_CHANGES:
        if name in changes:
            int_value(changes[name], f"changes.{name}", 1, limits[name])
    if changes.get("min_contributions", 1) > changes.get("round_size", MAX_ROUND_SIZE):
        raise TxError(Code.INVALID_BODY, "changes.min_contributions must not exceed changes.round_size")
    lifecycle = _lifecycle_changes(changes)
    if lifecycle:
        parse_lifecycle_params(lifecycle)
    return {"task_id": task_id, "changes": {k: changes[k] for k in sorted(changes)}}


def _lifecycle_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    return {k: changes[k] for k in LIFECYCLE_CHANGES if k in changes}


def _new_round_params(task: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, int]:
    merged = {name: changes.get(name, task[name]) for name in ROUND_CHANGES}
    if merged["min_contributions"] > merged["round_size"]:
        raise TxError(Code.ACTION_INVALID, f"task {task['task_id']!r} would need {merged['min_contributions']} "
                                           f"contributions in rounds of at most {merged['round_size']}")
    return merged


def _check_task_policy(view: Reader, body: Mapping[str, Any]) -> None:
    task = load_task(view, body["task_id"])
    _new_round_params(task, body["changes"])
    lifecycle = _lifecycle_changes(body["changes"])
    if lifecycle:
        check_task_params(view, body["task_id"], lifecycle)


def _execute_task_policy(state: Writer, body: Mapping[str, Any], ctx: BlockContext) -> list[Event]:
    task_id, changes = body["task_id"], body["changes"]
    task = load_task(state, task_id)
    events: list[Event] = []
    if any(k in changes for k in ROUND_CHANGES):
        # Applies from now on, to the open round too: its fullness (commit, close) is judged by the new
        # round_size and its closing by the new min_contributions. Its deadline was fixed when it opened,
        # so deadline_blocks applies from the next round.
        merged = _new_round_params(task, changes)
        task["round_size"] = merged["round_size"]
        task["min_contributions"] = merged["min_contributions"]
        task["deadline_blocks"] = merged["deadline_blocks"]
        store_task(state, task)
    if any(k in changes for k in PRIVACY_CHANGES):
        set_policy(state, task_id, parse_policy(_policy_body(policy(state, task_id), changes)))
    lifecycle = _lifecycle_changes(changes)
    if lifecycle:
        # With the height, versions already attested enough under the new thresholds are decided now.
        events += set_task_params(state, task_id, lifecycle, ctx.height, ctx)
    return events


# ----- rollback (lifecycle) -----
def _parse_rollback(body: Mapping[str, Any]) -> dict[str, Any]:
    require_fields(body, {"task_id"}, frozenset({"to_version"}), what="action")
    out: dict[str, Any] = {"task_id": _id(body, "task_id", "a task id")}
    if body.get("to_version") is not None:
        out["to_version"] = int_value(body["to_version"], "to_version", 0, 2**40)
    return out


def _check_rollback(view: Reader, body: Mapping[str, Any]) -> None:
    check_rollback(view, body["task_id"], body.get("to_version"))


def _execute_rollback(state: Writer, body: Mapping[str, Any], ctx: BlockContext) -> list[Event]:
    return rollback(state, body["task_id"], body.get("to_version"), ctx.height)


# ----- reputation parameters (chain-wide, so not part of a task's policy) -----
def _parse_reputation(body: Mapping[str, Any]) -> dict[str, Any]:
    require_fields(body, {"changes"}, what="action")
    changes = body["changes"]
    if not isinstance(changes, Mapping) or not changes:
        raise TxError(Code.INVALID_BODY, "changes must be a non-empty object of reputation params")
    # Ranges depend on the params in force (initial must lie in [floor, cap]), so values are checked
    # against state in check, at submit and again at execution.
    return {"changes": dict(changes)}


def _check_reputation(view: Reader, body: Mapping[str, Any]) -> None:
    validate_reputation_params(body["changes"], reputation_params(view))


def _execute_reputation(state: Writer, body: Mapping[str, Any], ctx: BlockContext) -> list[Event]:
    set_reputation_params(state, body["changes"])
    return []


# ----- organizations -----
def _parse_add_org(body: Mapping[str, Any]) -> dict[str, Any]:
    require_fields(body, {"organization"}, frozenset({"weight"}), what="action")
    if not isinstance(body["organization"], Mapping):
        raise TxError(Code.INVALID_BODY, "organization must be an object shaped like an identity genesis entry")
    try:
        record = organization_record(body["organization"])
    except (ValueError, TypeError) as exc:
        raise TxError(Code.INVALID_BODY, f"organization: {exc}") from exc
    for did in record["admins"]:
        _did(did, "organization.admins entry")
    out: dict[str, Any] = {"organization": record}
    if "weight" in body:
        out["weight"] = int_value(body["weight"], "weight", 0, 1_000_000)
    return out


def _check_add_org(view: Reader, body: Mapping[str, Any]) -> None:
    oid = body["organization"]["id"]
    if org_exists(view, oid):
        raise TxError(Code.ALREADY_EXISTS, f"organization {oid!r} is already registered")


def _execute_add_org(state: Writer, body: Mapping[str, Any], ctx: BlockContext) -> list[Event]:
    record = cast(OrganizationRecord, dict(body["organization"]))  # organization_record built it in parse
    store_org(state, record)
    if "weight" in body:
        store_params(state, parse_params({"weights": {record["id"]: body["weight"]}}, load_params(state)))
    return []


def _parse_remove_org(body: Mapping[str, Any]) -> dict[str, Any]:
    require_fields(body, {"id"}, what="action")
    return {"id": _id(body, "id", "an organization id")}


def _check_remove_org(view: Reader, body: Mapping[str, Any], leaving: str | None = None) -> None:
    _org(view, body["id"])
    # Its validators would sign on for an organization the chain no longer knows: take them out first
    # (remove_validator with remove_organization does both). `leaving` is the one going with it.
    running = [v["pub_key"] for v in load_validators(view)
               if v["organization"] == body["id"] and v["pub_key"] != leaving]
    if running:
        raise TxError(Code.ACTION_INVALID, f"organization {body['id']!r} still runs validators {running}; remove "
                                           "them first")
    if not any(org != body["id"] for org, _ in effective_weights(view, load_params(view))):
        raise TxError(Code.ACTION_INVALID, f"{body['id']!r} is the last organization; removing it would leave "
                                           "nobody to govern")


def _execute_remove_org(state: Writer, body: Mapping[str, Any], ctx: BlockContext) -> list[Event]:
    oid = body["id"]
    # Members of a removed organization lose their rights with it (member_for_key needs status "active").
    for member in list(members(state)):
        if member["organization"] == oid and member["status"] == "active":
            member["status"] = "organization_removed"
            store_member(state, member)
    delete_org(state, oid)
    params = load_params(state)
    if oid in params["weights"]:
        params["weights"] = {org: w for org, w in params["weights"].items() if org != oid}
        store_params(state, params)
    return []


def _list_member_action(field: Literal["issuers", "admins"], adding: bool) -> Action:
    """add_issuer / remove_issuer / add_admin / remove_admin: one DID into or out of an organization's list."""
    what = field[:-1]

    def parse(body: Mapping[str, Any]) -> dict[str, Any]:
        require_fields(body, {"organization", "did"}, what="action")
        return {"organization": _id(body, "organization", "an organization id"), "did": _did(body["did"], "did")}

    def check(view: Reader, body: Mapping[str, Any]) -> None:
        org = _org(view, body["organization"])
        present = body["did"] in org[field]
        if adding and present:
            raise TxError(Code.ALREADY_EXISTS, f"{body['did']} is already an {what} of {org['id']!r}")
        if not adding and not present:
            raise TxError(Code.NOT_FOUND, f"{body['did']} is not an {what} of {org['id']!r}")
        if not adding and len(org[field]) == 1:
            raise TxError(Code.ACTION_INVALID, f"{body['did']} is the last {what} of {org['id']!r}; add another "
                                               "first")

    def execute(state: Writer, body: Mapping[str, Any], ctx: BlockContext) -> list[Event]:
        org = _org(state, body["organization"])
        dids = set(org[field])
        if adding:
            dids.add(body["did"])
        else:
            dids.discard(body["did"])
        org[field] = sorted(dids)
        store_org(state, org)
        return []

    return Action(parse=parse, check=check, execute=execute)


# ----- governance parameters -----
def _parse_gov_params(body: Mapping[str, Any]) -> dict[str, Any]:
    require_fields(body, {"changes"}, what="action")
    changes = body["changes"]
    if not isinstance(changes, Mapping) or not changes:
        raise TxError(Code.INVALID_BODY, "changes must be a non-empty object of governance parameters")
    try:
        parse_params(changes)  # valid against the defaults means every given value is valid
    except ValueError as exc:
        raise TxError(Code.INVALID_BODY, str(exc)) from exc
    return {"changes": {k: changes[k] for k in sorted(changes)}}


def _new_gov_params(view: Reader, body: Mapping[str, Any]) -> GovParams:
    params = parse_params(body["changes"], load_params(view))
    for org in sorted(body["changes"].get("weights", {})):
        _org(view, org)
    if sum(w for _, w in effective_weights(view, params)) == 0:
        raise TxError(Code.ACTION_INVALID, "these weights leave no organization with voting weight")
    return params


def _check_gov_params(view: Reader, body: Mapping[str, Any]) -> None:
    _new_gov_params(view, body)


def _execute_gov_params(state: Writer, body: Mapping[str, Any], ctx: BlockContext) -> list[Event]:
    store_params(state, _new_gov_params(state, body))
    return []


# ----- the validator set (CometBFT applies each change two blocks after the block it passes in) -----
def _parse_add_validator(body: Mapping[str, Any]) -> dict[str, Any]:
    """{pub_key, power, organization: ID} for a registered organization, or new_organization: {...} (+ weight)."""
    require_fields(body, {"pub_key", "power"}, frozenset({"organization", "new_organization", "weight"}),
                   what="action")
    out: dict[str, Any] = {"pub_key": parse_pub_key(body["pub_key"]), "power": parse_power(body["power"])}
    if ("organization" in body) == ("new_organization" in body):
        raise TxError(Code.INVALID_BODY, "give exactly one of organization (a registered organization's id) and "
                                         "new_organization (an organization to register with its validator)")
    if "organization" in body:
        if "weight" in body:
            raise TxError(Code.INVALID_BODY, "weight goes with new_organization; change a registered organization's "
                                             "weight with set_governance_params")
        out["organization"] = _id(body, "organization", "an organization id")
    else:
        new = _parse_add_org({"organization": body["new_organization"],
                              **({"weight": body["weight"]} if "weight" in body else {})})
        out["new_organization"] = new["organization"]
        if "weight" in new:
            out["weight"] = new["weight"]
    return out


def _add_org_body(body: Mapping[str, Any]) -> dict[str, Any]:
    return {"organization": body["new_organization"], **({"weight": body["weight"]} if "weight" in body else {})}


def _owner(body: Mapping[str, Any]) -> str:
    return str(body["organization"] if "organization" in body else body["new_organization"]["id"])


def _check_add_validator(view: Reader, body: Mapping[str, Any]) -> None:
    if "organization" in body:
        _org(view, body["organization"])
    else:
        _check_add_org(view, _add_org_body(body))
    check_add(view, body["pub_key"], body["power"])


def _execute_add_validator(state: Writer, body: Mapping[str, Any], ctx: BlockContext) -> list[Event]:
    if "new_organization" in body:
        _execute_add_org(state, _add_org_body(body), ctx)
    put_validator(state, body["pub_key"], body["power"], _owner(body), ctx.height)
    return [_valset_event("add_validator", body["pub_key"], body["power"], ctx)]


def _valset_event(action: str, pub_key: str, power: int, ctx: BlockContext) -> Event:
    return Event(type=EVENT_TYPE, attributes=(("action", action), ("effective_height", str(ctx.height + 2)),
                                        ("power", str(power)), ("pub_key", pub_key)))


def _parse_remove_validator(body: Mapping[str, Any]) -> dict[str, Any]:
    """{pub_key, remove_organization?: bool}: with remove_organization, its organization goes too."""
    require_fields(body, {"pub_key"}, frozenset({"remove_organization"}), what="action")
    out: dict[str, Any] = {"pub_key": parse_pub_key(body["pub_key"])}
    flag = body.get("remove_organization", False)
    if not isinstance(flag, bool):
        raise TxError(Code.INVALID_BODY, "remove_organization must be true or false")
    if flag:
        out["remove_organization"] = True
    return out


def _org_to_remove(view: Reader, body: Mapping[str, Any]) -> str | None:
    if not body.get("remove_organization"):
        return None
    rec = find_validator(view, body["pub_key"])
    org = None if rec is None else rec["organization"]
    if org is None:
        raise TxError(Code.ACTION_INVALID, f"validator {body['pub_key']} belongs to no organization on record "
                                           "(a genesis validator); remove it without remove_organization")
    return org


def _check_remove_validator(view: Reader, body: Mapping[str, Any]) -> None:
    check_remove(view, body["pub_key"])
    org = _org_to_remove(view, body)
    if org is not None:
        _check_remove_org(view, {"id": org}, leaving=body["pub_key"])


def _execute_remove_validator(state: Writer, body: Mapping[str, Any], ctx: BlockContext) -> list[Event]:
    org = _org_to_remove(state, body)
    put_validator(state, body["pub_key"], 0, None, ctx.height)
    if org is not None:
        _execute_remove_org(state, {"id": org}, ctx)
    return [_valset_event("remove_validator", body["pub_key"], 0, ctx)]


def _parse_set_power(body: Mapping[str, Any]) -> dict[str, Any]:
    require_fields(body, {"pub_key", "power"}, what="action")
    return {"pub_key": parse_pub_key(body["pub_key"]), "power": parse_power(body["power"])}


def _check_set_power(view: Reader, body: Mapping[str, Any]) -> None:
    check_set_power(view, body["pub_key"], body["power"])


def _execute_set_power(state: Writer, body: Mapping[str, Any], ctx: BlockContext) -> list[Event]:
    rec = find_validator(state, body["pub_key"])
    put_validator(state, body["pub_key"], body["power"], None if rec is None else rec["organization"], ctx.height)
    return [_valset_event("set_validator_power", body["pub_key"], body["power"], ctx)]


# ----- the registry -----
def _parse_inference_params(body: Mapping[str, Any]) -> dict[str, Any]:
    require_fields(body, {"params"}, what="action")
    return {"type": "set_inference_params", "params": parse_inference_params(body["params"])}


def _check_inference_params(view: Reader, body: Mapping[str, Any]) -> None:
    return None  # any in-range params are a valid state; parse checked the ranges


def _execute_inference_params(state: Writer, body: Mapping[str, Any], ctx: BlockContext) -> list[Event]:
    store_inference_params(state, body["params"])
    return []


ACTIONS: dict[str, Action] = {
    "set_task_policy": Action(_parse_task_policy, _check_task_policy, _execute_task_policy),
    "add_organization": Action(_parse_add_org, _check_add_org, _execute_add_org),
    "remove_organization": Action(_parse_remove_org, _check_remove_org, _execute_remove_org),
    "add_issuer": _list_member_action("issuers", adding=True),
    "remove_issuer": _list_member_action("issuers", adding=False),
    "add_admin": _list_member_action("admins", adding=True),
    "remove_admin": _list_member_action("admins", adding=False),
    "set_governance_params": Action(_parse_gov_params, _check_gov_params, _execute_gov_params),
    "rollback": Action(_parse_rollback, _check_rollback, _execute_rollback),
    "set_reputation_params": Action(_parse_reputation, _check_reputation, _execute_reputation),
    "set_policy_contract": Action(parse_set_policy, check_set_policy, execute_set_policy),
    "set_inference_params": Action(_parse_inference_params, _check_inference_params,
                                   _execute_inference_params),
    "add_validator": Action(_parse_add_validator, _check_add_validator, _execute_add_validator),
    "remove_validator": Action(_parse_remove_validator, _check_remove_validator, _execute_remove_validator),
    "set_validator_power": Action(_parse_set_power, _check_set_power, _execute_set_power),
}
# Actions this chain knows of but cannot run, with the reason given to whoever proposes one. A new
# action is one (parse, check, execute) entry in ACTIONS; an action that needs a module the chain
# does not run goes here instead, so proposing it fails at submit with this reason.
UNAVAILABLE: dict[str, str] = {}


def parse_action(body: Any) -> dict[str, Any]:
    """Stateless validation of a proposal's action: {"type": NAME, ...fields}; returns its normalized form."""
    if not isinstance(body, Mapping) or not isinstance(body.get("type"), str):
        raise TxError(Code.INVALID_BODY, f"action must be an object with a \"type\", one of {sorted(ACTIONS)}")
    name = body["type"]
    if name in UNAVAILABLE:
        raise TxError(Code.UNKNOWN_ACTION, f"action {name!r} is not supported on this chain: {UNAVAILABLE[name]}")
    action = ACTIONS.get(name)
    if action is None:
        raise TxError(Code.UNKNOWN_ACTION, f"unknown action {name[:64]!r}; this chain supports {sorted(ACTIONS)}")
    rest = {k: v for k, v in body.items() if k != "type"}
    return {"type": name, **action.parse(rest)}


def _split(normalized: Mapping[str, Any]) -> tuple[Action, dict[str, Any]]:
    return ACTIONS[normalized["type"]], {k: v for k, v in normalized.items() if k != "type"}


def check_action(view: Reader, normalized: Mapping[str, Any]) -> None:
    """Stateful validation of a parsed action against `view`; raises TxError."""
    action, body = _split(normalized)
    action.check(view, body)


class _Overlay:
    """Writes buffered over a Writer, applied only on success (so a failing action leaves no partial writes)."""

    def __init__(self, base: Writer) -> None:
        self._base = base
        self._changes: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        """The buffered value, else the base's."""
        if key in self._changes:
            return self._changes[key]
        return self._base.get(key)

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Sorted (key, value) under prefix, buffered writes over the base's."""
        merged = dict(self._base.iter_prefix(prefix))
        for key, value in self._changes.items():
            if key.startswith(prefix):
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
        return iter(sorted(merged.items()))

    def set(self, key: bytes, value: bytes) -> None:
        """Buffer a write."""
        self._changes[key] = value

    def delete(self, key: bytes) -> None:
        """Buffer a delete."""
        self._changes[key] = None

    def apply(self) -> None:
        """Write the buffered changes to the base, in key order."""
        for key in sorted(self._changes):
            value = self._changes[key]
            if value is None:
                self._base.delete(key)
            else:
                self._base.set(key, value)


def run_action(state: Writer, normalized: Mapping[str, Any], ctx: BlockContext) -> list[Event]:
    """Check the action against the current state and execute it atomically; returns its events.

    Raises TxError (or ValueError from a module it calls) with nothing written when it cannot run.
    """
    action, body = _split(normalized)
    overlay = _Overlay(state)
    action.check(overlay, body)
    events = action.execute(overlay, body, ctx)
    overlay.apply()
    return events
