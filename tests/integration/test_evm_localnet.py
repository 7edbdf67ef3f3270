"""The embedded EVM on a real 4-validator localnet, driven with web3.py through each node's Ethereum JSON-RPC.

A bound member deploys a policy contract with web3 + eth-account (through CometBFT's mempool and
consensus), calls it through another node, reads its logs with eth_getLogs; then a governance
vote points a task at it, and the next admission for that task follows the new rule, with no
restart of any process. Every node ends on the same app hash.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.abci_app.errors import Code
from fedledger.abci_app.evm_engine.policy import POLICY_LOG_ADDRESS, POLICY_LOG_TOPIC
from fedledger.localnet import manager
from fedledger.localnet.config import load_spec
from fedledger.localnet.consortium import dev_app_state, dev_issuer_key
from fedledger.localnet.dev import dev_credential
from fedledger.localnet.errors import NotRunningError
from fedledger.localnet.evm_genesis import load_artifact
from fedledger.localnet.ports import find_free_base_port
from fedledger.localnet.supervisor import read_run_state
from fedledger.sdk.errors import TxRejectedError
from fedledger.sdk.keys import Key, KeyStore
from fedledger.sdk.rpc import CometRPC
from fedledger.sdk.submit import Submitter
from tests.support import named_key, payload_ref, use_pinned_cometbft

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

FEDLEDGER = Path(sys.executable).parent / "fedledger"

VOTING_PERIOD = 4
TASK = "evm-task"


@dataclass
class Net:
    """The running net, its RPCs and the keys that act on it."""

    home: Path
    rpc: CometRPC
    chain_id: str
    evm_urls: list[str]
    admin: Key
    _subs: dict[str, Submitter] = field(default_factory=dict)

    def sub(self, key: Key) -> Submitter:
        """One Submitter per key (nonces tracked across the tests)."""
        if key.public_hex not in self._subs:
            self._subs[key.public_hex] = Submitter(self.rpc, key, self.chain_id)
        return self._subs[key.public_hex]

    def get(self, path: str) -> Any:
        """A query that must succeed."""
        res = self.rpc.abci_query(path)
        assert res.code == 0, (path, res.log)
        return json.loads(res.value)

    def w3(self, node: int) -> Web3:
        """web3.py on node `node`'s Ethereum JSON-RPC."""
        return Web3(Web3.HTTPProvider(self.evm_urls[node], request_kwargs={"timeout": 30}))

    def admit(self, name: str, role: str, tasks: list[str] | None = None) -> Key:
        """A new member, admitted with a development credential."""
        key = named_key(f"evm-{name}")
        self.sub(key).send("admit", {"credential": dev_credential(self.home, key, role, tasks=tasks)})
        return key


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    restore_env = use_pinned_cometbft()
    home = tmp_path_factory.mktemp("evm") / "net"
    home.mkdir()
    app_state = dev_app_state(home)  # organization `local` and the default policy contracts
    app_state["governance"] = {"voting_period_blocks": VOTING_PERIOD}
    rpc: CometRPC | None = None
    try:
        manager.up(home, validators=4, base_port=find_free_base_port(40), block_time_ms=300, timeout=90,
                   log=lambda m: None, app_state=app_state)
        spec = load_spec(home)
        rpc = CometRPC(manager.rpc_url(home, 0))
        chain_id = str(rpc.status()["node_info"]["network"])
        yield Net(home=home, rpc=rpc, chain_id=chain_id, evm_urls=[n.evm_rpc_url for n in spec.nodes],
                  admin=Key("local-admin", dev_issuer_key(home)))
    finally:
        if rpc is not None:
            rpc.close()
        restore_env()
        try:
            manager.down(home)
        except NotRunningError:
            pass
        assert manager.is_running(home) is None


def _wait_for_evm_rpc(w3: Web3, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if w3.is_connected():
                return
        except Exception:  # noqa: BLE001 - not listening yet
            pass
        assert time.monotonic() < deadline, "the node's Ethereum JSON-RPC did not come up"
        time.sleep(0.2)


def _send(w3: Web3, account: LocalAccount, tx: dict[str, Any]) -> Any:
    """Sign with eth-account (EIP-1559, chain id, zero fees), send raw, wait for the receipt."""
    full = {"nonce": w3.eth.get_transaction_count(account.address), "chainId": w3.eth.chain_id,
            "maxFeePerGas": 0, "maxPriorityFeePerGas": 0, **tx}
    if "gas" not in full:
        full["gas"] = w3.eth.estimate_gas({"from": account.address, **{k: tx[k] for k in ("to", "data") if k in tx}})
    tx_hash = w3.eth.send_raw_transaction(Account.sign_transaction(full, account.key).raw_transaction)
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.2)


