"""Light-client header verification: CometBFT v0.38 hashes and sign bytes, commit checks, provenance verdicts.

Two offline fixtures (tests/unit/fixtures/):
* lightclient_localnet.json: a genesis, one proved query answer and the /commit of the next block,
  captured from a real 4-validator localnet (tests/integration/test_lightclient_localnet.py writes it);
* lightclient_vectors.json: golden values computed by CometBFT v0.38.26's own Go code
  (lightclient_vectors.go), for cases a live localnet does not show: unequal powers, round > 0,
  an empty block ID, a height-1 header with empty fields.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fedledger.abci_app.query_proofs import PROOF_OP_TYPE
from fedledger.abci_app.store import Proof
from fedledger.abci_app.store.merkle import bucket_hash, bucket_index, inner_hash
from fedledger.abci_app.store.proof import RecordProof
from fedledger.sdk.lightclient import (
    BLOCK_ID_FLAG_ABSENT,
    BLOCK_ID_FLAG_NIL,
    BlockID,
    Commit,
    CommitSig,
    Header,
    HeaderVerificationError,
    SignedHeader,
    Timestamp,
    TrustRoot,
    TrustRootError,
    Validator,
    header_hash,
    simple_merkle_root,
    validator_set_hash,
    verify_signed_header,
    vote_sign_bytes,
)
from fedledger.sdk.provenance import ProofFailedError, check_query_proof
from fedledger.sdk.rpc import AbciQueryResult

FIXTURES = Path(__file__).resolve().parent / "fixtures"
LOCALNET = json.loads((FIXTURES / "lightclient_localnet.json").read_text())
VECTORS = json.loads((FIXTURES / "lightclient_vectors.json").read_text())


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def commit_doc() -> dict[str, Any]:
    """A fresh deep copy of the captured /commit answer for block H+1."""
    doc: dict[str, Any] = copy.deepcopy(LOCALNET["commit"])
    return doc


def trust() -> TrustRoot:
    return TrustRoot.from_genesis(LOCALNET["genesis"])


def record_op(key: bytes, value: bytes, proof: Proof) -> tuple[str, bytes, bytes]:
    """The proof op of one record: its value and its bucket proof."""
    return (PROOF_OP_TYPE, key, RecordProof(value, proof).encode())


def query_result() -> AbciQueryResult:
    """The captured /key answer; the fixture keeps the bare proof of the one record it reads."""
    q = LOCALNET["query"]
    key, value = base64.b64decode(q["key"]), base64.b64decode(q["value"])
    op = record_op(key, value, Proof.decode(base64.b64decode(q["proof"])))
    return AbciQueryResult(code=0, log="", key=key, value=value, proof=op[2], height=q["height"],
                           path=q["path"], data=key, proof_ops=(op,))


class FakeNode:
    """Serves the captured /commit (after `mutate`), as a node that may lie would."""

    def __init__(self, mutate: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.doc = commit_doc()
        if mutate is not None:
            mutate(self.doc)
        self.asked: list[int] = []

    def height(self) -> int:
        return int(LOCALNET["commit"]["signed_header"]["header"]["height"])

    def commit(self, height: int) -> dict[str, Any]:
        self.asked.append(height)
        return self.doc


def sh(doc: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = doc["signed_header"]
    return out


def verify(doc: dict[str, Any], root: TrustRoot | None = None) -> Any:
    signed = SignedHeader.from_rpc(doc)
    return verify_signed_header(signed, root or trust(), height=int(sh(doc)["header"]["height"]))


# ----------------------------------------------------------------------------- against CometBFT's Go code

def test_simple_merkle_root_follows_rfc6962_shape() -> None:
    a, b, c = b"a", b"b", b"c"
    leaf = {x: sha(b"\x00" + x) for x in (a, b, c)}
    assert simple_merkle_root([]) == sha(b"")
    assert simple_merkle_root([a]) == leaf[a]
    assert simple_merkle_root([a, b]) == sha(b"\x01" + leaf[a] + leaf[b])
    # n = 3 splits 2 | 1 (largest power of two below n), not 1 | 2.
    assert simple_merkle_root([a, b, c]) == sha(b"\x01" + sha(b"\x01" + leaf[a] + leaf[b]) + leaf[c])


def test_validator_set_order_and_hash_match_cometbft_with_unequal_powers() -> None:
    vals = [Validator(bytes.fromhex(v["pub_key"]), v["power"]) for v in VECTORS["validators"]]
    for v, raw in zip(vals, VECTORS["validators"], strict=True):
        assert v.address.hex().upper() == raw["address"]
    root = TrustRoot("vec-chain", vals)
    # Power descending, equal powers (two of 15) by address ascending.
    assert [v.address.hex().upper() for v in root.validators] == VECTORS["validator_order"]
    assert root.validators_hash.hex() == VECTORS["validators_hash"]
    assert root.total_power == 115
    # Hashing in any other order gives another hash: the order is part of what is checked.
    assert validator_set_hash(vals).hex() != VECTORS["validators_hash"]


@pytest.mark.parametrize("i", range(2))
def test_header_hash_matches_cometbft_vectors(i: int) -> None:
    vec = VECTORS["headers"][i]
    assert header_hash(Header.from_json(vec["json"])).hex() == vec["hash"]


@pytest.mark.parametrize("i", range(3))
def test_vote_sign_bytes_match_cometbft_vectors(i: int) -> None:
    v = VECTORS["votes"][i]
    bid = BlockID(bytes.fromhex(v["block_id_hash"]), v["parts_total"], bytes.fromhex(v["parts_hash"]))
    got = vote_sign_bytes(v["chain_id"], v["height"], v["round"], bid, Timestamp.parse(v["timestamp"]))
    assert got.hex() == v["sign_bytes"]


# ----------------------------------------------------------------------------- against a real v0.38.26 node

def test_header_hash_of_real_blocks_equals_the_block_id() -> None:
    for doc, block_id in ((LOCALNET["commit"], LOCALNET["block_id_hash"]),
                          (LOCALNET["commit_height_1"], LOCALNET["block_id_hash_height_1"])):
        header = Header.from_json(sh(doc)["header"])
        assert header.hash().hex().upper() == block_id == sh(doc)["commit"]["block_id"]["hash"]


def test_real_commit_verifies_against_the_genesis_validators() -> None:
    root = trust()
    assert len(root.validators) == 4 and root.total_power == 40
    assert root.validators_hash.hex().upper() == sh(LOCALNET["commit"])["header"]["validators_hash"]
    got = verify(commit_doc())
    assert got.signed_power == 40 and len(got.signers) == 4
    assert got.app_hash.hex().upper() == sh(LOCALNET["commit"])["header"]["app_hash"]
    # Block 1's commit holds a nil vote: it is not counted, and 3 of 4 is enough.
    first = verify(copy.deepcopy(LOCALNET["commit_height_1"]))
    flags = [s["block_id_flag"] for s in sh(LOCALNET["commit_height_1"])["commit"]["signatures"]]
    assert got.total_power == first.total_power
    assert first.signed_power == 10 * flags.count(2) and 3 * first.signed_power > 80


def test_real_vote_sign_bytes_are_what_the_validators_signed() -> None:
    root = trust()
    commit = SignedHeader.from_rpc(commit_doc()).commit
    for sig in commit.signatures:
        val = root.validator(sig.validator_address)
        assert val is not None
        msg = vote_sign_bytes(root.chain_id, commit.height, commit.round, commit.block_id, sig.timestamp)
        pub = Ed25519PublicKey.from_public_bytes(val.pub_key)
        pub.verify(sig.signature, msg)  # raises InvalidSignature if our bytes are not what was signed
        # One changed field (the round) makes the same signature fail.
        other = vote_sign_bytes(root.chain_id, commit.height, commit.round + 1, commit.block_id, sig.timestamp)
        with pytest.raises(InvalidSignature):
            pub.verify(sig.signature, other)


# ----------------------------------------------------------------------------- tampering

HEADER_TAMPERS: dict[str, Callable[[dict[str, Any]], None]] = {
    "version": lambda h: h["version"].__setitem__("app", str(int(h["version"]["app"]) + 1)),
    "time": lambda h: h.__setitem__("time", h["time"][:-2] + ("2" if h["time"][-2] == "1" else "1") + "Z"),
    "last_block_id": lambda h: h["last_block_id"]["parts"].__setitem__("total", 2),
    "last_commit_hash": lambda h: h.__setitem__("last_commit_hash", sha(b"x").hex().upper()),
    "data_hash": lambda h: h.__setitem__("data_hash", sha(b"x").hex().upper()),
    "next_validators_hash": lambda h: h.__setitem__("next_validators_hash", sha(b"x").hex().upper()),
    "consensus_hash": lambda h: h.__setitem__("consensus_hash", sha(b"x").hex().upper()),
    "app_hash": lambda h: h.__setitem__("app_hash", sha(b"x").hex().upper()),
    "last_results_hash": lambda h: h.__setitem__("last_results_hash", sha(b"x").hex().upper()),
    "evidence_hash": lambda h: h.__setitem__("evidence_hash", sha(b"x").hex().upper()),
    "proposer_address": lambda h: h.__setitem__("proposer_address", "00" * 20),
}


@pytest.mark.parametrize("field", sorted(HEADER_TAMPERS))
def test_any_tampered_header_field_changes_the_hash(field: str) -> None:
    doc = commit_doc()
    HEADER_TAMPERS[field](sh(doc)["header"])
    assert sh(doc)["header"] != sh(LOCALNET["commit"])["header"]
    with pytest.raises(HeaderVerificationError, match="fields hash to .* but the commit signs block"):
        verify(doc)


def test_tampered_chain_id_height_and_validators_hash_are_refused() -> None:
    doc = commit_doc()
    sh(doc)["header"]["chain_id"] = "other-chain"
    with pytest.raises(HeaderVerificationError, match="is for chain 'other-chain'"):
        verify(doc)
    doc = commit_doc()
    sh(doc)["header"]["height"] = str(int(sh(doc)["header"]["height"]) + 1)
    with pytest.raises(HeaderVerificationError, match="the commit is for height"):
        verify(doc)
    with pytest.raises(HeaderVerificationError, match="asked for the header at height 99"):
        verify_signed_header(SignedHeader.from_rpc(commit_doc()), trust(), height=99)
    doc = commit_doc()
    sh(doc)["header"]["validators_hash"] = sha(b"x").hex().upper()
    with pytest.raises(HeaderVerificationError, match="fields hash to"):
        verify(doc)


def rehash(doc: dict[str, Any]) -> None:
    """Make the commit name the (tampered) header's own hash, so only the signatures can catch it."""
    sh(doc)["commit"]["block_id"]["hash"] = header_hash(Header.from_json(sh(doc)["header"])).hex().upper()


