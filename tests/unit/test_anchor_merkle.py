"""The checkpoint Merkle tree against an independent recursive definition, and its proofs against tampering."""

from __future__ import annotations

import hashlib

import pytest
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from fedledger.abci_app.binary_merkle import (
    MerkleError,
    MerkleProof,
    MerkleTree,
    leaf_hash,
    node_hash,
    root_from_proof,
    verify_proof,
)


def reference_root(hashes: list[bytes]) -> bytes:
    """Straight from the spec: pair neighbours level by level, carry an odd last node up unchanged."""
    if len(hashes) == 1:
        return hashes[0]
    nxt = []
    for i in range(0, len(hashes), 2):
        if i + 1 < len(hashes):
            nxt.append(keccak(b"\x01" + hashes[i] + hashes[i + 1]))
        else:
            nxt.append(hashes[i])
    return reference_root(nxt)


def leaves(n: int) -> list[bytes]:
    return [b"checkpoint-%d" % i for i in range(n)]


def test_hashes_are_domain_separated_keccak() -> None:
    assert leaf_hash(b"x") == keccak(b"\x00x")
    assert node_hash(b"a" * 32, b"b" * 32) == keccak(b"\x01" + b"a" * 32 + b"b" * 32)
    # A leaf whose bytes are two child hashes does not hash like the inner node of those children.
    left, right = leaf_hash(b"l"), leaf_hash(b"r")
    assert leaf_hash(left + right) != node_hash(left, right)


def test_known_roots() -> None:
    a, b, c = (keccak(b"\x00" + x) for x in (b"a", b"b", b"c"))
    assert MerkleTree([b"a"]).root == a
    assert MerkleTree([b"a", b"b"]).root == keccak(b"\x01" + a + b)
    # Three leaves: c has no partner at the bottom and is carried up, then paired with H(a, b).
    assert MerkleTree([b"a", b"b", b"c"]).root == keccak(b"\x01" + keccak(b"\x01" + a + b) + c)
    assert MerkleTree([b"a", b"b", b"c"]).root.hex() == (
        keccak(b"\x01" + keccak(b"\x01" + a + b) + c).hex())


@pytest.mark.parametrize("n", list(range(1, 34)) + [100, 257])
def test_root_matches_reference_and_every_proof_verifies(n: int) -> None:
    data = leaves(n)
    tree = MerkleTree(data)
    assert tree.count == n
    assert tree.root == reference_root([keccak(b"\x00" + x) for x in data])
    for i in range(n):
        proof = tree.proof(i)
        assert root_from_proof(data[i], proof) == tree.root
        assert verify_proof(data[i], proof, tree.root)
        # The sibling count is the number of levels at which the path node has a partner.
        assert len(proof.siblings) <= max(0, (n - 1).bit_length())


def test_odd_node_is_not_duplicated() -> None:
    # Bitcoin's rule (pair the odd node with itself) would give [a,b,c] and [a,b,c,c] one root.
    assert MerkleTree(leaves(3)).root != MerkleTree([*leaves(3), leaves(3)[-1]]).root
    assert MerkleTree(leaves(5)).root != MerkleTree([*leaves(5), leaves(5)[-1]]).root


def test_tampered_proofs_are_rejected() -> None:
    data = leaves(11)
    tree = MerkleTree(data)
    for i in range(11):
        proof = tree.proof(i)
        assert not verify_proof(data[i] + b"!", proof, tree.root)  # another leaf
        assert not verify_proof(data[(i + 1) % 11], proof, tree.root)  # a neighbour's leaf at this index
        for k in range(len(proof.siblings)):
            flipped = bytearray(proof.siblings[k])
            flipped[0] ^= 1
            bad = MerkleProof(i, 11, proof.siblings[:k] + (bytes(flipped),) + proof.siblings[k + 1:])
            assert not verify_proof(data[i], bad, tree.root)
        assert not verify_proof(data[i], MerkleProof(i, 11, proof.siblings[:-1]), tree.root)  # one sibling short
        if i == 10:  # the odd last leaf has no bottom sibling among 11 leaves, but has one among 12
            assert not verify_proof(data[i], MerkleProof(i, 12, proof.siblings), tree.root)
        assert not verify_proof(data[i], proof, keccak(b"other root"))


def test_swapped_index_is_rejected() -> None:
    data = leaves(8)
    tree = MerkleTree(data)
    proof = tree.proof(2)
    assert not verify_proof(data[2], MerkleProof(3, 8, proof.siblings), tree.root)


def test_bad_shapes_raise_clear_errors() -> None:
    with pytest.raises(MerkleError, match="at least one leaf"):
        MerkleTree([])
    with pytest.raises(MerkleError, match="outside 0..2"):
        MerkleTree(leaves(3)).proof(3)
    with pytest.raises(MerkleError, match="has 2 siblings, this one has 1"):
        root_from_proof(b"x", MerkleProof(0, 4, (b"\x00" * 32,)))
    with pytest.raises(MerkleError, match="32 bytes"):
        root_from_proof(b"x", MerkleProof(0, 2, (b"\x00" * 31,)))


def test_proof_json_round_trip_and_errors() -> None:
    tree = MerkleTree(leaves(6))
    proof = tree.proof(5)
    assert MerkleProof.from_json(proof.to_json()) == proof
    with pytest.raises(MerkleError, match="exactly index, count and siblings"):
        MerkleProof.from_json({"index": 0, "count": 1})
    with pytest.raises(MerkleError, match="not hex"):
        MerkleProof.from_json({"index": 0, "count": 2, "siblings": ["0xzz"]})
    with pytest.raises(MerkleError, match="not 32 bytes"):
        MerkleProof.from_json({"index": 0, "count": 2, "siblings": ["0x00"]})
    with pytest.raises(MerkleError, match="integers"):
        MerkleProof.from_json({"index": True, "count": 2, "siblings": []})


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=70), st.data())
def test_property_proofs_verify_and_bind_the_leaf(data: list[bytes], draw: st.DataObject) -> None:
    tree = MerkleTree(data)
    assert tree.root == reference_root([keccak(b"\x00" + x) for x in data])
    i = draw.draw(st.integers(0, len(data) - 1))
    proof = tree.proof(i)
    assert verify_proof(data[i], proof, tree.root)
    other = hashlib.sha256(data[i]).digest()
    assert not verify_proof(other, proof, tree.root) or other == data[i]
