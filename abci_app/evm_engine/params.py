"""The EVM's chain parameters: its EIP-155 chain id, the per-block gas limit and the policy-call gas budget."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from fedledger.abci_app.context import Reader, Writer
from fedledger.abci_app.errors import ConfigError
from fedledger.abci_app.evm_engine.keys import PARAMS_KEY
from fedledger.abci_app.records import store_record

__all__ = [
    "DEFAULT_BLOCK_GAS_LIMIT",
    "DEFAULT_POLICY_GAS",
    "MAX_BLOCK_GAS_LIMIT",
    "MIN_BLOCK_GAS_LIMIT",
    "EvmParams",
    "ParamsError",
    "default_chain_id",
    "load_params",
    "store_params",
]

# py-evm runs roughly 1-3M gas per second and every validator runs every tx, so a block's EVM
# work is capped well below Ethereum's 30M: a full block costs seconds, not tens of seconds.
DEFAULT_BLOCK_GAS_LIMIT = 10_000_000
MIN_BLOCK_GAS_LIMIT = 1_000_000
MAX_BLOCK_GAS_LIMIT = 1_000_000_000
DEFAULT_POLICY_GAS = 200_000
_MAX_CHAIN_ID = 2**31 - 1  # EIP-155 ids beyond this confuse wallets that hold them in 32-bit signed ints


class ParamsError(ConfigError):
    """EVM parameters in genesis are malformed or out of range."""

    error_code = "EVM_PARAMS"


@dataclass(frozen=True)
class EvmParams:
    """Chain-wide EVM settings, fixed at genesis."""

    chain_id: int
    block_gas_limit: int = DEFAULT_BLOCK_GAS_LIMIT
    policy_gas: int = DEFAULT_POLICY_GAS

    def validate(self) -> EvmParams:
        """Self, if every field is in range; ParamsError naming the first that is not."""
        for name, lo, hi in (("chain_id", 1, _MAX_CHAIN_ID),
                             ("block_gas_limit", MIN_BLOCK_GAS_LIMIT, MAX_BLOCK_GAS_LIMIT),
                             ("policy_gas", 21_000, MIN_BLOCK_GAS_LIMIT)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ParamsError(f"evm {name} must be an integer in [{lo}, {hi}], got {value!r}")
        return self

    @staticmethod
    def from_section(section: Mapping[str, Any], fedledger_chain_id: str) -> EvmParams:
        """Parameters from a genesis section's chain_id, block_gas_limit and policy_gas (defaults for absent ones)."""
        return EvmParams(
            chain_id=section.get("chain_id", default_chain_id(fedledger_chain_id)),
            block_gas_limit=section.get("block_gas_limit", DEFAULT_BLOCK_GAS_LIMIT),
            policy_gas=section.get("policy_gas", DEFAULT_POLICY_GAS),
        ).validate()


def default_chain_id(fedledger_chain_id: str) -> int:
    """The EVM chain id derived from the FedLedger chain id, so two FedLedger chains never share one.

    The first four bytes of sha256("fedledger-evm-chain-id\\n" + chain id), as a big-endian integer
    with the top bit cleared (and 1 in place of 0).
    """
    digest = hashlib.sha256(b"fedledger-evm-chain-id\n" + fedledger_chain_id.encode("utf-8")).digest()
    return (int.from_bytes(digest[:4], "big") & _MAX_CHAIN_ID) or 1


def load_params(view: Reader) -> EvmParams | None:
    """The chain's EVM parameters, or None on a chain whose genesis did not set up the EVM."""
    raw = view.get(PARAMS_KEY)
    if raw is None:
        return None
    data = json.loads(raw)
    return EvmParams(chain_id=int(data["chain_id"]), block_gas_limit=int(data["block_gas_limit"]),
                     policy_gas=int(data["policy_gas"]))


def store_params(state: Writer, params: EvmParams) -> None:
    """Write the parameters (genesis only)."""
    store_record(state, PARAMS_KEY, asdict(params.validate()))
