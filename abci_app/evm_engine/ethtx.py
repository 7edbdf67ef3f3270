"""Ethereum transactions as FedLedger accepts them: decoding, chain id, signature, and the tx envelope.

An EVM tx reaches the chain as `EVM_ENVELOPE_PREFIX || raw`, where `raw` is the signed Ethereum
transaction exactly as `eth-account` produces it: a legacy tx with EIP-155 replay protection,
an EIP-2930 (type 1) or an EIP-1559 (type 2) tx. Blob (type 3) and set-code (type 4) txs are
refused. The raw bytes must be the canonical encoding of what they decode to, so one tx has one
byte string, and its hash is Ethereum's (keccak of the raw bytes).
"""

from __future__ import annotations

from dataclasses import dataclass

import rlp
from eth.abc import SignedTransactionAPI
from eth.exceptions import PyEVMError
from eth_keys.exceptions import BadSignature
from eth_utils.exceptions import ValidationError

from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.evm_engine.vm import VM_CLASS

__all__ = ["EVM_ENVELOPE_PREFIX", "MAX_EVM_TX_BYTES", "EthTx", "decode_eth_tx", "unwrap", "wrap"]

# Cannot begin a canonical JSON envelope (those start with "{"), so the two kinds never collide.
EVM_ENVELOPE_PREFIX = b"fedledger-evm-v1\n"
# EIP-3860 caps init code at 49152 bytes; a deployment tx is that plus a few hundred bytes of fields.
MAX_EVM_TX_BYTES = 64 * 1024
_LEGACY_FIRST_BYTE = 0xC0
_TYPED = {1: "EIP-2930", 2: "EIP-1559"}
_REFUSED = {3: "blob (EIP-4844)", 4: "set-code (EIP-7702)"}


@dataclass(frozen=True)
class EthTx:
    """A decoded Ethereum tx whose signature recovered a sender, for this chain's EVM chain id."""

    tx: SignedTransactionAPI
    sender: bytes  # 20 bytes
    hash: bytes  # 32-byte keccak of the raw bytes
    raw: bytes

    @property
    def nonce(self) -> int:
        """The sender's account nonce this tx uses."""
        return int(self.tx.nonce)

    @property
    def gas(self) -> int:
        """The tx's gas limit."""
        return int(self.tx.gas)

    @property
    def to(self) -> bytes:
        """The recipient (20 bytes), or b"" for a contract creation."""
        return bytes(self.tx.to)


def wrap(raw: bytes) -> bytes:
    """The FedLedger tx bytes that carry the raw Ethereum tx `raw`."""
    return EVM_ENVELOPE_PREFIX + raw


def unwrap(envelope: bytes) -> bytes:
    """The raw Ethereum tx inside a FedLedger EVM envelope; EVM_MALFORMED if it is not one."""
    if not envelope.startswith(EVM_ENVELOPE_PREFIX):
        raise TxError(Code.EVM_MALFORMED, "not an EVM envelope (missing the fedledger-evm-v1 prefix)")
    return envelope[len(EVM_ENVELOPE_PREFIX):]


def decode_eth_tx(raw: bytes, chain_id: int) -> EthTx:
    """Decode and authenticate a raw Ethereum tx; TxError with EVM_MALFORMED or EVM_WRONG_CHAIN if it is refused."""
    if not raw:
        raise TxError(Code.EVM_MALFORMED, "empty EVM tx")
    if len(raw) > MAX_EVM_TX_BYTES:
        raise TxError(Code.EVM_MALFORMED, f"EVM tx is {len(raw)} bytes; the limit is {MAX_EVM_TX_BYTES}")
    first = raw[0]
    if first in _REFUSED:
        raise TxError(Code.EVM_MALFORMED, f"{_REFUSED[first]} transactions are not supported; send a legacy "
                                          "(EIP-155), EIP-2930 or EIP-1559 tx")
    if first < _LEGACY_FIRST_BYTE and first not in _TYPED:
        raise TxError(Code.EVM_MALFORMED, f"unknown EVM tx type byte 0x{first:02x}: not RLP and not a "
                                          "supported typed tx (1, 2)")
    try:
        tx = VM_CLASS.get_transaction_builder().decode(raw)
        canonical = tx.encode()
    except (rlp.DecodingError, rlp.DeserializationError, ValidationError, PyEVMError, ValueError,
            TypeError) as exc:
        raise TxError(Code.EVM_MALFORMED, f"malformed RLP: the bytes are not a signed Ethereum tx ({exc})") from exc
    if canonical != raw:
        raise TxError(Code.EVM_MALFORMED, "the EVM tx is not canonically RLP-encoded (trailing or non-minimal bytes)")
    tx_chain = tx.chain_id
    if tx_chain is None:
        raise TxError(Code.EVM_WRONG_CHAIN, f"legacy tx without EIP-155 replay protection; sign it with chain id "
                                            f"{chain_id}")
    if tx_chain != chain_id:
        raise TxError(Code.EVM_WRONG_CHAIN, f"EVM tx is for chain id {tx_chain}; this chain's EVM chain id is "
                                            f"{chain_id}")
    try:
        tx.validate()
        sender = bytes(tx.sender)
    except (ValidationError, BadSignature, PyEVMError, ValueError) as exc:
        raise TxError(Code.EVM_MALFORMED, f"EVM tx signature or fields invalid: {exc}") from exc
    return EthTx(tx=tx, sender=sender, hash=bytes(tx.hash), raw=raw)
