"""The embedded EVM in the state machine: execution, receipts and logs, gas limits, determinism, restart and replay."""

from __future__ import annotations

import hashlib
from pathlib import Path

from eth_utils import keccak

from fedledger.abci_app.context import BlockContext
from fedledger.abci_app.errors import Code
from fedledger.abci_app.evm_engine.keys import ROOT_KEY
from fedledger.abci_app.state_machine import StateMachine
from fedledger.abci_app.store import CommittedStore
from tests.evm_support import EvmChain, deploy_code, eth_account, evm_genesis, loop_code, query
from tests.support import CHAIN

TOPIC = bytes(range(32))
# Runtime: with calldata, REVERT; without, slot0 += 1 and LOG1(topic=TOPIC, data=new value).
COUNTER = (bytes.fromhex("361560") + bytes([0x0A]) + bytes.fromhex("5760006000fd5b")
           + bytes.fromhex("600054600101806000556000527f") + TOPIC + bytes.fromhex("60206000a100"))


def create_address(sender: bytes, nonce: int) -> bytes:
    import rlp

    return keccak(rlp.encode([sender, nonce]))[12:]


def deploy_counter(chain: EvmChain, account_name: str = "dev", seed: int = 1) -> tuple[object, bytes]:
    account = chain.bound(seed, account_name)
    res = chain.ok(chain.evm_tx(account, 0, data=deploy_code(COUNTER)))
    receipt = chain.receipt(res[0].data)
    address = bytes.fromhex(receipt["contract_address"][2:])
    assert address == create_address(bytes.fromhex(account.address[2:]), 0)
    return account, address


def test_deploy_call_receipts_logs_and_events() -> None:
    chain = EvmChain()
    account, counter = deploy_counter(chain)
    assert query(chain, f"/evm/code/0x{counter.hex()}")["code"] == "0x" + COUNTER.hex()
    results = chain.ok(chain.evm_tx(account, 1, to=counter), chain.evm_tx(account, 2, to=counter))
    for i, res in enumerate(results):
        receipt = chain.receipt(res.data)
        assert receipt["status"] == 1 and receipt["index"] == i and receipt["height"] == chain.height
        assert receipt["to"] == "0x" + counter.hex() and receipt["from"] == account.address.lower()
        assert receipt["logs"] == [{
            "address": "0x" + counter.hex(), "topics": ["0x" + TOPIC.hex()],
            "data": "0x" + (i + 1).to_bytes(32, "big").hex(), "tx_hash": "0x" + res.data.hex(), "tx_index": i,
            "log_index": i, "height": chain.height, "block_hash": receipt["block_hash"]}]
        assert receipt["tx_hash"] == "0x" + res.data.hex()
        types = [e.type for e in res.events]
        assert types == ["evm_tx", "evm_log"]
        log_attrs = dict(res.events[1].attributes)
        assert log_attrs["topic0"] == "0x" + TOPIC.hex() and log_attrs["index"] == str(i)
    # The second tx's cumulative gas includes the first's.
    first, second = (chain.receipt(r.data) for r in results)
    assert second["cumulative_gas_used"] == first["gas_used"] + second["gas_used"]
    assert query(chain, f"/evm/storage/0x{counter.hex()}/0x0")["value"] == "0x" + (2).to_bytes(32, "big").hex()
    assert query(chain, f"/evm/account/{account.address}")["nonce"] == 3
    block = query(chain, f"/evm/block/{chain.height}")
    assert block["txs"] == ["0x" + r.data.hex() for r in results] and block["gas_used"] == second["cumulative_gas_used"]
    logs = query(chain, f"/evm/logs/1/{chain.height}")["logs"]
    assert [log["data"] for log in logs if log["address"] == "0x" + counter.hex()] == [
        "0x" + (1).to_bytes(32, "big").hex(), "0x" + (2).to_bytes(32, "big").hex()]


def test_the_tx_hash_is_ethereums() -> None:
    chain = EvmChain()
    account = chain.bound(1, "h")
    envelope = chain.evm_tx(account, 0, data=deploy_code(COUNTER))
    res = chain.ok(envelope)
    raw = envelope[len(b"fedledger-evm-v1\n"):]
    assert res[0].data == keccak(raw)


def test_a_reverting_tx_is_included_and_uses_its_nonce() -> None:
    chain = EvmChain()
    account, counter = deploy_counter(chain)
    res = chain.ok(chain.evm_tx(account, 1, to=counter, data=b"\x01"))
    receipt = chain.receipt(res[0].data)
    assert receipt["status"] == 0 and receipt["logs"] == [] and res[0].log == "reverted: no reason given"
    assert query(chain, f"/evm/account/{account.address}")["nonce"] == 2
    assert query(chain, f"/evm/storage/0x{counter.hex()}/0x0")["value"] == "0x" + "00" * 32
    # Out of gas: included, all gas used, nothing changed.
    res = chain.ok(chain.evm_tx(account, 2, to=counter, gas=30_000))
    receipt = chain.receipt(res[0].data)
    assert receipt["status"] == 0 and receipt["gas_used"] == 30_000 and res[0].log == "out of gas"
    assert query(chain, f"/evm/account/{account.address}")["nonce"] == 3