def test_deploy_call_logs_and_upgrade_the_admission_policy_by_vote(net: Net) -> None:
    w3, other = net.w3(1), net.w3(2)
    _wait_for_evm_rpc(w3)
    _wait_for_evm_rpc(other)
    params = net.get("/evm/params")
    assert w3.eth.chain_id == other.eth.chain_id == params["chain_id"]
    pids_before = {(n["index"], n["app_pid"], n["cometbft_pid"]) for n in read_run_state(net.home)["nodes"]}

    # A member binds an Ethereum key (signed by both keys); an unbound key is refused by every node.
    dev = net.admit("dev", "aggregator")
    account: LocalAccount = Account.from_key(bytes(range(1, 33)))
    stranger: LocalAccount = Account.from_key(bytes(range(2, 34)))
    raw = Account.sign_transaction({"nonce": 0, "chainId": params["chain_id"], "gas": 100_000, "maxFeePerGas": 0,
                                    "maxPriorityFeePerGas": 0, "data": b"\x00"}, stranger.key).raw_transaction
    with pytest.raises(Exception, match=f"code {int(Code.EVM_UNBOUND_SENDER)}"):
        w3.eth.send_raw_transaction(raw)
    # The binding goes through the CLI, as a member would do it.
    keys_home = net.home.parent / "keys"
    KeyStore(keys_home).save(dev)
    out = subprocess.run([str(FEDLEDGER), "--home", str(keys_home), "--localnet", str(net.home), "evm", "bind",
                          "--key", dev.name, "--eth-key", "0x" + bytes(account.key).hex()],
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert f"bound {account.address} to {did_from_private_key(dev.private)}" in out.stdout
    net.sub(dev).refresh_nonce()
    assert net.get(f"/evm/binding/{account.address}")["did"] == did_from_private_key(dev.private)

    # Deploy a policy that admits only aggregators and evaluators, with web3 through node 1.
    artifact = load_artifact("RoleAdmissionPolicy")
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    deploy = factory.constructor(["aggregator", "evaluator"]).build_transaction(
        {"from": account.address, "nonce": 0, "gas": 1_500_000, "maxFeePerGas": 0, "maxPriorityFeePerGas": 0,
         "chainId": params["chain_id"]})
    receipt = _send(w3, account, {"data": deploy["data"], "gas": 1_500_000})
    assert receipt["status"] == 1
    address = receipt["contractAddress"]
    # Call it through another node: the deployment went through consensus.
    policy = other.eth.contract(address=address, abi=artifact["abi"])
    assert other.eth.get_code(address) == bytes.fromhex(artifact["deployedBytecode"][2:])
    assert policy.functions.admits("trainer").call() is False
    assert policy.functions.admits("evaluator").call() is True
    # A transaction emits an event, read back with eth_getLogs on a third node.
    call = policy.functions.checkAdmission("did:key:test", "did:key:issuer", "local", "trainer", [], 0, 1)
    receipt = _send(w3, account, {"to": address, "data": call._encode_transaction_data()})
    assert receipt["status"] == 1
    logs = net.w3(3).eth.contract(address=address, abi=artifact["abi"]).events.AdmissionChecked().get_logs(
        from_block=receipt["blockNumber"], to_block=receipt["blockNumber"])
    assert [(log["args"]["role"], log["args"]["allow"]) for log in logs] == [("trainer", False)]

    # A task, then a vote that points its admission at the new contract.
    net.sub(dev).send("create_task", {
        "task_id": TASK, "model_spec": "mlp-digits", "round_size": 1, "min_contributions": 1,
        "deadline_blocks": 1000, "aggregator": dev.public_hex, "initial_model": payload_ref("evm-v0"),
        "privacy": {"epsilon": "10", "delta": "1e-5", "org_epsilon": None}})
    net.admit("before", "trainer", tasks=[TASK])  # the default policy still admits trainers
    out = net.sub(net.admin).send("submit_proposal", {"title": "no more trainers", "action": {
        "type": "set_policy_contract", "kind": "admission", "task_id": TASK, "address": address}})
    pid = int(out.attr("fl", "proposal") or 0)
    net.sub(net.admin).send("vote", {"proposal_id": pid, "option": "yes"})
    deadline = time.monotonic() + 60
    while (proposal := net.get(f"/proposal/{pid}"))["status"] == "voting":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert proposal["status"] == "passed", proposal
    assert net.get(f"/evm/policy/admission/{TASK}") == {"kind": "admission", "task": TASK,
                                                       "contract": address.lower(), "scope": "task"}

    # The next admission follows the new rule, on the running net.
    late = named_key("evm-late")
    with pytest.raises(TxRejectedError) as refused:
        net.sub(late).send("admit", {"credential": dev_credential(net.home, late, "trainer", tasks=[TASK])})
    assert refused.value.code == Code.POLICY_DENIED
    assert "role trainer is not admitted by this policy" in refused.value.log
    net.admit("evaluator", "evaluator", tasks=[TASK])
    net.admit("elsewhere", "trainer")  # no task named: the default policy applies

    # Every decision is a PolicyDecision log, readable with eth_getLogs.
    decisions = w3.eth.get_logs({"fromBlock": 1, "toBlock": "latest",
                                 "address": Web3.to_checksum_address(POLICY_LOG_ADDRESS),
                                 "topics": ["0x" + POLICY_LOG_TOPIC.hex()]})
    decoded = [w3.codec.decode(["string", "address", "bool", "string", "uint256"], log["data"]) for log in decisions]
    assert [(d[0], d[2]) for d in decoded][-2:] == [("admission", True), ("admission", True)]
    assert any(d[1].lower() == address.lower() and d[3] == "role evaluator is admitted" for d in decoded)

    # No process was restarted, and all four validators agree on the state, EVM included.
    assert {(n["index"], n["app_pid"], n["cometbft_pid"]) for n in read_run_state(net.home)["nodes"]} == pids_before
    height = net.rpc.height() - 1
    hashes = set()
    for i in range(4):
        with CometRPC(manager.rpc_url(net.home, i)) as node:
            hashes.add(node.block(height + 1)["block"]["header"]["app_hash"])
    assert len(hashes) == 1
