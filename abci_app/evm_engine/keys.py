"""Store keys of the embedded EVM: trie nodes, state root, receipts, logs, blocks, bindings, policy pointers.

Every key is ASCII under the `evm/` prefix; numbers are zero-padded so that key order is numeric
order, and addresses and hashes are lower-case hex without `0x`.
"""

from __future__ import annotations

__all__ = [
    "BINDING_ADDRESS_PREFIX",
    "LOG_PREFIX",
    "PARAMS_KEY",
    "ROOT_KEY",
    "address_binding_key",
    "block_key",
    "did_binding_key",
    "log_height_prefix",
    "log_key",
    "node_key",
    "policy_key",
    "receipt_key",
]

ROOT_KEY = b"evm/root"
PARAMS_KEY = b"evm/params"
LOG_PREFIX = b"evm/log/"
BINDING_ADDRESS_PREFIX = b"evm/bind/addr/"
_HEIGHT_DIGITS = 10
_INDEX_DIGITS = 6


def node_key(db_key: bytes) -> bytes:
    """A py-evm database entry (trie node or code, keyed by its keccak hash) inside the FedLedger store."""
    return b"evm/node/" + db_key.hex().encode("ascii")


def receipt_key(tx_hash: bytes) -> bytes:
    """The receipt of an EVM transaction (or system call) by its 32-byte keccak hash."""
    return b"evm/rcpt/" + tx_hash.hex().encode("ascii")


def block_key(height: int) -> bytes:
    """What the EVM did in block `height`: gas used, transaction hashes, block hash and time."""
    return b"evm/block/" + str(height).zfill(_HEIGHT_DIGITS).encode("ascii")


def log_height_prefix(height: int) -> bytes:
    """The logs of block `height`, in execution order."""
    return LOG_PREFIX + str(height).zfill(_HEIGHT_DIGITS).encode("ascii") + b"/"


def log_key(height: int, index: int) -> bytes:
    """Log number `index` (from 0, counted over the whole block) of block `height`."""
    return log_height_prefix(height) + str(index).zfill(_INDEX_DIGITS).encode("ascii")


def address_binding_key(address: bytes) -> bytes:
    """The DID an Ethereum address is bound to."""
    return BINDING_ADDRESS_PREFIX + address.hex().encode("ascii")


def did_binding_key(did: str) -> bytes:
    """The Ethereum address a DID has bound."""
    return b"evm/bind/did/" + did.encode("ascii")


def policy_key(kind: str, task_id: str | None) -> bytes:
    """The policy contract of `kind` for a task, or the chain-wide default (task_id None)."""
    scope = b"default" if task_id is None else b"task/" + task_id.encode("ascii")
    return b"evm/policy/" + kind.encode("ascii") + b"/" + scope
