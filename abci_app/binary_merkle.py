"""A binary Merkle tree (keccak-256, domain-separated leaves and nodes) with inclusion proofs.

Used for anchor checkpoints (node/anchor) and for inference receipt batches (modules/inference).

The tree
--------
* leaf hash  = keccak256(0x00 || leaf bytes)
* node hash  = keccak256(0x01 || left || right)
* Leaves are hashed in order; each level pairs nodes (0,1), (2,3), …; when a level has an odd
  number of nodes, the last one has no partner and is carried up to the next level unchanged
  (it is never paired with itself, so no two different leaf lists can share a root by
  duplicating their last leaf, the weakness of Bitcoin's tree).
* The root of one leaf is its leaf hash; a tree of no leaves does not exist.

The 0x00/0x01 prefixes keep a leaf from ever being read as an inner node (no second preimage by
presenting 64 bytes of two child hashes as a leaf). keccak-256 is the hash the EVM computes
cheaply, so a contract could check these proofs on chain later.

A proof
-------
The leaf's index, the number of leaves, and the sibling hashes from the bottom up, one per level
at which the node on the path has a partner. Index and count fix, at every level, whether a
sibling exists and on which side, so the proof carries no direction bits that could be forged.
The root alone does not fix the leaf count (leaf 0 has the same path among 11 leaves as among
12); an anchor fixes it, since its height range from..to makes count = to - from + 1, and
verification demands exactly that count and index = height - from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_hash.auto import keccak

from fedledger.abci_app.errors import ProtocolError

__all__ = ["LEAF_PREFIX", "NODE_PREFIX", "MerkleError", "MerkleProof", "MerkleTree", "leaf_hash", "node_hash",
           "root_from_proof", "verify_proof"]

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


class MerkleError(ProtocolError):
    """A tree or proof was asked for with impossible inputs (no leaves, index out of range, bad hash sizes)."""

    error_code = "MERKLE"


def leaf_hash(leaf: bytes) -> bytes:
    """keccak256(0x00 || leaf)."""
    return keccak(LEAF_PREFIX + leaf)


def node_hash(left: bytes, right: bytes) -> bytes:
    """keccak256(0x01 || left || right)."""
    return keccak(NODE_PREFIX + left + right)


@dataclass(frozen=True)
class MerkleProof:
    """Inclusion of the leaf at `index` among `count` leaves: its sibling hashes, bottom-up."""

    index: int
    count: int
    siblings: tuple[bytes, ...]

    def to_json(self) -> dict[str, object]:
        """A JSON-ready form: hashes as 0x-prefixed hex."""
        return {"index": self.index, "count": self.count, "siblings": ["0x" + s.hex() for s in self.siblings]}

    @staticmethod
    def from_json(value: object) -> MerkleProof:
        """Parse to_json's form; MerkleError says what is wrong."""
        if not isinstance(value, dict) or set(value) != {"index", "count", "siblings"}:
            raise MerkleError("a proof is an object with exactly index, count and siblings")
        index, count, siblings = value["index"], value["count"], value["siblings"]
        if not isinstance(index, int) or not isinstance(count, int) or isinstance(index, bool) \
                or isinstance(count, bool):
            raise MerkleError("proof index and count must be integers")
        if not isinstance(siblings, list) or not all(isinstance(s, str) for s in siblings):
            raise MerkleError("proof siblings must be a list of hex strings")
        return MerkleProof(index, count, tuple(_hash32(s, "sibling") for s in siblings))


def _hash32(text: str, what: str) -> bytes:
    body = text[2:] if text.startswith("0x") else text
    try:
        raw = bytes.fromhex(body)
    except ValueError as exc:
        raise MerkleError(f"{what} {text!r} is not hex") from exc
    if len(raw) != 32:
        raise MerkleError(f"{what} {text!r} is not 32 bytes")
    return raw


def _check_shape(index: int, count: int) -> None:
    if count < 1:
        raise MerkleError(f"a Merkle tree needs at least one leaf, got {count}")
    if not 0 <= index < count:
        raise MerkleError(f"leaf index {index} is outside 0..{count - 1}")


def _path_length(index: int, count: int) -> int:
    """How many siblings the proof of leaf `index` among `count` leaves has."""
    n = 0
    while count > 1:
        if index ^ 1 < count:  # a partner exists unless this is the odd last node
            n += 1
        index //= 2
        count = (count + 1) // 2
    return n


class MerkleTree:
    """All levels of the tree over `leaves` (leaf bytes, not yet hashed), for its root and proofs."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        if not leaves:
            raise MerkleError("a Merkle tree needs at least one leaf")
        level = [leaf_hash(leaf) for leaf in leaves]
        self.levels: list[list[bytes]] = [level]
        while len(level) > 1:
            nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])  # the odd last node is carried up unchanged
            level = nxt
            self.levels.append(level)

    @property
    def count(self) -> int:
        """The number of leaves."""
        return len(self.levels[0])

    @property
    def root(self) -> bytes:
        """The 32-byte root."""
        return self.levels[-1][0]

    def proof(self, index: int) -> MerkleProof:
        """The inclusion proof of leaf `index`."""
        _check_shape(index, self.count)
        siblings = []
        i = index
        for level in self.levels[:-1]:
            partner = i ^ 1
            if partner < len(level):
                siblings.append(level[partner])
            i //= 2
        return MerkleProof(index, self.count, tuple(siblings))


def root_from_proof(leaf: bytes, proof: MerkleProof) -> bytes:
    """The root that `proof` and the leaf bytes `leaf` lead to; MerkleError for a malformed proof."""
    _check_shape(proof.index, proof.count)
    if len(proof.siblings) != _path_length(proof.index, proof.count):
        raise MerkleError(f"a proof of leaf {proof.index} among {proof.count} has "
                          f"{_path_length(proof.index, proof.count)} siblings, this one has {len(proof.siblings)}")
    if any(len(s) != 32 for s in proof.siblings):
        raise MerkleError("every sibling hash must be 32 bytes")
    node = leaf_hash(leaf)
    index, count, k = proof.index, proof.count, 0
    while count > 1:
        partner = index ^ 1
        if partner < count:
            sibling = proof.siblings[k]
            k += 1
            node = node_hash(node, sibling) if index % 2 == 0 else node_hash(sibling, node)
        index //= 2
        count = (count + 1) // 2
    return node


def verify_proof(leaf: bytes, proof: MerkleProof, root: bytes) -> bool:
    """Whether `proof` shows leaf bytes `leaf` at its index in a tree with root `root` (False for malformed proofs)."""
    try:
        return root_from_proof(leaf, proof) == root
    except MerkleError:
        return False