def test_tampered_app_hash_with_a_matching_block_id_fails_every_signature() -> None:
    doc = commit_doc()
    sh(doc)["header"]["app_hash"] = sha(b"forged state").hex().upper()
    rehash(doc)
    with pytest.raises(HeaderVerificationError, match=r"validator \w+ \(commit entry 0\).*does not verify"):
        verify(doc)


@pytest.mark.parametrize("what", ["signature", "timestamp", "round", "parts"])
def test_tampered_signature_or_signed_vote_fields_fail(what: str) -> None:
    doc = commit_doc()
    commit = sh(doc)["commit"]
    if what == "signature":
        raw = bytearray(base64.b64decode(commit["signatures"][2]["signature"]))
        raw[5] ^= 1
        commit["signatures"][2]["signature"] = base64.b64encode(bytes(raw)).decode()
    elif what == "timestamp":
        commit["signatures"][2]["timestamp"] = "2000-01-01T00:00:00Z"
    elif what == "round":
        commit["round"] = 1
    else:
        commit["block_id"]["parts"]["total"] += 1
    with pytest.raises(HeaderVerificationError, match="signature of validator .* does not verify"):
        verify(doc)


def drop(doc: dict[str, Any], indexes: list[int], flag: int = BLOCK_ID_FLAG_ABSENT) -> None:
    for i in indexes:
        entry = sh(doc)["commit"]["signatures"][i]
        entry["block_id_flag"] = flag
        if flag == BLOCK_ID_FLAG_ABSENT:
            entry.update(validator_address="", timestamp="0001-01-01T00:00:00Z", signature=None)