def test_gas_limits_per_tx_and_per_block() -> None:
    chain = EvmChain(app_state=evm_genesis(block_gas_limit=1_000_000))
    account, counter = deploy_counter(chain)
    too_big = chain.evm_tx(account, 1, to=counter, gas=1_000_001)
    res = chain.sm.check_tx(too_big)
    assert res.code == Code.EVM_GAS_LIMIT and "exceeds the block gas limit 1000000" in res.log
    assert not chain.sm.valid_for_proposal(too_big)
    chain.ok(chain.evm_tx(account, 1, data=deploy_code(loop_code())))
    loop = create_address(bytes.fromhex(account.address[2:]), 1)
    # The block counts the gas txs use: a tx that burns 600k leaves room for no second one asking 600k.
    # The second is refused in FinalizeBlock, changes nothing and keeps its nonce for a later block.
    a, b = chain.evm_tx(account, 2, to=loop, gas=600_000), chain.evm_tx(account, 3, to=counter, gas=600_000)
    before = query(chain, "/evm/params")["state_root"]
    results = chain.block(a, b)
    assert [r.code for r in results] == [0, Code.EVM_GAS_LIMIT]
    assert "has 400000 EVM gas left and the tx asks for 600000" in results[1].log
    assert chain.receipt(results[0].data)["gas_used"] == 600_000
    assert query(chain, f"/evm/account/{account.address}")["nonce"] == 3
    assert query(chain, "/evm/params")["state_root"] != before
    assert query(chain, f"/evm/block/{chain.height}")["gas_used"] == 600_000
    assert chain.ok(b)[0].code == 0
    assert query(chain, f"/evm/storage/0x{counter.hex()}/0x0")["value"] == "0x" + (1).to_bytes(32, "big").hex()


def _run(store: CommittedStore, blocks: list[list[bytes]]) -> list[bytes]:
    sm = StateMachine(store, CHAIN)
    sm.init_chain(CHAIN, evm_genesis())
    hashes = []
    for height, txs in enumerate(blocks, start=1):
        ctx = BlockContext(height=height, time_ns=height * 10**9, block_hash=hashlib.sha256(b"%d" % height).digest(),
                           chain_id=CHAIN)
        _, app_hash = sm.finalize_block(ctx, txs)
        sm.commit()
        hashes.append(app_hash)
    return hashes


def _workload() -> list[list[bytes]]:
    """A chain's blocks: admit, bind, deploy, calls (built once on a scratch chain, so the bytes are fixed)."""
    scratch = EvmChain()
    signer_account = eth_account("w")
    from tests.support import Signer

    member = Signer(7)
    blocks = [[], [member.admit("trainer")], [scratch.bind_tx(member, signer_account)]]
    blocks.append([scratch.evm_tx(signer_account, 0, data=deploy_code(COUNTER))])
    counter = create_address(bytes.fromhex(signer_account.address[2:]), 0)
    blocks.append([scratch.evm_tx(signer_account, n, to=counter) for n in (1, 2, 3)])
    blocks.append([scratch.evm_tx(signer_account, 4, to=counter, data=b"x")])
    return blocks


def test_two_replays_give_the_same_state_root_and_app_hash() -> None:
    blocks = _workload()
    one, two = CommittedStore(":memory:"), CommittedStore(":memory:")
    assert _run(one, blocks) == _run(two, blocks)
    root = one.get(ROOT_KEY)
    assert root is not None and len(root) == 32 and root == two.get(ROOT_KEY)
    # The EVM root is folded into the app hash: the same blocks without the last EVM tx end elsewhere.
    other = CommittedStore(":memory:")
    assert _run(other, blocks[:-1] + [[]])[-1] != one.app_hash
    assert other.get(ROOT_KEY) != root


def test_restart_and_replay_reproduce_the_evm_state(tmp_path: Path) -> None:
    blocks = _workload()
    reference = _run(CommittedStore(":memory:"), blocks)
    path = tmp_path / "state.db"
    store = CommittedStore(path)
    _run(store, blocks[:-1])
    # Block 6 is finalized but the process dies before Commit: nothing of it may survive.
    sm = StateMachine(store, CHAIN)
    ctx = BlockContext(height=6, time_ns=6 * 10**9, block_hash=hashlib.sha256(b"6").digest(), chain_id=CHAIN)
    sm.finalize_block(ctx, blocks[5])
    store.close()
    reopened = CommittedStore(path)
    assert reopened.height == 5 and reopened.app_hash == reference[4]
    sm = StateMachine(reopened, CHAIN)
    _, app_hash = sm.finalize_block(ctx, blocks[5])  # CometBFT replays the block
    sm.commit()
    assert app_hash == reference[5]
    account = eth_account("w").address
    assert sm.query(f"/evm/account/{account}", b"", False).code == 0
    reopened.close()


