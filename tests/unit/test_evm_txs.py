"""EVM txs and address bindings refused with clear codes: bad RLP, wrong chain, unbound senders, gas, nonces."""

from __future__ import annotations

import hashlib

import pytest
import rlp
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import to_checksum_address

from fedledger.abci_app.context import BlockContext
from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.abci_app.errors import Code
from fedledger.abci_app.evm_engine.binding import binding_message
from fedledger.abci_app.evm_engine.ethtx import EVM_ENVELOPE_PREFIX, wrap
from fedledger.abci_app.store import CommittedStore
from tests.evm_support import EvmChain, deploy_code, eth_account, query
from tests.support import CHAIN, Signer


def signed(account: object, chain_id: int | None, **fields: object) -> bytes:
    tx: dict[str, object] = {"nonce": 0, "gas": 100_000, "value": 0, "data": b"",
                             "to": to_checksum_address("0x" + "11" * 20), **fields}
    if chain_id is not None:
        tx["chainId"] = chain_id
    return bytes(Account.sign_transaction(tx, account.key).raw_transaction)  # type: ignore[attr-defined]


@pytest.fixture
def chain() -> EvmChain:
    return EvmChain()


def check(chain: EvmChain, envelope: bytes) -> tuple[int, str]:
    res = chain.sm.check_tx(envelope)
    return res.code, res.log


def test_malformed_rlp_is_refused(chain: EvmChain) -> None:
    account = chain.bound(1, "a")
    good = signed(account, chain.chain_id, type=2, maxFeePerGas=0, maxPriorityFeePerGas=0)
    cases = {
        "empty": b"",
        "garbage": b"\x02\xc0",
        "list of wrong length": rlp.encode([1, 2, 3]),
        "unknown type byte": b"\x07" + good[1:],
        "truncated": good[:-5],
        "trailing byte": good + b"\x00",
    }
    for name, raw in cases.items():
        code, log = check(chain, wrap(raw))
        assert code == Code.EVM_MALFORMED, (name, code, log)
        assert not chain.sm.valid_for_proposal(wrap(raw)), name
    assert "malformed RLP" in check(chain, wrap(cases["garbage"]))[1]
    assert "superfluous" in check(chain, wrap(cases["trailing byte"]))[1]
    for type_byte, what in ((3, "blob"), (4, "set-code")):
        code, log = check(chain, wrap(bytes([type_byte]) + good[1:]))
        assert code == Code.EVM_MALFORMED and what in log and "not supported" in log


def test_wrong_chain_id_and_unprotected_legacy_txs_are_refused(chain: EvmChain) -> None:
    account = chain.bound(1, "a")
    code, log = check(chain, wrap(signed(account, chain.chain_id + 1, type=2, maxFeePerGas=0,
                                         maxPriorityFeePerGas=0)))
    assert code == Code.EVM_WRONG_CHAIN and f"chain id {chain.chain_id + 1}" in log and str(chain.chain_id) in log
    code, log = check(chain, wrap(signed(account, None, gasPrice=0)))
    assert code == Code.EVM_WRONG_CHAIN and "without EIP-155 replay protection" in log
    # A legacy tx with EIP-155 and an EIP-2930 tx for this chain are fine.
    assert check(chain, wrap(signed(account, chain.chain_id, gasPrice=0))) == (0, "")
    assert check(chain, wrap(signed(account, chain.chain_id, type=1, gasPrice=0, accessList=[], nonce=1))) == (0, "")


def test_unbound_senders_are_refused(chain: EvmChain) -> None:
    stranger = eth_account("stranger")
    code, log = check(chain, chain.evm_tx(stranger, 0, data=deploy_code(b"\x00")))
    assert code == Code.EVM_UNBOUND_SENDER and "is not bound to an enrolled member" in log
    # A bound sender whose member's credential is revoked loses the right too.
    account = chain.bound(1, "a")
    envelope = chain.evm_tx(account, 0, data=deploy_code(b"\x00"))
    assert check(chain, envelope)[0] == 0
    member = query(chain, f"/member/{did_from_private_key(Signer(1).key)}")
    chain.ok(chain.gov.tx("revoke_credential", {"organization": member["organization"],
                                              "credential_id": member["credential_id"]}))
    assert check(chain, envelope)[0] == Code.EVM_UNBOUND_SENDER
    assert chain.block(envelope)[0].code == Code.EVM_UNBOUND_SENDER


def test_gas_and_fee_checks(chain: EvmChain) -> None:
    account = chain.bound(1, "a")
    code, log = check(chain, chain.evm_tx(account, 0, gas=10_000_001, data=b""))
    assert code == Code.EVM_GAS_LIMIT and "exceeds the block gas limit 10000000" in log
    code, log = check(chain, chain.evm_tx(account, 0, gas=20_000, to=b"\x11" * 20))
    assert code == Code.EVM_INVALID and "below the tx's intrinsic gas 21000" in log
    code, log = check(chain, chain.evm_tx(account, 0, to=b"\x11" * 20, maxFeePerGas=1))
    assert code == Code.EVM_INVALID and "fees on this chain are 0" in log


def test_nonces_replay_gap_and_pending(chain: EvmChain) -> None:
    account = chain.bound(1, "a")
    first, second = (chain.evm_tx(account, n, data=deploy_code(b"\x00")) for n in (0, 1))
    code, log = check(chain, second)
    assert code == Code.NONCE_GAP and "next nonce is 0" in log
    assert check(chain, first) == (0, "")
    assert check(chain, second) == (0, "")  # follows the pending one
    assert check(chain, first)[0] == Code.NONCE_REPLAY
    chain.ok(first, second)
    code, log = check(chain, first)
    assert code == Code.NONCE_REPLAY and "already used" in log
    # In a block, a wrong nonce is refused without a trace.
    results = chain.block(chain.evm_tx(account, 5, data=b""))
    assert results[0].code == Code.NONCE_GAP


