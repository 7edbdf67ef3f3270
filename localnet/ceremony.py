"""`fedledger genesis assemble|hash`: one consortium genesis from the organizations' public cards.

Assembly is deterministic: the cards are ordered by organization id, the genesis time is an
option (a fixed default), and the JSON is written with sorted keys. So every organization can
assemble the same cards itself and compare the sha256 it gets with the one it was sent, and
`fedledger node start --genesis-hash` refuses a genesis whose hash differs. Nobody needs anyone
else's private key: the genesis holds public keys, DIDs and policy only.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fedledger.abci_app.did.credentials import DEFAULT_ORG_ROLES, ROLES
from fedledger.localnet.card import HostCard
from fedledger.localnet.config import DEFAULT_GENESIS_TIME, build_genesis, validate_params
from fedledger.localnet.errors import GenesisAssemblyError, GenesisHashMismatchError, LocalnetError

__all__ = [
    "DEFAULT_CONSORTIUM_CHAIN_ID",
    "DEFAULT_ENROLLMENT_CAP",
    "assemble_genesis",
    "check_genesis_hash",
    "cometbft_template",
    "consortium_app_state",
    "genesis_hash",
    "genesis_text",
]

DEFAULT_CONSORTIUM_CHAIN_ID = "fedledger-consortium"
DEFAULT_ENROLLMENT_CAP = 1000
_MIN_VALIDATORS = 1


def genesis_text(genesis: Mapping[str, Any]) -> str:
    """The one byte form of a genesis the ceremony hashes: sorted keys, two-space indent, final newline."""
    return json.dumps(genesis, indent=2, sort_keys=True) + "\n"


def genesis_hash(data: bytes) -> str:
    """The hex sha256 of a genesis file's bytes, as the organizations compare it."""
    return hashlib.sha256(data).hexdigest()


def check_genesis_hash(data: bytes, expected: str, source: str) -> str:
    """Return the hash of ``data``; GenesisHashMismatchError unless it equals ``expected`` (hex, any case)."""
    got = genesis_hash(data)
    want = expected.strip().lower()
    if len(want) != 64 or any(c not in "0123456789abcdef" for c in want):
        raise GenesisAssemblyError(f"--genesis-hash {expected!r} is not a hex sha256 (64 hex digits)")
    if got != want:
        raise GenesisHashMismatchError(
            f"{source} has sha256 {got}, not the agreed {want}: do not start on it; fetch the genesis again "
            "or re-run `fedledger genesis assemble` on the organizations' cards and compare")
    return got


def cometbft_template(cometbft_bin: Path) -> dict[str, Any]:
    """CometBFT's own default genesis (for its consensus parameters), made by ``cometbft init`` in a temp dir."""
    from fedledger.localnet.hostinit import _run

    with tempfile.TemporaryDirectory(prefix="fedledger-genesis-") as tmp:
        _run([str(cometbft_bin), "init", "--home", tmp])
        try:
            data = json.loads((Path(tmp) / "config" / "genesis.json").read_text())
        except (OSError, ValueError) as exc:
            raise LocalnetError(f"cometbft init wrote no readable genesis: {exc}") from exc
    if not isinstance(data, dict) or "consensus_params" not in data:
        raise LocalnetError("cometbft init's genesis has no consensus_params")
    return data


def _check_unique(cards: Sequence[HostCard]) -> None:
    for what, field in (("organization", "org"), ("validator key", "validator_pub_key"),
                        ("node id", "node_id"), ("issuer DID", "issuer_did")):
        seen: dict[str, str] = {}
        for card in cards:
            value = str(getattr(card, field))
            if value in seen:
                raise GenesisAssemblyError(
                    f"{what} {value} appears in two cards (organizations {seen[value]!r} and {card.org!r}): "
                    "every organization needs its own keys; ask the duplicate's owner to run `node init` again")
            seen[value] = card.org


def consortium_app_state(cards: Sequence[HostCard], enrollment_cap: int,
                         roles: Iterable[str] = DEFAULT_ORG_ROLES) -> dict[str, Any]:
    """The genesis app_state: one organization per card (issuer and admin = its DID), its cap and roles,
    and the default policy contracts on the EVM."""
    from fedledger.localnet.evm_genesis import default_evm_section

    role_list = sorted(set(roles))
    bad = sorted(set(role_list) - set(ROLES))
    if bad or not role_list:
        raise GenesisAssemblyError(f"roles {bad or '(none)'} are not roles of the chain: choose from {list(ROLES)}")
    if isinstance(enrollment_cap, bool) or not isinstance(enrollment_cap, int) or not 1 <= enrollment_cap <= 1_000_000:
        raise GenesisAssemblyError(f"enrollment cap must be an integer in 1..1000000, got {enrollment_cap!r}")
    orgs = [{"id": c.org, "name": c.name, "issuers": [c.issuer_did], "admins": [c.issuer_did],
             "enrollment_cap": enrollment_cap, "roles": role_list} for c in cards]
    return {"identity": {"organizations": orgs}, "evm": default_evm_section()}


def assemble_genesis(cards: Sequence[HostCard], template: Mapping[str, Any], *,
                     chain_id: str = DEFAULT_CONSORTIUM_CHAIN_ID, genesis_time: str = DEFAULT_GENESIS_TIME,
                     enrollment_cap: int = DEFAULT_ENROLLMENT_CAP,
                     roles: Iterable[str] = DEFAULT_ORG_ROLES) -> dict[str, Any]:
    """The consortium genesis of ``cards`` (already checked by parse_card); the order of ``cards`` does not matter."""
    if len(cards) < _MIN_VALIDATORS:
        raise GenesisAssemblyError("genesis assemble needs at least one card")
    try:
        validate_params(len(cards), chain_id, 1024, 300, "fedledger", "embedded")
    except LocalnetError as exc:
        raise GenesisAssemblyError(str(exc)) from exc
    ordered = sorted(cards, key=lambda c: c.org)
    _check_unique(ordered)
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z", genesis_time):
        raise GenesisAssemblyError(f"genesis time {genesis_time!r} must look like 2025-01-01T00:00:00Z")
    app_state = consortium_app_state(ordered, enrollment_cap, roles)
    return build_genesis(template, chain_id, genesis_time,
                         [(c.validator_address, c.validator_pub_key, c.org) for c in ordered], app_state)
