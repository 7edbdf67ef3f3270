"""Task privacy policies and the debit of a contribution's declared mechanism against them.

All arithmetic is decimal at a fixed context inside the accountant; what is stored is
canonical strings (RDP per order, rounded up) and integer micro-ε, so every validator writes
the same bytes and the chain never under-charges.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any, cast

from fedledger.abci_app.accountant import (
    ZERO_RDP,
    AccountantError,
    Mechanism,
    charge,
    decode_rdp,
    parse_delta,
)
from fedledger.abci_app.context import Reader, Writer
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.privacy import keys
from fedledger.abci_app.modules.privacy.records import OrgSpendRecord, PrivacyPolicy, SpendRecord
from fedledger.abci_app.records import load_record, store_record

__all__ = ["MICRO", "Debit", "debit", "has_policy", "parse_mechanism", "parse_policy", "policy", "set_policy"]

MICRO = 1_000_000
_CLIP_RE_MAX = 16


def _decimal(value: Any, what: str, hi: Decimal) -> Decimal:
    if not isinstance(value, str) or len(value) > 32:
        raise TxError(Code.INVALID_BODY, f"{what} must be a decimal string such as \"8\"")
    try:
        number = Decimal(value)
    except InvalidOperation as exc:
        raise TxError(Code.INVALID_BODY, f"{what} {value!r} is not a decimal number") from exc
    if not number.is_finite() or not Decimal(0) < number <= hi:
        raise TxError(Code.INVALID_BODY, f"{what} must be in (0, {hi}]")
    return number


def _micro(value: Decimal) -> int:
    return int((value * MICRO).to_integral_value(rounding=ROUND_CEILING))


def parse_policy(body: Any) -> PrivacyPolicy:
    """Validate a task's privacy policy: {"epsilon": "8", "delta": "1e-5", "org_epsilon": "20" | null}."""
    if not isinstance(body, dict) or set(body) != {"epsilon", "delta", "org_epsilon"}:
        raise TxError(Code.INVALID_BODY, "privacy must be an object with epsilon, delta and org_epsilon")
    try:
        delta = parse_delta(body["delta"])
    except (AccountantError, TypeError) as exc:
        raise TxError(Code.INVALID_BODY, f"privacy.delta: {exc}") from exc
    org = body["org_epsilon"]
    return {"epsilon_micro": _micro(_decimal(body["epsilon"], "privacy.epsilon", Decimal(1000))),
            "delta": format(delta, "f"),
            "org_epsilon_micro": None if org is None else _micro(_decimal(org, "privacy.org_epsilon",
                                                                            Decimal(100000)))}


def parse_mechanism(body: Any) -> tuple[Mechanism, str]:
    """The declared mechanism and its clipping norm (recorded for audit; ε does not depend on it)."""
    if not isinstance(body, dict) or "clip_norm" not in body:
        raise TxError(Code.INVALID_BODY, "dp must declare noise_multiplier, sample_rate, steps and clip_norm")
    rest = {k: v for k, v in body.items() if k != "clip_norm"}
    clip = _decimal(body["clip_norm"], "dp.clip_norm", Decimal(10**6))
    try:
        return Mechanism.parse(rest), format(clip, "f")
    except (AccountantError, ValueError, TypeError) as exc:
        raise TxError(Code.INVALID_BODY, f"dp mechanism: {exc}") from exc


def set_policy(state: Writer, task_id: str, record: PrivacyPolicy) -> None:
    """Store a task's validated policy."""
    store_record(state, keys.policy_key(task_id), record)


def has_policy(view: Reader, task_id: str) -> bool:
    """True if the task was created with a privacy budget (tasks created with `privacy: null` have none)."""
    return view.get(keys.policy_key(task_id)) is not None


def policy(view: Reader, task_id: str) -> PrivacyPolicy:
    """A task's policy (every task has one)."""
    rec = load_record(view, keys.policy_key(task_id))
    if rec is None:
        raise RuntimeError(f"state invariant violated: task {task_id!r} has no privacy policy")
    return cast(PrivacyPolicy, rec)


class Debit:
    """The outcome of a debit: ε spent before and after, in micro-ε."""

    def __init__(self, before: int, after: int, budget: int) -> None:
        self.before = before
        self.after = after
        self.budget = budget


def debit(view: Reader, state: Writer | None, task_id: str, did: str, org: str, mech_body: Any) -> Debit:
    """Compose the declared mechanism onto the participant's (and organization's) history and charge it.

    Refuses, with no state change, a contribution that would take the participant past the task's
    ε budget, or the organization past its cap.
    """
    mech, clip = parse_mechanism(mech_body)
    pol = policy(view, task_id)
    mine = cast(SpendRecord | None, load_record(view, keys.spend_key(task_id, did)))
    before = mine["spent_micro"] if mine is not None else 0
    mine_charge = charge(decode_rdp(mine["rdp"]) if mine is not None else ZERO_RDP, mech, pol["delta"])
    if mine_charge.epsilon_micro > pol["epsilon_micro"]:
        raise TxError(Code.BUDGET_EXCEEDED,
                      f"this contribution would bring ε on {task_id!r} to {mine_charge.epsilon_micro / MICRO:.6f} "
                      f"(order {mine_charge.order}), over the budget of {pol['epsilon_micro'] / MICRO:.6f} at "
                      f"δ={pol['delta']}; {max(0, pol['epsilon_micro'] - before) / MICRO:.6f} remains")
    if pol["org_epsilon_micro"] is None and state is None:
        return Debit(before, mine_charge.epsilon_micro, pol["epsilon_micro"])  # nothing more to check
    org_rec = cast(OrgSpendRecord | None, load_record(view, keys.org_spend_key(task_id, org)))
    org_charge = charge(decode_rdp(org_rec["rdp"]) if org_rec is not None else ZERO_RDP, mech, pol["delta"])
    if pol["org_epsilon_micro"] is not None and org_charge.epsilon_micro > pol["org_epsilon_micro"]:
        raise TxError(Code.BUDGET_EXCEEDED,
                      f"this contribution would bring organization {org!r} to ε "
                      f"{org_charge.epsilon_micro / MICRO:.6f} on {task_id!r}, over its cap of "
                      f"{pol['org_epsilon_micro'] / MICRO:.6f}")
    if state is not None:
        store_record(state, keys.spend_key(task_id, did), {
            "task_id": task_id, "did": did, "rdp": mine_charge.encoded_rdp(),
            "spent_micro": mine_charge.epsilon_micro,
            "contributions": (mine["contributions"] if mine is not None else 0) + 1,
            "last_mechanism": {**mech.to_json(), "clip_norm": clip},
        })
        store_record(state, keys.org_spend_key(task_id, org), {
            "task_id": task_id, "organization": org, "rdp": org_charge.encoded_rdp(),
            "spent_micro": org_charge.epsilon_micro,
        })
    return Debit(before, mine_charge.epsilon_micro, pol["epsilon_micro"])