def test_refused_txs_change_nothing() -> None:
    """A block of refused EVM txs leaves the same app hash as an empty block."""
    one, two = EvmChain(CommittedStore(":memory:")), EvmChain(CommittedStore(":memory:"))
    for c in (one, two):
        c.bound(1, "a")
    account, stranger = eth_account("a"), eth_account("stranger")
    bad = [
        wrap(b"\x02\xc0"),
        one.evm_tx(account, 0, chain_id=one.chain_id + 1),
        one.evm_tx(stranger, 0, data=b""),
        one.evm_tx(account, 3, data=b""),
        one.evm_tx(account, 0, gas=20_000, to=b"\x11" * 20),
        EVM_ENVELOPE_PREFIX + b"",
    ]
    results = one.block(*bad)
    assert [r.code for r in results] == [Code.EVM_MALFORMED, Code.EVM_WRONG_CHAIN, Code.EVM_UNBOUND_SENDER,
                                         Code.NONCE_GAP, Code.EVM_INVALID, Code.EVM_MALFORMED]
    two.block()
    assert one.store.app_hash == two.store.app_hash


def test_prepare_and_process_proposal_drop_undecodable_evm_txs(chain: EvmChain) -> None:
    account = chain.bound(1, "a")
    assert chain.sm.valid_for_proposal(chain.evm_tx(account, 0, data=b""))
    assert not chain.sm.valid_for_proposal(wrap(b"\x01"))


# ----- bindings -----
def test_binding_needs_both_keys_and_names_the_did(chain: EvmChain) -> None:
    alice, bob = chain.member(1), chain.member(2)
    account = eth_account("a")
    other = eth_account("other")
    # The binding of `account` signed by another Ethereum key.
    message = binding_message(CHAIN, did_from_private_key(alice.key), account.address)
    forged = Account.sign_message(encode_defunct(primitive=message), other.key).signature
    res = chain.block(alice.tx("bind_evm_address", {"address": account.address.lower(),
                                                    "signature": "0x" + bytes(forged).hex()}))[0]
    assert res.code == Code.EVM_BINDING and f"signed by {other.address.lower()}" in res.log
    # A binding signed for bob's DID cannot be used by alice.
    replay = chain.bind_tx(alice, account, did=did_from_private_key(bob.key))
    res = chain.block(replay)[0]
    assert res.code == Code.EVM_BINDING
    # Not a member: refused before anything else.
    outsider = Signer(99)
    res = chain.block(chain.bind_tx(outsider, account))[0]
    assert res.code == Code.UNAUTHORIZED
    # The real thing works, and the address then acts for alice.
    chain.ok(chain.bind_tx(alice, account))
    assert query(chain, f"/evm/binding/{account.address}")["did"] == did_from_private_key(alice.key)
    # An address bound to alice cannot also be bound to bob.
    res = chain.block(chain.bind_tx(bob, account))[0]
    assert res.code == Code.EVM_BINDING and "already bound" in res.log


def test_rebinding_replaces_the_old_address(chain: EvmChain) -> None:
    alice = chain.member(1)
    old, new = eth_account("old"), eth_account("new")
    chain.ok(chain.bind_tx(alice, old))
    chain.ok(chain.bind_tx(alice, new))
    assert chain.sm.query(f"/evm/binding/{old.address}", b"", False).code == Code.QUERY_NOT_FOUND
    assert check(chain, chain.evm_tx(old, 0, data=b""))[0] == Code.EVM_UNBOUND_SENDER
    assert check(chain, chain.evm_tx(new, 0, data=b""))[0] == 0


def test_malformed_binding_bodies(chain: EvmChain) -> None:
    alice = chain.member(1)
    for body, needle in (({"address": "0x12", "signature": "0x" + "00" * 65}, "address must be"),
                         ({"address": "0x" + "11" * 20, "signature": "0x00"}, "signature must be"),
                         ({"address": "0x" + "11" * 20}, "missing ['signature']")):
        res = chain.sm.check_tx(alice.tx("bind_evm_address", body))
        assert res.code == Code.INVALID_BODY and needle in res.log
        alice.nonce -= 1
    res = chain.sm.check_tx(alice.tx("bind_evm_address", {"address": "0x" + "11" * 20,
                                                            "signature": "0x" + "00" * 64 + "05"}))
    assert res.code == Code.EVM_BINDING and "recovery id" in res.log


def test_blocks_without_evm_params_refuse_evm_txs() -> None:
    from fedledger.abci_app.state_machine import StateMachine
    from tests.support import genesis

    store = CommittedStore(":memory:")
    sm = StateMachine(store, CHAIN)
    sm.init_chain(CHAIN, genesis())
    ctx = BlockContext(height=1, time_ns=10**9, block_hash=hashlib.sha256(b"1").digest(), chain_id=CHAIN)
    sm.finalize_block(ctx, [])
    sm.commit()
    # genesis() has no evm section, yet the module's defaults set the EVM up: txs decode against its chain id.
    assert query_ok(sm, "/evm/params")


def query_ok(sm: object, path: str) -> bool:
    return sm.query(path, b"", False).code == 0  # type: ignore[attr-defined]
