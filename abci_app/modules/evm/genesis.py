"""The EVM's genesis section: chain id, gas limits, and the contracts deployed at genesis (the default policies).

    "evm": {"chain_id": 4242, "block_gas_limit": 10000000, "policy_gas": 200000,
            "contracts": [{"name": "AdmissionPolicy", "init_code": "0x…", "default_policy": "admission"}, …]}

Every field is optional. Contracts are deployed in list order by GENESIS_DEPLOYER (so their
addresses are the CREATE addresses of its nonces 0, 1, …); `default_policy` makes one the
chain-wide default policy of that kind. A deployment that fails halts genesis.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fedledger.abci_app.context import Writer
from fedledger.abci_app.evm_engine import keys
from fedledger.abci_app.evm_engine.ledger import hex0x
from fedledger.abci_app.evm_engine.params import MAX_BLOCK_GAS_LIMIT, EvmParams, ParamsError, store_params
from fedledger.abci_app.evm_engine.policy import KINDS
from fedledger.abci_app.evm_engine.session import EvmSession
from fedledger.abci_app.evm_engine.vm import EvmBlock

__all__ = ["GENESIS_DEPLOYER", "deployed_address", "init_genesis"]

GENESIS_DEPLOYER = bytes.fromhex("000000000000000000000000000000000000fed0")
_FIELDS = {"chain_id", "block_gas_limit", "policy_gas", "contracts"}
_CONTRACT_FIELDS = {"name", "init_code", "default_policy"}
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_HEX_RE = re.compile(r"^0x([0-9a-fA-F]{2})+$")
_CHAIN_ID_KEY = b"meta/chain_id"


def deployed_address(index: int) -> bytes:
    """The address of the genesis section's contract number `index` (from 0)."""
    from eth._utils.address import generate_contract_address
    from eth_typing import Address

    return bytes(generate_contract_address(Address(GENESIS_DEPLOYER), index))


def _contracts(section: Mapping[str, Any]) -> list[dict[str, Any]]:
    items = section.get("contracts", [])
    if not isinstance(items, list):
        raise ParamsError("evm contracts must be a list of {name, init_code, default_policy?}")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping) or not {"name", "init_code"} <= set(item) <= _CONTRACT_FIELDS:
            raise ParamsError(f"evm contract {i} must have name and init_code, and optionally default_policy")
        if not isinstance(item["name"], str) or not _NAME_RE.match(item["name"]):
            raise ParamsError(f"evm contract {i} name must be an identifier")
        if not isinstance(item["init_code"], str) or not _HEX_RE.match(item["init_code"]):
            raise ParamsError(f"evm contract {item['name']} init_code must be 0x-prefixed hex bytes")
        kind = item.get("default_policy")
        if kind is not None and kind not in KINDS:
            raise ParamsError(f"evm contract {item['name']} default_policy must be one of {list(KINDS)}")
        out.append(dict(item))
    kinds = [c["default_policy"] for c in out if c.get("default_policy")]
    if len(kinds) != len(set(kinds)):
        raise ParamsError("two genesis contracts are the default policy of the same kind")
    return out


def init_genesis(state: Writer, section: Mapping[str, Any]) -> None:
    """Store the EVM parameters, deploy the genesis contracts and set the default policy pointers."""
    unknown = sorted(set(section) - _FIELDS)
    if unknown:
        raise ParamsError(f"evm genesis has unknown fields {unknown}; known: {sorted(_FIELDS)}")
    raw_chain = state.get(_CHAIN_ID_KEY)
    params = EvmParams.from_section(section, raw_chain.decode("ascii") if raw_chain is not None else "")
    contracts = _contracts(section)
    store_params(state, params)
    # Height 0 and time 0: genesis has no block; constructors see NUMBER = TIMESTAMP = 0.
    block = EvmBlock(height=0, time_s=0, block_hash=b"", gas_limit=params.block_gas_limit, chain_id=params.chain_id)
    session = EvmSession(state, block)
    for index, contract in enumerate(contracts):
        outcome = session.create(GENESIS_DEPLOYER, bytes.fromhex(contract["init_code"][2:]), MAX_BLOCK_GAS_LIMIT)
        if not outcome.success or outcome.contract_address is None:
            raise RuntimeError(f"genesis contract {contract['name']} failed to deploy: {outcome.error}")
        if outcome.contract_address != deployed_address(index):
            raise RuntimeError(f"genesis contract {contract['name']} landed at an unexpected address")
        if contract.get("default_policy"):
            state.set(keys.policy_key(contract["default_policy"], None), hex0x(outcome.contract_address).encode())
    session.commit(state)