def test_removing_signatures_below_two_thirds_fails() -> None:
    assert [s["block_id_flag"] for s in sh(LOCALNET["commit"])["commit"]["signatures"]] == [2, 2, 2, 2]
    doc = commit_doc()
    drop(doc, [0])
    assert verify(doc).signed_power == 30  # 30 of 40 is more than 2/3
    doc = commit_doc()
    drop(doc, [1, 3])
    with pytest.raises(HeaderVerificationError, match=r"only 20 of 40 voting power .*\(2 of 4 validators\)"):
        verify(doc)
    doc = commit_doc()
    drop(doc, [0, 2], BLOCK_ID_FLAG_NIL)  # votes for nil do not count either
    with pytest.raises(HeaderVerificationError, match="only 20 of 40"):
        verify(doc)
    doc = commit_doc()
    sh(doc)["commit"]["signatures"].pop()
    with pytest.raises(HeaderVerificationError, match="3 entries for a set of 4 validators"):
        verify(doc)


def test_duplicate_and_unknown_signers_are_refused() -> None:
    doc = commit_doc()
    sigs = sh(doc)["commit"]["signatures"]
    sigs[1] = copy.deepcopy(sigs[0])
    with pytest.raises(HeaderVerificationError, match="signs the commit of header .* twice"):
        verify(doc)
    doc = commit_doc()
    sh(doc)["commit"]["signatures"][3]["validator_address"] = "AB" * 20
    with pytest.raises(HeaderVerificationError, match="signed by ABAB.*not a trusted validator"):
        verify(doc)
    doc = commit_doc()
    sh(doc)["commit"]["signatures"][3]["block_id_flag"] = 7
    with pytest.raises(HeaderVerificationError, match="unknown block_id_flag 7"):
        verify(doc)