# Runtime that calls itself with all its gas until the call fails (depth 1024 or gas).
RECURSE = bytes.fromhex("60006000600060006000305af100")


def test_deep_call_recursion_runs_and_leaves_the_recursion_limit_alone() -> None:
    import sys

    limit = sys.getrecursionlimit()
    assert limit < 12 * 1024  # importing py-evm (and py_ecc) did not leave it raised
    chain = EvmChain()
    account = chain.bound(1, "deep")
    chain.ok(chain.evm_tx(account, 0, data=deploy_code(RECURSE)))
    target = create_address(bytes.fromhex(account.address[2:]), 0)
    res = chain.ok(chain.evm_tx(account, 1, to=target, gas=10_000_000))
    receipt = chain.receipt(res[0].data)
    # ~650 nested calls before the 63/64 rule leaves too little gas: far more Python frames than the default.
    assert receipt["status"] == 1 and receipt["gas_used"] > 60_000
    assert sys.getrecursionlimit() == limit
    # Deeply nested JSON in a tx is refused, not a crash of the process.
    bad = b"[" * 16_000
    assert chain.sm.check_tx(bad).code == Code.ENCODING


def test_genesis_parameters_and_contracts_are_validated() -> None:
    import pytest

    from fedledger.abci_app.evm_engine.params import ParamsError, default_chain_id
    from fedledger.abci_app.modules.evm.genesis import deployed_address

    # The default chain id is derived from the FedLedger chain id: fixed, 31-bit, distinct per chain.
    assert default_chain_id(CHAIN) == default_chain_id(CHAIN)
    assert default_chain_id(CHAIN) != default_chain_id(CHAIN + "x")
    assert 0 < default_chain_id(CHAIN) < 2**31
    chain = EvmChain(app_state=evm_genesis(chain_id=4242, block_gas_limit=2_000_000, policy_gas=50_000))
    assert query(chain, "/evm/params")["chain_id"] == 4242
    assert query(chain, "/evm/policy/admission")["contract"] == "0x" + deployed_address(0).hex()
    for section, needle in (({"chain_id": 0}, "chain_id must be an integer"),
                            ({"block_gas_limit": 10}, "block_gas_limit must be"),
                            ({"gas": 1}, "unknown fields ['gas']"),
                            ({"contracts": [{"name": "X", "init_code": "0xzz"}]}, "init_code must be"),
                            ({"contracts": [{"name": "X", "init_code": "0x00", "default_policy": "vote"}]},
                             "default_policy must be one of")):
        sm = StateMachine(CommittedStore(":memory:"), CHAIN)
        with pytest.raises(ParamsError, match=needle.replace("[", r"\[").replace("]", r"\]")):
            sm.init_chain(CHAIN, evm_genesis(policies=False, **section))
    # Init code that reverts halts genesis loudly.
    sm = StateMachine(CommittedStore(":memory:"), CHAIN)
    with pytest.raises(RuntimeError, match="failed to deploy"):
        sm.init_chain(CHAIN, evm_genesis(policies=False, contracts=[{"name": "Bad", "init_code": "0x60006000fd"}]))


def test_prepare_proposal_packs_evm_txs_within_the_block_gas_limit() -> None:
    from fedledger.abci_app.app import FedLedgerApp
    from fedledger.abci_app.proto import types as pb
    from tests.support import Signer

    chain = EvmChain(app_state=evm_genesis(block_gas_limit=1_000_000))
    account = chain.bound(1, "p")
    evm = [chain.evm_tx(account, n, gas=400_000, data=b"") for n in range(3)]
    small = chain.evm_tx(account, 3, gas=30_000, data=b"")
    other = Signer(9).admit("trainer")
    app = FedLedgerApp(chain.sm)
    chosen = list(app.prepare_proposal(pb.RequestPrepareProposal(txs=[*evm, other, small], max_tx_bytes=10**6)).txs)
    # 2 × 400k fit in 1M; the third does not, and no later EVM tx is proposed (it would skip a nonce).
    assert chosen == [evm[0], evm[1], other]
    results = chain.block(*chosen)
    assert [r.code for r in results] == [0, 0, 0]
    chosen = list(app.prepare_proposal(pb.RequestPrepareProposal(txs=[evm[2], small], max_tx_bytes=10**6)).txs)
    assert chosen == [evm[2], small]
