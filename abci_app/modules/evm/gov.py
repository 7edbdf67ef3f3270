"""The governance action `set_policy_contract`: point a task (or the whole chain) at a policy contract.

    {"type": "set_policy_contract", "kind": "admission", "task_id": "digits", "address": "0x…"}

Without task_id it changes the chain-wide default; with task_id and address null it removes the
task's own pointer (the task follows the default again). The contract must already be deployed
(e.g. with web3 through a node's Ethereum JSON-RPC), so a vote can never point at nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eth_typing import Address

from fedledger.abci_app.context import BlockContext, Event, Reader, Writer
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.evm_engine import keys
from fedledger.abci_app.evm_engine.binding import normalize_address
from fedledger.abci_app.evm_engine.params import load_params
from fedledger.abci_app.evm_engine.policy import KINDS
from fedledger.abci_app.evm_engine.session import EvmSession
from fedledger.abci_app.evm_engine.vm import EvmBlock
from fedledger.abci_app.modules.federation.keeper import task_exists
from fedledger.abci_app.modules.fields import ID_RE, require_fields

__all__ = ["check_set_policy", "execute_set_policy", "parse_set_policy"]


def parse_set_policy(body: Mapping[str, Any]) -> dict[str, Any]:
    """Stateless validation; the normalized body {kind, task_id, address}."""
    require_fields(body, {"kind", "address"}, {"task_id"}, what="action")
    kind, address, task = body["kind"], body["address"], body.get("task_id")
    if kind not in KINDS:
        raise TxError(Code.INVALID_BODY, f"kind must be one of {list(KINDS)}")
    if task is not None and (not isinstance(task, str) or not ID_RE.match(task)):
        raise TxError(Code.INVALID_BODY, "task_id must be a task id")
    if address is None:
        if task is None:
            raise TxError(Code.INVALID_BODY, "address may be null only with a task_id (to remove the task's pointer)")
    else:
        try:
            address = normalize_address(address)
        except ValueError as exc:
            raise TxError(Code.INVALID_BODY, f"address: {exc}") from exc
    return {"kind": kind, "task_id": task, "address": address}


def check_set_policy(view: Reader, body: Mapping[str, Any]) -> None:
    """The task exists (if named) and the address holds code."""
    params = load_params(view)
    if params is None:
        raise TxError(Code.ACTION_INVALID, "this chain's genesis did not set up the EVM")
    if body["task_id"] is not None and not task_exists(view, body["task_id"]):
        raise TxError(Code.NOT_FOUND, f"task {body['task_id']!r} does not exist")
    if body["address"] is not None:
        block = EvmBlock(height=0, time_s=0, block_hash=b"", gas_limit=params.block_gas_limit,
                         chain_id=params.chain_id)
        code = EvmSession(view, block).state.get_code(Address(bytes.fromhex(body["address"][2:])))
        if not code:
            raise TxError(Code.ACTION_INVALID, f"no contract is deployed at {body['address']}; deploy the policy "
                                               "first, then propose it")


def execute_set_policy(state: Writer, body: Mapping[str, Any], ctx: BlockContext) -> list[Event]:
    """Write (or remove) the pointer."""
    key = keys.policy_key(body["kind"], body["task_id"])
    if body["address"] is None:
        state.delete(key)
    else:
        state.set(key, body["address"].encode("ascii"))
    return [Event(type="evm", attributes=(
        ("action", "set_policy_contract"), ("signer", "governance"), ("kind", body["kind"]),
        ("task", body["task_id"] or ""), ("address", body["address"] or "")))]
