"""Test support for the embedded EVM: chains with EVM genesis, bound Ethereum keys, signed EVM txs, bytecode."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from fedledger.abci_app.canonical import canonical_bytes
from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.abci_app.evm_engine.binding import binding_message
from fedledger.abci_app.evm_engine.ethtx import wrap
from fedledger.abci_app.store import CommittedStore
from fedledger.localnet.evm_genesis import default_evm_section, load_artifact
from tests.support import CHAIN, ISSUER, ORG, Chain, Signer

__all__ = ["EvmChain", "admin", "artifact_code", "const_code", "deploy_code", "eth_account", "evm_genesis",
           "loop_code", "query"]


def eth_account(name: str) -> LocalAccount:
    """A deterministic Ethereum key."""
    return Account.from_key(hashlib.sha256(b"eth-key:" + name.encode()).digest())


def deploy_code(runtime: bytes) -> bytes:
    """Init code that deploys `runtime` as it is (CODECOPY + RETURN)."""
    n = len(runtime)
    assert n < 0x10000
    prefix_len = 14
    return (bytes([0x61]) + n.to_bytes(2, "big") + bytes([0x60, prefix_len, 0x60, 0x00, 0x39])
            + bytes([0x61]) + n.to_bytes(2, "big") + bytes([0x60, 0x00, 0xF3]) + runtime)


def const_code(data: bytes, *, revert: bool = False) -> bytes:
    """Runtime code that returns (or reverts with) `data` whatever it is called with."""
    n = len(data)
    prefix_len = 14
    body = (bytes([0x61]) + n.to_bytes(2, "big") + bytes([0x60, prefix_len, 0x60, 0x00, 0x39])
            + bytes([0x61]) + n.to_bytes(2, "big") + bytes([0x60, 0x00, 0xFD if revert else 0xF3]))
    assert len(body) == prefix_len
    return body + data


def loop_code() -> bytes:
    """Runtime code that loops forever (JUMPDEST PUSH1 0 JUMP): it always runs out of gas."""
    return bytes([0x5B, 0x60, 0x00, 0x56])


def evm_genesis(*, contracts: Sequence[dict[str, Any]] | None = None, policies: bool = True,
                voting_period: int = 2, **params: Any) -> bytes:
    """Genesis with the test organization and an evm section (default policies unless policies=False)."""
    section: dict[str, Any] = dict(params)
    items = list(default_evm_section()["contracts"]) if policies else []
    items += list(contracts or [])
    if items:
        section["contracts"] = items
    return canonical_bytes({"identity": {"organizations": [{
        "id": ORG, "name": "Test org", "enrollment_cap": 100,
        "issuers": [did_from_private_key(ISSUER)], "admins": [did_from_private_key(ISSUER)]}]},
        "governance": {"voting_period_blocks": voting_period}, "evm": section})


def admin() -> Signer:
    """A Signer with the test issuer's key, the test organization's administrator in evm_genesis."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    signer = Signer(0)
    signer.key = ISSUER
    signer.hex = ISSUER.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    return signer


def query(chain: Chain, path: str) -> Any:
    """A successful query's JSON answer."""
    res = chain.sm.query(path, b"", False)
    assert res.code == 0, (path, res.log)
    return json.loads(res.value)


class EvmChain(Chain):
    """tests.support.Chain with EVM helpers."""

    def __init__(self, store: CommittedStore | None = None, app_state: bytes | None = None) -> None:
        super().__init__(store or CommittedStore(":memory:"), evm_genesis() if app_state is None else app_state)
        self.ok()  # genesis state is committed with the first block
        self.gov = admin()  # the test organization's administrator (counts its own nonces)
        self.chain_id = int(query(self, "/evm/params")["chain_id"])

    def member(self, seed: int, role: str = "trainer", **kwargs: Any) -> Signer:
        """A new enrolled member."""
        signer = Signer(seed)
        self.ok(signer.admit(role, **kwargs))
        return signer

    def bind_tx(self, signer: Signer, account: LocalAccount, did: str | None = None) -> bytes:
        """A bind_evm_address tx of `signer` for `account` (the message names `did`, default the signer's)."""
        did = did or did_from_private_key(signer.key)
        sig = Account.sign_message(encode_defunct(primitive=binding_message(CHAIN, did, account.address)),
                                   account.key).signature
        return signer.tx("bind_evm_address", {"address": account.address.lower(), "signature": "0x" + bytes(sig).hex()})

    def bound(self, seed: int, name: str) -> LocalAccount:
        """An Ethereum key bound to a new enrolled trainer."""
        account = eth_account(name)
        self.ok(self.bind_tx(self.member(seed), account))
        return account

    def evm_tx(self, account: LocalAccount, nonce: int, *, to: bytes | None = None, data: bytes = b"",
               gas: int = 300_000, chain_id: int | None = None, **fields: Any) -> bytes:
        """A signed EIP-1559 tx (fees 0) wrapped in the EVM envelope."""
        tx: dict[str, Any] = {"type": 2, "chainId": self.chain_id if chain_id is None else chain_id, "nonce": nonce,
                              "maxFeePerGas": 0, "maxPriorityFeePerGas": 0, "gas": gas, "value": 0, "data": data,
                              **fields}
        if to is not None:
            tx["to"] = to_checksum_address(to)
        return wrap(bytes(Account.sign_transaction(tx, account.key).raw_transaction))

    def receipt(self, tx_hash: bytes) -> Any:
        """The receipt of an EVM tx by its hash (the TxResult's data)."""
        return query(self, "/evm/receipt/0x" + tx_hash.hex())


def artifact_code(name: str) -> bytes:
    """The init code of a compiled contract in contracts/build."""
    return bytes.fromhex(load_artifact(name)["bytecode"][2:])


class MachineBackend:
    """The Ethereum JSON-RPC server's Backend over an in-process EvmChain: broadcast = CheckTx, mine() = a block."""

    def __init__(self, chain: EvmChain) -> None:
        self.chain = chain
        self.pending: list[bytes] = []

    def _info(self, height: int) -> Any:
        from fedledger.node.ethrpc.backend import BlockInfo

        return BlockInfo(height=height, hash=hashlib.sha256(b"%d" % height).digest(),
                         parent_hash=hashlib.sha256(b"%d" % (height - 1)).digest(), time_s=height)

    def latest(self) -> Any:
        """The chain's last block."""
        return self._info(self.chain.height)

    def block(self, height: int) -> Any:
        """A past block, or None."""
        return self._info(height) if 1 <= height <= self.chain.height else None

    def query(self, path: str) -> Any:
        """abci_query."""
        from fedledger.node.ethrpc.backend import QueryFailed

        res = self.chain.sm.query(path, b"", False)
        if res.code != 0:
            raise QueryFailed(res.code, res.log)
        return json.loads(res.value)

    def broadcast(self, tx: bytes) -> Any:
        """CheckTx, and into the pending list if it passes."""
        from fedledger.node.ethrpc.backend import Broadcast

        res = self.chain.sm.check_tx(tx)
        if res.code == 0:
            self.pending.append(tx)
        return Broadcast(code=res.code, log=res.log)

    def mine(self) -> list[Any]:
        """A block with every pending tx."""
        txs, self.pending = self.pending, []
        return self.chain.block(*txs)
