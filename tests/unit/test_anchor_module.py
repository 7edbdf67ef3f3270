"""The anchor module of the state machine: who records anchors, contiguity, committed heights, queries and proofs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fedledger.abci_app.errors import Code
from fedledger.abci_app.query_proofs import PROOF_OP_TYPE, AnswerProofError, verify_answer
from tests.support import Chain, Signer


def body(from_height: int, to_height: int, tx: str = "11", **changes: Any) -> dict[str, Any]:
    b = {"scheme": "fedledger-checkpoint-v1", "public_chain_id": 1337, "contract": "0x" + "ab" * 20,
         "tx_hash": "0x" + tx * 32, "block_number": 7, "block_hash": "0x" + "cd" * 32, "root": "0x" + "ef" * 32,
         "from_height": from_height, "to_height": to_height}
    b.update(changes)
    return b


def query(chain: Chain, path: str) -> Any:
    res = chain.sm.query(path, b"", False)
    assert res.code == 0, res.log
    return json.loads(res.value)


@pytest.fixture
def admin(chain: Chain) -> Signer:
    signer = Signer(50)
    chain.ok(signer.admit("validator-admin"))
    for _ in range(5):
        chain.ok()
    return signer


def test_record_and_query(chain: Chain, admin: Signer) -> None:
    (res,) = chain.ok(admin.tx("record_anchor", body(1, 4)))
    attrs = dict(res.events[0].attributes)
    assert attrs["action"] == "record_anchor" and attrs["seq"] == "1" and attrs["to_height"] == "4"
    chain.ok(admin.tx("record_anchor", body(5, 6, tx="22")))
    first = query(chain, "/anchor/1")
    assert first["checkpoints"] == 4 and first["recorded_height"] == 7 and first["signer"] == admin.hex
    assert first["recorder"].startswith("did:key:") and first["tx_hash"] == "0x" + "11" * 32
    assert query(chain, "/anchor/latest")["seq"] == 2
    listing = query(chain, "/anchors")
    assert listing["count"] == 2 and listing["anchored_to"] == 6 and [a["seq"] for a in listing["anchors"]] == [1, 2]
    assert [a["seq"] for a in query(chain, "/anchors/2")["anchors"]] == [2]
    for height, seq in ((1, 1), (4, 1), (5, 2), (6, 2)):
        assert query(chain, f"/anchor-at/{height}")["seq"] == seq
    for path, code in (("/anchor-at/7", Code.QUERY_NOT_FOUND), ("/anchor-at/0", Code.QUERY_NOT_FOUND),
                       ("/anchor/3", Code.QUERY_NOT_FOUND), ("/anchor/x", Code.BAD_QUERY),
                       ("/anchor-at", Code.BAD_QUERY)):
        assert chain.sm.query(path, b"", False).code == code, path
    assert "not anchored yet (anchored up to height 6)" in chain.sm.query("/anchor-at/9", b"", False).log


def test_covering_search_over_many_anchors(chain: Chain, admin: Signer) -> None:
    ends = [1, 3, 4, 8, 9, 10, 15]
    for _ in range(10):
        chain.ok()
    start = 1
    for i, end in enumerate(ends):
        chain.ok(admin.tx("record_anchor", body(start, end, tx=f"{i + 10:02d}")))
        start = end + 1
    for height in range(1, 16):
        seq = next(i + 1 for i, end in enumerate(ends) if height <= end)
        assert query(chain, f"/anchor-at/{height}")["seq"] == seq


@pytest.mark.parametrize(("bad", "code", "log"), [
    (body(2, 4), Code.ANCHOR_RANGE, "the next one must start at height 1, this one starts at 2"),
    (body(1, 7), Code.ANCHOR_RANGE, "to_height 7 has no checkpoint yet: in block 7 anchors can reach height 6"),
    (body(1, 4, scheme="v9"), Code.INVALID_BODY, "scheme must be one of"),
    (body(3, 2), Code.INVALID_BODY, "to_height 2 is below from_height 3"),
    (body(1, 4, tx_hash="0x" + "AB" * 32), Code.INVALID_BODY, "tx_hash must be a lower-case"),
    (body(1, 4, contract="0x12"), Code.INVALID_BODY, "contract must be"),
    (body(1, 4, public_chain_id=0), Code.INVALID_BODY, "public_chain_id must be an integer"),
    ({"root": "0x" + "00" * 32}, Code.INVALID_BODY, "body fields wrong"),
])
def test_refused_records(chain: Chain, admin: Signer, bad: dict[str, Any], code: Code, log: str) -> None:
    (res,) = chain.block(admin.tx("record_anchor", bad))
    assert res.code == code and log in res.log, res.log
    assert chain.sm.query("/anchor/latest", b"", False).code == Code.QUERY_NOT_FOUND


def test_same_public_tx_cannot_back_two_anchors(chain: Chain, admin: Signer) -> None:
    chain.ok(admin.tx("record_anchor", body(1, 2)))
    (res,) = chain.block(admin.tx("record_anchor", body(3, 4)))
    assert res.code == Code.ANCHOR_TX_RECORDED and "already backs an anchor" in res.log


@pytest.mark.parametrize("role", ["trainer", "aggregator", "evaluator", "auditor"])
def test_only_validator_admins_record(chain: Chain, role: str) -> None:
    other = Signer(60)
    chain.ok(other.admit(role))
    chain.ok()
    (res,) = chain.block(other.tx("record_anchor", body(1, 1)))
    assert res.code == Code.UNAUTHORIZED and "may not record anchors" in res.log
    stranger = Signer(61)
    (res,) = chain.block(stranger.tx("record_anchor", body(1, 1)))
    assert res.code == Code.UNAUTHORIZED


def test_answers_are_provable(chain: Chain, admin: Signer) -> None:
    for i, end in enumerate((2, 5, 6)):
        chain.ok(admin.tx("record_anchor", body([1, 3, 6][i], end, tx=f"{i + 30:02d}")))
    for path in ("/anchor-at/4", "/anchors", "/anchor/latest"):
        res = chain.sm.query(path, b"", True)
        assert res.code == 0
        ops = [(PROOF_OP_TYPE, p.key, p.encode()) for p in res.proofs]
        proven = verify_answer(path, b"", res.value, ops, chain.sm.app_hash, key=res.key)
        assert proven is not None
        tampered = res.value.replace(b'"to_height":6', b'"to_height":9')
        if tampered != res.value:
            with pytest.raises(AnswerProofError):
                verify_answer(path, b"", tampered, ops, chain.sm.app_hash, key=res.key)


def reanchor_body(n: int, lo: int, hi: int, tx: str, **changes: Any) -> dict[str, Any]:
    return {**body(lo, hi, tx=tx, block_hash="0x" + "9a" * 32, block_number=12), "seq": n, **changes}


def test_reanchor_points_the_anchor_at_its_new_tx_and_keeps_the_old_one(chain: Chain, admin: Signer) -> None:
    chain.ok(admin.tx("record_anchor", body(1, 2)))
    chain.ok(admin.tx("record_anchor", body(3, 4, tx="22")))
    (res,) = chain.ok(admin.tx("reanchor", reanchor_body(1, 1, 2, tx="33")))
    attrs = dict(res.events[0].attributes)
    assert attrs["action"] == "reanchor" and attrs["seq"] == "1" and attrs["replaced_tx_hash"] == "0x" + "11" * 32
    rec = query(chain, "/anchor/1")
    assert rec["tx_hash"] == "0x" + "33" * 32 and rec["block_hash"] == "0x" + "9a" * 32 and rec["block_number"] == 12
    assert [r["tx_hash"] for r in rec["replaced"]] == ["0x" + "11" * 32]
    assert query(chain, "/anchor-at/2")["tx_hash"] == "0x" + "33" * 32
    assert "replaced" not in query(chain, "/anchor/2")
    listing = query(chain, "/anchors")
    assert listing["count"] == 2 and listing["anchored_to"] == 4  # a reanchor adds no anchor and moves no range
    # The same tx mined again in another block (a reorg that re-included it) is a reanchor too.
    chain.ok(admin.tx("reanchor", reanchor_body(1, 1, 2, tx="33", block_hash="0x" + "9b" * 32)))
    assert [r["block_hash"] for r in query(chain, "/anchor/1")["replaced"]] == ["0x" + "cd" * 32, "0x" + "9a" * 32]
    # Neither the replaced tx nor the new one may back any other anchor.
    for tx in ("11", "33"):
        (res,) = chain.block(admin.tx("record_anchor", body(5, 5, tx=tx)))
        assert res.code == Code.ANCHOR_TX_RECORDED, res.log


@pytest.mark.parametrize(("changes", "code", "log"), [
    ({"root": "0x" + "01" * 32}, Code.ANCHOR_MISMATCH, "root is"),
    ({"to_height": 3}, Code.ANCHOR_MISMATCH, "to_height is 2 there, 3 here"),
    ({"public_chain_id": 1}, Code.ANCHOR_MISMATCH, "public_chain_id is 1337 there, 1 here"),
    ({"contract": "0x" + "12" * 20}, Code.ANCHOR_MISMATCH, "contract is"),
    ({"seq": 3}, Code.QUERY_NOT_FOUND, "anchor 3 does not exist (2 anchors recorded)"),
    ({"tx_hash": "0x" + "22" * 32}, Code.ANCHOR_TX_RECORDED, "already backs an anchor"),
    ({"tx_hash": "0x" + "11" * 32, "block_hash": "0x" + "cd" * 32}, Code.ANCHOR_TX_RECORDED, "is already backed by"),
    ({"seq": 0}, Code.INVALID_BODY, "seq must be an integer"),
])
def test_refused_reanchors(chain: Chain, admin: Signer, changes: dict[str, Any], code: Code, log: str) -> None:
    chain.ok(admin.tx("record_anchor", body(1, 2)))
    chain.ok(admin.tx("record_anchor", body(3, 4, tx="22")))
    before = query(chain, "/anchor/1")
    (res,) = chain.block(admin.tx("reanchor", reanchor_body(1, 1, 2, tx="33", **changes)))
    assert res.code == code and log in res.log, res.log
    assert query(chain, "/anchor/1") == before


def test_only_validator_admins_reanchor(chain: Chain, admin: Signer) -> None:
    chain.ok(admin.tx("record_anchor", body(1, 2)))
    other = Signer(62)
    chain.ok(other.admit("aggregator"))
    (res,) = chain.block(other.tx("reanchor", reanchor_body(1, 1, 2, tx="33")))
    assert res.code == Code.UNAUTHORIZED and "may not re-anchor" in res.log


def test_reanchors_per_anchor_are_bounded(chain: Chain, admin: Signer) -> None:
    from fedledger.abci_app.modules.anchor.handlers import MAX_REANCHORS

    chain.ok(admin.tx("record_anchor", body(1, 2)))
    for i in range(MAX_REANCHORS):
        chain.ok(admin.tx("reanchor", reanchor_body(1, 1, 2, tx=f"{i + 40:02d}")))
    (res,) = chain.block(admin.tx("reanchor", reanchor_body(1, 1, 2, tx="99")))
    assert res.code == Code.ANCHOR_MISMATCH and f"re-anchored {MAX_REANCHORS} times" in res.log
    assert len(query(chain, "/anchor/1")["replaced"]) == MAX_REANCHORS