def genesis_with(change: Callable[[list[dict[str, Any]]], None]) -> TrustRoot:
    genesis = copy.deepcopy(LOCALNET["genesis"])
    change(genesis["validators"])
    return TrustRoot.from_genesis(genesis)


def outsider_key() -> dict[str, str]:
    return {"type": "tendermint/PubKeyEd25519", "value": base64.b64encode(sha(b"outsider")).decode()}


def test_a_validator_set_with_a_different_key_or_power_fails() -> None:
    def swap_key(vals: list[dict[str, Any]]) -> None:
        vals[2] = {"pub_key": outsider_key(), "power": "10"}

    def reweigh(vals: list[dict[str, Any]]) -> None:
        vals[0]["power"] = "11"

    def shrink(vals: list[dict[str, Any]]) -> None:
        del vals[3]

    for change in (swap_key, reweigh, shrink):
        root = genesis_with(change)
        assert root.validators_hash != trust().validators_hash
        with pytest.raises(HeaderVerificationError, match="not the trusted set .*validator set changed"):
            verify(commit_doc(), root)


@pytest.mark.parametrize("mangle", [
    lambda d: d["signed_header"].pop("commit"),
    lambda d: d["signed_header"]["header"].__setitem__("app_hash", "zz"),
    lambda d: d["signed_header"]["header"].__setitem__("validators_hash", "AB"),
    lambda d: d["signed_header"]["header"].__setitem__("time", "yesterday"),
    lambda d: d["signed_header"]["header"].__setitem__("height", "-3"),
    lambda d: d["signed_header"]["commit"]["signatures"][0].__setitem__("signature", "***"),
    lambda d: d["signed_header"]["commit"].__setitem__("round", "0"),
])
def test_malformed_commit_answers_get_a_clear_error(mangle: Callable[[dict[str, Any]], None]) -> None:
    doc = commit_doc()
    mangle(doc)
    with pytest.raises(HeaderVerificationError, match="malformed|RFC 3339|base64|round"):
        verify(doc)


# ----------------------------------------------------------------------------- unequal powers, own keys

