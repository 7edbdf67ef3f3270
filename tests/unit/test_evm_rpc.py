"""The Ethereum JSON-RPC server driven with web3.py against an in-process chain: deploy, call, logs, errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from eth_account import Account
from web3 import Web3
from web3.exceptions import ContractLogicError

from fedledger.localnet.evm_genesis import load_artifact
from fedledger.node.ethrpc.api import EthApi
from fedledger.node.ethrpc.server import EthRpcServer
from tests.evm_support import EvmChain, MachineBackend, const_code, deploy_code, eth_account

ERROR = bytes.fromhex("08c379a0")


@pytest.fixture
def net() -> Iterator[tuple[EvmChain, MachineBackend, Web3, EthRpcServer]]:
    chain = EvmChain()
    backend = MachineBackend(chain)
    server = EthRpcServer(EthApi(backend))
    server.start()
    try:
        yield chain, backend, Web3(Web3.HTTPProvider(server.url)), server
    finally:
        server.stop()


def send(w3: Web3, backend: MachineBackend, account: Any, tx: dict[str, Any]) -> Any:
    """Fill in nonce, chain id and zero fees, sign with eth-account, send raw, mine, return the receipt."""
    tx = {"nonce": w3.eth.get_transaction_count(account.address), "chainId": w3.eth.chain_id,
          "maxFeePerGas": 0, "maxPriorityFeePerGas": 0, **tx}
    if "gas" not in tx:
        tx["gas"] = w3.eth.estimate_gas({k: v for k, v in tx.items() if k in ("from", "to", "data", "value")}
                                        | {"from": account.address})
    tx_hash = w3.eth.send_raw_transaction(Account.sign_transaction(tx, account.key).raw_transaction)
    backend.mine()
    return w3.eth.get_transaction_receipt(tx_hash)


def test_web3_deploys_calls_and_reads_logs(net: tuple[EvmChain, MachineBackend, Web3, EthRpcServer]) -> None:
    chain, backend, w3, _ = net
    assert w3.is_connected()
    assert w3.eth.chain_id == chain.chain_id and w3.net.version == str(chain.chain_id)
    assert w3.eth.block_number == chain.height
    account = chain.bound(1, "dev")
    artifact = load_artifact("RoleAdmissionPolicy")
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    deploy = factory.constructor(["evaluator", "aggregator"]).build_transaction(
        {"from": account.address, "nonce": 0, "gas": 2_000_000, "maxFeePerGas": 0, "maxPriorityFeePerGas": 0,
         "chainId": chain.chain_id})
    receipt = send(w3, backend, account, {k: deploy[k] for k in ("data", "gas")})
    assert receipt["status"] == 1 and receipt["contractAddress"] is not None
    address = receipt["contractAddress"]
    assert w3.eth.get_code(address) == bytes.fromhex(artifact["deployedBytecode"][2:])
    policy = w3.eth.contract(address=address, abi=artifact["abi"])
    assert policy.functions.admits("evaluator").call() is True
    assert policy.functions.admits("trainer").call() is False
    # A state-changing call through a tx; its event comes back in the receipt and through eth_getLogs.
    check = policy.functions.checkAdmission("did:key:x", "did:key:i", "org", "trainer", [], 0, 1)
    data = check._encode_transaction_data()
    receipt = send(w3, backend, account, {"to": address, "data": data})
    assert receipt["status"] == 1 and receipt["blockNumber"] == chain.height
    (event,) = policy.events.AdmissionChecked().process_receipt(receipt)
    assert event["args"]["allow"] is False and event["args"]["reason"] == "role trainer is not admitted by this policy"
    logs = policy.events.AdmissionChecked().get_logs(from_block=1)
    assert [log["args"]["role"] for log in logs] == ["trainer"]
    assert logs[0]["transactionHash"] == receipt["transactionHash"]
    assert w3.eth.get_transaction_count(account.address) == 2
    assert w3.eth.get_balance(account.address) == 0
    assert w3.eth.get_block("latest")["number"] == chain.height


def test_policy_decisions_are_readable_with_get_logs(net: tuple[EvmChain, MachineBackend, Web3, EthRpcServer]
                                                     ) -> None:
    from fedledger.abci_app.evm_engine.policy import POLICY_LOG_ADDRESS, POLICY_LOG_TOPIC
    from tests.support import Signer

    chain, _, w3, _ = net
    chain.ok(Signer(5).admit("trainer"))
    logs = w3.eth.get_logs({"fromBlock": 1, "toBlock": "latest",
                            "address": Web3.to_checksum_address(POLICY_LOG_ADDRESS),
                            "topics": ["0x" + POLICY_LOG_TOPIC.hex()]})
    assert len(logs) == 1 and logs[0]["blockNumber"] == chain.height
    kind, contract, allow, reason, gas = w3.codec.decode(["string", "address", "bool", "string", "uint256"],
                                                         logs[0]["data"])
    assert (kind, allow, reason) == ("admission", True, "admitted by the default policy") and gas > 0


def test_reverts_and_refused_txs_are_clear_errors(net: tuple[EvmChain, MachineBackend, Web3, EthRpcServer]) -> None:
    from eth_abi.abi import encode

    chain, backend, w3, _ = net
    account = chain.bound(1, "dev")
    receipt = send(w3, backend, account, {"data": deploy_code(const_code(ERROR + encode(["string"], ["no way"]),
                                                                         revert=True)), "gas": 200_000})
    target = receipt["contractAddress"]
    with pytest.raises(ContractLogicError, match="no way"):
        w3.eth.call({"to": target, "data": "0x"})
    with pytest.raises(ContractLogicError):
        w3.eth.estimate_gas({"to": target, "data": "0x", "from": account.address})
    stranger = eth_account("stranger")
    raw = Account.sign_transaction({"nonce": 0, "chainId": chain.chain_id, "gas": 50_000, "maxFeePerGas": 0,
                                    "maxPriorityFeePerGas": 0, "to": target, "value": 0}, stranger.key).raw_transaction
    with pytest.raises(Exception, match="code 62"):
        w3.eth.send_raw_transaction(raw)
    wrong = Account.sign_transaction({"nonce": 1, "chainId": chain.chain_id + 1, "gas": 50_000, "maxFeePerGas": 0,
                                      "maxPriorityFeePerGas": 0, "to": target, "value": 0}, account.key).raw_transaction
    with pytest.raises(Exception, match="code 61"):
        w3.eth.send_raw_transaction(wrong)
    assert backend.pending == []
    assert chain.receipt(receipt["transactionHash"])["status"] == 1


def test_json_rpc_protocol_errors(net: tuple[EvmChain, MachineBackend, Web3, EthRpcServer]) -> None:
    _, _, _, server = net

    def post(body: Any) -> Any:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.post(server.url, content=raw, headers={"Content-Type": "application/json"}).json()

    assert post(b"{nope")["error"]["code"] == -32700
    assert post({"jsonrpc": "2.0", "id": 1, "method": "eth_mine"})["error"]["code"] == -32601
    assert post({"id": 1, "method": "eth_chainId"})["error"]["code"] == -32600
    res = post({"jsonrpc": "2.0", "id": 2, "method": "eth_getBalance", "params": ["0x12", "latest"]})
    assert res["error"] == {"code": -32602, "message": "address must be a 20-byte hex address"}
    res = post({"jsonrpc": "2.0", "id": 3, "method": "eth_getBalance", "params": ["0x" + "11" * 20, "0x0"]})
    assert res["error"]["code"] == -32000 and "only the latest state" in res["error"]["message"]
    batch = post([{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"},
                  {"jsonrpc": "2.0", "id": 2, "method": "eth_getTransactionReceipt", "params": ["0x" + "ab" * 32]}])
    assert [r["id"] for r in batch] == [1, 2] and batch[1]["result"] is None
    assert post({"jsonrpc": "2.0", "id": 4, "method": "eth_sendRawTransaction", "params": ["0x02c0"]})[
        "error"]["message"].startswith("tx refused (code 60): malformed RLP")
