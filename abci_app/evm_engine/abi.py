"""Solidity ABI helpers for the chain's own calls into contracts: selectors, arguments, results, revert reasons."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth_abi.abi import decode, encode
from eth_abi.exceptions import DecodingError
from eth_utils.crypto import keccak

from fedledger.abci_app.errors import ProtocolError

__all__ = ["AbiError", "decode_result", "encode_call", "revert_reason", "selector"]

_ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
_PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)
_MAX_REASON = 200


class AbiError(ProtocolError):
    """Bytes that do not decode as the expected ABI types."""

    error_code = "EVM_ABI"


def selector(signature: str) -> bytes:
    """The 4-byte function selector of a canonical signature such as `admit(string,string)`."""
    return keccak(text=signature)[:4]


def encode_call(signature: str, types: Sequence[str], args: Sequence[Any]) -> bytes:
    """Calldata: selector of `signature` followed by the ABI encoding of `args` as `types`."""
    return selector(signature) + encode(list(types), list(args))


def decode_result(types: Sequence[str], data: bytes) -> tuple[Any, ...]:
    """ABI-decode return data strictly; AbiError if it does not decode as `types`."""
    try:
        return tuple(decode(list(types), data, strict=True))
    except (DecodingError, ValueError, TypeError, OverflowError) as exc:
        raise AbiError(f"return data does not decode as ({','.join(types)}): {exc}") from exc


def _clip(text: str) -> str:
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= _MAX_REASON else text[:_MAX_REASON] + "…"


def revert_reason(output: bytes) -> str:
    """A readable reason for revert data: Error(string)'s message, Panic's code, or the raw bytes' size."""
    if output.startswith(_ERROR_SELECTOR):
        try:
            (message,) = decode(["string"], output[4:])
            return _clip(str(message))
        except (DecodingError, ValueError, TypeError, OverflowError, UnicodeDecodeError):
            pass
    if output.startswith(_PANIC_SELECTOR) and len(output) == 36:
        return f"panic 0x{int.from_bytes(output[4:], 'big'):02x}"
    if not output:
        return "no reason given"
    return f"{len(output)} bytes of revert data 0x{output[:32].hex()}"