def test_unequal_powers_need_more_than_two_thirds_of_power_not_of_validators() -> None:
    keys = {p: Ed25519PrivateKey.from_private_bytes(sha(b"k%d" % p)) for p in (50, 30, 15, 5)}
    pubs = {p: k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw) for p, k in keys.items()}
    root = TrustRoot("uneq", [Validator(pubs[p], p) for p in (5, 15, 30, 50)])
    assert [v.power for v in root.validators] == [50, 30, 15, 5]
    header = Header.from_json(VECTORS["headers"][0]["json"])
    header = Header(**{**header.__dict__, "chain_id": "uneq", "validators_hash": root.validators_hash,
                       "proposer_address": root.validators[0].address})
    block_id = BlockID(header.hash(), 1, sha(b"parts"))
    ts = Timestamp.parse("2025-01-02T03:04:06.25Z")

    def signed_by(powers: set[int]) -> SignedHeader:
        sigs = []
        for v in root.validators:
            if v.power in powers:
                msg = vote_sign_bytes("uneq", header.height, 0, block_id, ts)
                sigs.append(CommitSig(2, v.address, ts, keys[v.power].sign(msg)))
            else:
                sigs.append(CommitSig(BLOCK_ID_FLAG_ABSENT, b"", Timestamp(0, 0), b""))
        return SignedHeader(header, Commit(header.height, 0, block_id, tuple(sigs)))

    assert verify_signed_header(signed_by({50, 30}), root).signed_power == 80      # 2 of 4 validators, 80 %
    assert verify_signed_header(signed_by({50, 15, 5}), root).signed_power == 70   # 70 > 66.67
    for too_few in ({30, 15, 5}, {50, 15}, {50, 5}):                               # 50, 65, 55 of 100
        with pytest.raises(HeaderVerificationError, match="more than 2/3 is required"):
            verify_signed_header(signed_by(too_few), root)


# ----------------------------------------------------------------------------- provenance

def test_check_query_proof_with_trust_root_verifies_header_and_proof() -> None:
    node = FakeNode()
    res = query_result()
    verdict = check_query_proof(node, res, trust())  # type: ignore[arg-type]
    assert node.asked == [res.height + 1]
    assert verdict["verified"] is True and verdict["header_signatures_checked"] is True
    assert verdict["header_hash"] == LOCALNET["block_id_hash"]
    assert verdict["signed_power"] == 40 and verdict["total_power"] == 40
    assert verdict["app_hash"] == sh(LOCALNET["commit"])["header"]["app_hash"].lower()
    weak = check_query_proof(FakeNode(), res, None)  # type: ignore[arg-type]
    assert weak["verified"] is True and weak["header_signatures_checked"] is False
    assert "signed_power" not in weak


def forged(res: AbciQueryResult, value: bytes) -> tuple[AbciQueryResult, bytes]:
    """The lie a node can tell without a light client: another value, its proof and the root it leads to."""
    proof = RecordProof.decode(res.proof_ops[0][2]).proof
    entries = tuple((k, sha(value) if k == res.key else vh) for k, vh in proof.entries)
    idx = bucket_index(res.key)
    h = bucket_hash(entries)
    for lvl, sib in enumerate(proof.siblings):
        h = inner_hash(sib, h) if (idx >> lvl) & 1 else inner_hash(h, sib)
    fake_op = record_op(res.key, value, Proof(key=proof.key, entries=entries, siblings=proof.siblings))
    return dataclasses.replace(res, value=value, proof=fake_op[2], proof_ops=(fake_op,)), h


def test_a_forged_answer_passes_the_weak_check_and_fails_the_light_client() -> None:
    res = query_result()
    fake_res, fake_root = forged(res, res.value.replace(b"localnet", b"evilnet"))
    assert fake_res.value != res.value

    def lie_app_hash(doc: dict[str, Any]) -> None:
        sh(doc)["header"]["app_hash"] = fake_root.hex().upper()

    weak = check_query_proof(FakeNode(lie_app_hash), fake_res, None)  # type: ignore[arg-type]
    assert weak["verified"] is True and weak["header_signatures_checked"] is False
    with pytest.raises(ProofFailedError, match="header .* is not proven by the trusted validator set: .*fields hash"):
        check_query_proof(FakeNode(lie_app_hash), fake_res, trust())  # type: ignore[arg-type]

    def lie_and_rehash(doc: dict[str, Any]) -> None:
        lie_app_hash(doc)
        rehash(doc)

    with pytest.raises(ProofFailedError, match="signature of validator .* does not verify"):
        check_query_proof(FakeNode(lie_and_rehash), fake_res, trust())  # type: ignore[arg-type]


