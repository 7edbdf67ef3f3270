"""The CometBFT validator set as the app sees it, and the updates it owes CometBFT in FinalizeBlock.

The set is one record (`gov/validators`), initialised from InitChain's validators so it is known
from genesis, and changed only by passed governance proposals (add_validator, remove_validator,
set_validator_power). Every change is also written to a pending record keyed by public key with
the validator's final power (0 = removed), so two changes to one validator in one block become one
update: CometBFT refuses a block's updates that name a key twice. FinalizeBlock takes the pending
record, sorted by key, and deletes it in the same block, so committed state never holds it.

CometBFT applies the updates of block H from block H+2; the app's set is the set that will sign
from then on, and each entry says from which height (`effective_height`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any, TypedDict, cast

from fedledger.abci_app.context import Reader, ValidatorUpdate, Writer
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.records import load_record, store_record

__all__ = ["GENESIS_ORGS_KEY", "MAX_POWER", "MAX_TOTAL_POWER", "PENDING_KEY", "VALIDATORS_KEY", "ValidatorRecord",
           "check_add", "check_remove", "check_set_power", "find_validator", "init_validators", "load_validators",
           "parse_power", "parse_pub_key", "put_validator", "take_updates", "validator_set_answer"]

VALIDATORS_KEY = b"gov/validators"
PENDING_KEY = b"gov/valset_pending"
# Genesis only: which organization runs each genesis validator, from the governance genesis section
# (written by init_genesis, read and deleted by init_validators in the same InitChain).
GENESIS_ORGS_KEY = b"gov/genesis_validator_orgs"
#: Highest power one validator may hold (far below CometBFT's own bound, so a sum can never overflow).
MAX_POWER = 10**12
#: CometBFT's MaxTotalVotingPower (int64 max / 8): a set whose total exceeds it is refused by CometBFT.
MAX_TOTAL_POWER = (2**63 - 1) // 8
#: How many blocks after the block that emits an update CometBFT lets the new set sign.
UPDATE_DELAY = 2


class ValidatorRecord(TypedDict):
    """One validator: its Ed25519 key (standard base64, as in CometBFT's genesis), power and owner."""

    pub_key: str
    power: int
    organization: str | None  # None for genesis validators, whose owner InitChain does not tell
    effective_height: int  # the first height it signs with this power (0: from genesis)


def parse_pub_key(value: Any, name: str = "pub_key") -> str:
    """An Ed25519 public key as canonical standard base64 of 32 bytes; INVALID_BODY otherwise."""
    if not isinstance(value, str) or len(value) > 64:
        raise TxError(Code.INVALID_BODY, f"{name} must be an Ed25519 public key in base64 (44 characters)")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise TxError(Code.INVALID_BODY, f"{name} {value!r} is not base64: {exc}") from exc
    if len(raw) != 32:
        raise TxError(Code.INVALID_BODY, f"{name} must decode to 32 bytes (an Ed25519 key), got {len(raw)}")
    if base64.b64encode(raw).decode("ascii") != value:
        # One key, one spelling: otherwise a duplicate could hide behind another encoding.
        raise TxError(Code.INVALID_BODY, f"{name} {value!r} is not in canonical base64")
    return value


def parse_power(value: Any, name: str = "power") -> int:
    """A validator power in [1, MAX_POWER]; removing is its own action, so 0 is refused here."""
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_POWER:
        raise TxError(Code.INVALID_BODY, f"{name} must be an integer in [1, {MAX_POWER}]; "
                                         "use remove_validator to take a validator out")
    return value


def load_validators(view: Reader) -> list[ValidatorRecord]:
    """The app's validator set, sorted by public key."""
    rec = load_record(view, VALIDATORS_KEY)
    return [] if rec is None else cast(list[ValidatorRecord], rec["validators"])


def _store(state: Writer, validators: Sequence[ValidatorRecord]) -> None:
    ordered = sorted(validators, key=lambda v: v["pub_key"])
    store_record(state, VALIDATORS_KEY, {"validators": list(ordered),
                                         "total_power": sum(v["power"] for v in ordered)})


def find_validator(view: Reader, pub_key: str) -> ValidatorRecord | None:
    """The validator with this key, or None."""
    return next((v for v in load_validators(view) if v["pub_key"] == pub_key), None)


def init_validators(state: Writer, updates: Sequence[ValidatorUpdate]) -> None:
    """Record InitChain's validators as the genesis set; a malformed or repeated one halts genesis.

    Without validators (an in-process chain) nothing is written, so such a chain's genesis state
    stays what it was before the app kept a validator set. Owners named in the governance genesis
    section (`validator_organizations`) must each be one of these validators.
    """
    owners = load_record(state, GENESIS_ORGS_KEY) or {}
    if owners:
        state.delete(GENESIS_ORGS_KEY)
    if not updates:
        if owners:
            raise RuntimeError("governance genesis names validator_organizations but InitChain has no validators")
        return
    seen: set[str] = set()
    out: list[ValidatorRecord] = []
    for update in updates:
        key = base64.b64encode(update.pub_key).decode("ascii")
        if len(update.pub_key) != 32 or not 1 <= update.power <= MAX_POWER or key in seen:
            raise RuntimeError(f"genesis validator {key} (power {update.power}) is malformed or repeated")
        seen.add(key)
        out.append({"pub_key": key, "power": update.power, "organization": owners.get(key), "effective_height": 0})
    strangers = sorted(set(owners) - seen)
    if strangers:
        raise RuntimeError(f"governance validator_organizations names keys that are not genesis validators: "
                           f"{strangers}")
    _store(state, out)


def _total(validators: Sequence[ValidatorRecord]) -> int:
    return sum(v["power"] for v in validators)


def _require(view: Reader, pub_key: str) -> ValidatorRecord:
    rec = find_validator(view, pub_key)
    if rec is None:
        raise TxError(Code.NOT_FOUND, f"{pub_key} is not a validator of this chain")
    return rec


def check_add(view: Reader, pub_key: str, power: int) -> None:
    """ALREADY_EXISTS for a key already in the set; VALIDATOR_SET_UNSAFE if the newcomer could halt the chain.

    A new validator may not be online yet. CometBFT needs more than 2/3 of the power to sign, so
    the newcomer must hold less than 1/3 of the new total: then the chain stays live without it.
    """
    validators = load_validators(view)
    if any(v["pub_key"] == pub_key for v in validators):
        raise TxError(Code.ALREADY_EXISTS, f"{pub_key} is already a validator")
    total = _total(validators) + power
    if total > MAX_TOTAL_POWER:
        raise TxError(Code.VALIDATOR_SET_UNSAFE, f"total power {total} would exceed CometBFT's {MAX_TOTAL_POWER}")
    if 3 * power >= total:
        raise TxError(Code.VALIDATOR_SET_UNSAFE,
                      f"power {power} would be at least 1/3 of the new total {total}: if the new validator is "
                      f"not online the chain halts; give it at most {(total - power - 1) // 2}")


def check_remove(view: Reader, pub_key: str) -> None:
    """NOT_FOUND for an unknown key; VALIDATOR_SET_UNSAFE for the last validator."""
    _require(view, pub_key)
    if len(load_validators(view)) == 1:
        raise TxError(Code.VALIDATOR_SET_UNSAFE, f"{pub_key} is the last validator; removing it stops the chain")


def check_set_power(view: Reader, pub_key: str, power: int) -> None:
    """NOT_FOUND for an unknown key; ACTION_INVALID when the power is unchanged; the total bound."""
    rec = _require(view, pub_key)
    if rec["power"] == power:
        raise TxError(Code.ACTION_INVALID, f"{pub_key} already has power {power}")
    total = _total(load_validators(view)) - rec["power"] + power
    if total > MAX_TOTAL_POWER:
        raise TxError(Code.VALIDATOR_SET_UNSAFE, f"total power {total} would exceed CometBFT's {MAX_TOTAL_POWER}")


def put_validator(state: Writer, pub_key: str, power: int, organization: str | None, height: int) -> None:
    """Set a validator's power (0 removes it) in the set and in this block's pending updates.

    The caller checked the change (check_add / check_remove / check_set_power) against this state.
    """
    validators = [v for v in load_validators(state) if v["pub_key"] != pub_key]
    if power > 0:
        validators.append({"pub_key": pub_key, "power": power, "organization": organization,
                           "effective_height": height + UPDATE_DELAY})
    _store(state, validators)
    pending = load_record(state, PENDING_KEY) or {}
    pending[pub_key] = power
    store_record(state, PENDING_KEY, pending)


def take_updates(state: Writer) -> list[ValidatorUpdate]:
    """This block's validator updates, sorted by key, and clear them (called once, after every end_block)."""
    pending = load_record(state, PENDING_KEY)
    if pending is None:
        return []
    state.delete(PENDING_KEY)
    return [ValidatorUpdate(pub_key=base64.b64decode(key), power=int(pending[key])) for key in sorted(pending)]


def validator_set_answer(view: Reader) -> dict[str, Any]:
    """The /validators query answer: the set sorted by key, its size and total power."""
    validators = load_validators(view)
    return {"validators": validators, "count": len(validators), "total_power": _total(validators)}
