"""The CheckpointAnchor contract from Python: its committed build artifact, call data, event decoding, code check.

The artifact is `contracts/build/CheckpointAnchor.json`, built reproducibly by
`contracts/build.py` from `contracts/src/CheckpointAnchor.sol` and committed, so running the
service needs no compiler. `$FEDLEDGER_CONTRACTS_DIR` points elsewhere (an installed copy).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from eth_abi.abi import decode, encode
from eth_hash.auto import keccak

from fedledger.node.anchor.errors import AnchorConfigError
from fedledger.node.anchor.eth import EthLog

__all__ = ["ANCHORED_SIGNATURE", "ANCHOR_SIGNATURE", "CONTRACT_NAME", "AnchoredEvent", "Artifact", "anchor_calldata",
           "anchored_topic", "artifacts_dir", "chain_tag", "decode_anchored", "load_artifact", "owner_calldata"]

CONTRACT_NAME = "CheckpointAnchor"
ANCHOR_SIGNATURE = "anchor(bytes32,bytes32,uint64,uint64)"
ANCHORED_SIGNATURE = "Anchored(bytes32,bytes32,uint64,uint64)"


def artifacts_dir() -> Path:
    """contracts/build of this checkout, or $FEDLEDGER_CONTRACTS_DIR."""
    env = os.environ.get("FEDLEDGER_CONTRACTS_DIR")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2] / "contracts" / "build"


@dataclass(frozen=True)
class Artifact:
    """A compiled contract: ABI, creation code, runtime code and where the constructor patches it."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: bytes
    deployed_bytecode: bytes
    immutable_ranges: tuple[tuple[int, int], ...]
    compiler: str

    def runtime_matches(self, code: bytes) -> bool:
        """Whether on-chain `code` is this contract's runtime code (immutable slots excepted)."""
        if len(code) != len(self.deployed_bytecode):
            return False
        masked = bytearray(code)
        for start, length in self.immutable_ranges:
            masked[start:start + length] = self.deployed_bytecode[start:start + length]
        return bytes(masked) == self.deployed_bytecode


@cache
def load_artifact(name: str = CONTRACT_NAME) -> Artifact:
    """The committed build artifact of contract `name`; AnchorConfigError if it is missing."""
    path = artifacts_dir() / f"{name}.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AnchorConfigError(f"cannot read the contract artifact {path}: {exc}; rebuild it with "
                                "`python contracts/build.py`") from exc
    return Artifact(name=name, abi=raw["abi"], bytecode=bytes.fromhex(raw["bytecode"][2:]),
                    deployed_bytecode=bytes.fromhex(raw["deployedBytecode"][2:]),
                    immutable_ranges=tuple((int(s), int(n)) for s, n in raw.get("immutableReferences", [])),
                    compiler=str(raw["compiler"]["version"]))


def chain_tag(chain_id: str) -> bytes:
    """The bytes32 that names a permissioned chain in Anchored events: keccak256 of its UTF-8 chain id."""
    return keccak(chain_id.encode("utf-8"))


def anchored_topic() -> str:
    """topic0 of the Anchored event."""
    return "0x" + keccak(ANCHORED_SIGNATURE.encode()).hex()


def anchor_calldata(chain_id: str, root: bytes, from_height: int, to_height: int) -> bytes:
    """Call data of anchor(chainId, root, fromHeight, toHeight)."""
    if len(root) != 32:
        raise ValueError("a Merkle root is 32 bytes")
    selector = keccak(ANCHOR_SIGNATURE.encode())[:4]
    return selector + encode(["bytes32", "bytes32", "uint64", "uint64"],
                             [chain_tag(chain_id), root, from_height, to_height])


def owner_calldata() -> bytes:
    """Call data of owner()."""
    return keccak(b"owner()")[:4]


@dataclass(frozen=True)
class AnchoredEvent:
    """A decoded Anchored log."""

    contract: str
    chain_tag: bytes
    root: bytes
    from_height: int
    to_height: int


def decode_anchored(entry: EthLog) -> AnchoredEvent | None:
    """The Anchored event in a log, or None when the log is another event (or malformed)."""
    if len(entry.topics) != 2 or entry.topics[0].lower() != anchored_topic():
        return None
    try:
        root, lo, hi = decode(["bytes32", "uint64", "uint64"], bytes.fromhex(entry.data[2:]))
        tag = bytes.fromhex(entry.topics[1][2:])
    except Exception:  # eth_abi raises several types for bad data; any of them means "not ours"
        return None
    return AnchoredEvent(contract=entry.address, chain_tag=tag, root=bytes(root), from_height=int(lo),
                         to_height=int(hi))