def test_tampered_value_or_missing_proof_fails_with_trust_root() -> None:
    res = query_result()
    bad = dataclasses.replace(res, value=res.value.replace(b"localnet", b"evilnet"))
    with pytest.raises(ProofFailedError, match="not proven by the app hash of block .*: the answer differs"):
        check_query_proof(FakeNode(), bad, trust())  # type: ignore[arg-type]
    proof = RecordProof.decode(res.proof_ops[0][2]).proof
    bad_record = dataclasses.replace(bad, proof_ops=(record_op(res.key, bad.value, proof),))
    with pytest.raises(ProofFailedError, match="Merkle proof of record .* does not verify"):
        check_query_proof(FakeNode(), bad_record, trust())  # type: ignore[arg-type]
    with pytest.raises(ProofFailedError, match="carries no proof"):
        check_query_proof(FakeNode(), AbciQueryResult(0, "", b"", b"[]", b"", res.height), trust())  # type: ignore[arg-type]
    with pytest.raises(ProofFailedError, match="/commit answer for block .* is unusable"):
        check_query_proof(FakeNode(lambda d: d.pop("signed_header")), res, trust())  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- trust roots

def test_trust_root_files_round_trip(tmp_path: Path) -> None:
    gen = tmp_path / "genesis.json"
    gen.write_text(json.dumps(LOCALNET["genesis"]))
    root = TrustRoot.from_genesis_file(gen)
    assert root.validators_hash == trust().validators_hash and root.chain_id == LOCALNET["genesis"]["chain_id"]
    vs = tmp_path / "validators.json"
    vs.write_text(json.dumps(root.to_json()))
    again = TrustRoot.from_validator_set_file(vs)
    assert again.validators_hash == root.validators_hash and again.total_power == 40
    # /validators-style entries (voting_power) are read as well.
    styled = {"chain_id": root.chain_id, "validators": [
        {"pub_key": v["pub_key"], "voting_power": v["power"]} for v in root.to_json()["validators"]]}
    assert TrustRoot.from_validator_set(styled).validators_hash == root.validators_hash


@pytest.mark.parametrize(("doc", "message"), [
    ({"validators": []}, "no chain_id"),
    ({"chain_id": "c", "validators": []}, "lists no validators"),
    ({"chain_id": "c", "validators": [{"pub_key": {"type": "tendermint/PubKeySecp256k1", "value": "AA=="},
                                       "power": "1"}]}, "not supported"),
    ({"chain_id": "c", "validators": [{"pub_key": outsider_key(), "power": "0"}]}, "positive int64"),
    ({"chain_id": "c", "validators": [{"pub_key": outsider_key(), "power": "ten"}]}, "must be an integer"),
    ({"chain_id": "c", "validators": [{"pub_key": outsider_key(), "power": "1", "address": "AB" * 20}]},
     "does not belong to its key"),
    ({"chain_id": "c", "validators": [{"pub_key": outsider_key(), "power": "1"}] * 2}, "listed twice"),
    ({"chain_id": "c", "validators": [{"pub_key": {"type": "tendermint/PubKeyEd25519", "value": "AAAA"},
                                       "power": "1"}]}, "32 bytes"),
])
def test_bad_trust_roots_are_refused(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(TrustRootError, match=message):
        TrustRoot.from_validator_set(doc)


def test_unreadable_trust_root_files(tmp_path: Path) -> None:
    with pytest.raises(TrustRootError, match="cannot read the genesis file"):
        TrustRoot.from_genesis_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(TrustRootError, match="is not JSON"):
        TrustRoot.from_validator_set_file(bad)


def test_timestamps_parse_like_go() -> None:
    assert Timestamp.parse("1970-01-01T00:00:01.5Z") == Timestamp(1, 500_000_000)
    assert Timestamp.parse("1970-01-01T01:00:00+01:00") == Timestamp(0, 0)
    assert Timestamp.parse("2025-01-02T03:04:05.123456789Z").nanos == 123456789
    assert Timestamp(-62135596800, 0) == Timestamp.parse("0001-01-01T00:00:00Z")
    for bad in ("2025-01-02 03:04:05Z", "2025-13-01T00:00:00Z", "2025-01-01T00:00:00.1234567890Z", 17):
        with pytest.raises(HeaderVerificationError):
            Timestamp.parse(bad)
