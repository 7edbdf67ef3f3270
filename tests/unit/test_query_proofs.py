"""Record-level proofs of whole query answers: lineage, lists, budgets, not-found, checked without a node."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest

from fedledger.abci_app.app import FedLedgerApp
from fedledger.abci_app.context import Reader
from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.base import QueryAnswer
from fedledger.abci_app.modules.federation import keys as fl_keys
from fedledger.abci_app.proto import types as pb
from fedledger.abci_app.query_proofs import (
    PROOF_OP_TYPE,
    AnswerProofError,
    ListingError,
    ProvenView,
    RecordingView,
    UnprovenReadError,
    answer_query,
    verify_answer,
)
from fedledger.abci_app.store import CommittedStore, ProofError
from fedledger.abci_app.store.merkle import bucket_hash, bucket_index, inner_hash
from fedledger.abci_app.store.proof import Proof, RecordProof
from tests.support import DP, POLICY, Chain, Signer, model_ref

TASK = "digits"
Op = tuple[str, bytes, bytes]


def _commit(number: int, base: int, tag: str) -> dict[str, Any]:
    return {"task_id": TASK, "round": number, "base_version": base, "num_examples": 10, "dp": DP, **model_ref(tag)}


@pytest.fixture(scope="module")
def chain() -> Iterator[Chain]:
    """Two full rounds: version 1 from round 1 (two of three contributions), version 2 from round 2."""
    store = CommittedStore(":memory:")
    c = Chain(store)
    owner, agg = Signer(10), Signer(11)
    trainers = [Signer(20 + i) for i in range(3)]  # no more trainers than the round size: all are selected
    c.ok(owner.admit("validator-admin"), agg.admit("aggregator"), *[t.admit("trainer") for t in trainers])
    c.ok(owner.tx("create_task", {
        "task_id": TASK, "model_spec": "mlp-digits", "round_size": 3, "min_contributions": 1,
        "deadline_blocks": 50, "aggregator": agg.hex, "initial_model": model_ref("v0"), "privacy": POLICY}))
    for number in (1, 2):
        c.ok(agg.tx("open_round", {"task_id": TASK, "round": number}))
        # the chain names the base version (the last promoted one), whatever the lifecycle rules are
        base = json.loads(c.sm.query(f"/round/{TASK}/{number}", b"", False).value)["base_version"]
        c.ok(*[t.tx("commit_contribution", _commit(number, base, f"r{number}u{i}"))
               for i, t in enumerate(trainers[:3])])
        c.ok(agg.tx("close_round", {"task_id": TASK, "round": number}))
        c.ok(agg.tx("propose_version", {"task_id": TASK, "round": number, **model_ref(f"v{number}"),
                                        "contributors": sorted(t.hex for t in trainers[:2])}))
    c.trainers = trainers  # type: ignore[attr-defined]
    try:
        yield c
    finally:
        store.close()


def ops_of(res: Any) -> list[Op]:
    return [(PROOF_OP_TYPE, p.key, p.encode()) for p in res.proofs]


def prove(chain: Chain, path: str, data: bytes = b"") -> tuple[Any, list[Op]]:
    res = chain.sm.query(path, data, True)
    return res, ops_of(res)


def check(chain: Chain, path: str, value: bytes, ops: list[Op], data: bytes = b"", **kw: Any) -> Any:
    """The node-free check: (answer bytes, ops, app hash) for the query that was asked."""
    return verify_answer(path, data, value, ops, chain.sm.app_hash, **kw)


def replace_value(op: Op, value: bytes | None) -> Op:
    rec = RecordProof.decode(op[2])
    return (op[0], op[1], RecordProof(value, rec.proof).encode())


def forge(op: Op, value: bytes) -> tuple[Op, bytes]:
    """A self-consistent proof of another value for op's key, and the (wrong) root it leads to."""
    rec = RecordProof.decode(op[2])
    entries = tuple((k, hashlib.sha256(value).digest() if k == rec.key else vh) for k, vh in rec.proof.entries)
    idx = bucket_index(rec.key)
    h = bucket_hash(entries)
    for lvl, sib in enumerate(rec.proof.siblings):
        h = inner_hash(sib, h) if (idx >> lvl) & 1 else inner_hash(h, sib)
    forged = RecordProof(value, Proof(key=rec.key, entries=entries, siblings=rec.proof.siblings))
    return (PROOF_OP_TYPE, rec.key, forged.encode()), h


# ----------------------------------------------------------------------------- lineage

def test_lineage_answer_is_proven_record_by_record(chain: Chain) -> None:
    path = f"/lineage/{TASK}/2"
    res, ops = prove(chain, path)
    assert res.code == 0 and res.key == b""
    lineage = json.loads(res.value)
    ancestors = [a["version"] for a in lineage["ancestors"]]
    assert ancestors and ancestors[-1] == 0 and len(lineage["contributions"]) == 2
    # version 2, its two contributions, its ancestors: exactly the records the answer was built from
    keys = {op[1] for op in ops}
    assert keys == {fl_keys.version_key(TASK, v) for v in (2, *ancestors)} | {
        fl_keys.contribution_key(TASK, 2, who) for who in lineage["version"]["contributors"]}
    proven = check(chain, path, res.value, ops)
    assert proven.present == 3 + len(ancestors) and proven.absent == 0 and proven.listings == ()
    check(chain, path, res.value, list(reversed(ops)))  # op order does not matter


def test_lineage_tampering_fails(chain: Chain) -> None:
    path = f"/lineage/{TASK}/2"
    res, ops = prove(chain, path)
    tampered = res.value.replace(b'"total_examples":20', b'"total_examples":21')
    assert tampered != res.value
    with pytest.raises(AnswerProofError, match="answer differs"):
        check(chain, path, tampered, ops)
    # an answer to another question (version 1's lineage) does not pass for version 2's
    other, other_ops = prove(chain, f"/lineage/{TASK}/1")
    with pytest.raises(AnswerProofError):
        check(chain, path, other.value, other_ops)
    for i in range(len(ops)):  # dropping any one record
        with pytest.raises(UnprovenReadError, match="does not prove"):
            check(chain, path, res.value, ops[:i] + ops[i + 1:])
    # altering a record's value (answer adjusted to match): its Merkle proof no longer verifies
    contrib = next(i for i, op in enumerate(ops) if op[1].startswith(b"fl/contrib/"))
    raw = RecordProof.decode(ops[contrib][2]).value
    assert raw is not None
    altered = raw.replace(b'"num_examples":10', b'"num_examples":99')
    bad = ops[:contrib] + [replace_value(ops[contrib], altered)] + ops[contrib + 1:]
    with pytest.raises(AnswerProofError, match="Merkle proof of record .* does not verify"):
        check(chain, path, res.value.replace(raw, altered), bad)
    # a forged record (a consistent bucket for a fake value) leads to another root
    forged, fake_root = forge(ops[contrib], altered)
    assert fake_root != chain.sm.app_hash
    with pytest.raises(AnswerProofError, match="does not verify"):
        check(chain, path, res.value.replace(raw, altered), ops[:contrib] + [forged] + ops[contrib + 1:])


def test_extra_records_and_bad_ops_fail(chain: Chain) -> None:
    path = f"/lineage/{TASK}/2"
    res, ops = prove(chain, path)
    _, task_ops = prove(chain, f"/task/{TASK}")
    # a genuine, verifying record that the answer does not use
    with pytest.raises(AnswerProofError, match="does not use"):
        check(chain, path, res.value, ops + task_ops)
    # a forged extra record
    forged, _ = forge(task_ops[0], b'{"evil":1}')
    with pytest.raises(AnswerProofError, match="does not verify"):
        check(chain, path, res.value, ops + [forged])
    with pytest.raises(AnswerProofError, match="proven twice"):
        check(chain, path, res.value, ops + ops[:1])
    with pytest.raises(AnswerProofError, match="has type"):
        check(chain, path, res.value, [("ics23:iavl", op[1], op[2]) for op in ops])
    with pytest.raises(AnswerProofError, match="labelled"):
        check(chain, path, res.value, [(PROOF_OP_TYPE, b"fl/task/x", ops[0][2]), *ops[1:]])
    with pytest.raises(AnswerProofError, match="malformed"):
        check(chain, path, res.value, [(PROOF_OP_TYPE, ops[0][1], ops[0][2][:-1]), *ops[1:]])
    with pytest.raises(AnswerProofError, match="does not verify"):  # a stale or wrong app hash
        verify_answer(path, b"", res.value, ops, hashlib.sha256(b"another state").digest())


# ----------------------------------------------------------------------------- lists

def test_contributions_list_is_complete_by_the_round_counter(chain: Chain) -> None:
    path = f"/contributions/{TASK}/1"
    res, ops = prove(chain, path)
    listed = json.loads(res.value)
    assert len(listed) == 3
    proven = check(chain, path, res.value, ops)
    assert proven.listings == (fl_keys.contribution_prefix(TASK, 1),)
    assert fl_keys.round_key(TASK, 1) in {op[1] for op in ops}  # the counter is proven with the list
    # a node that leaves one contribution out, answer and proofs both, is caught by the counter
    drop = next(i for i, op in enumerate(ops) if op[1].startswith(b"fl/contrib/"))
    short = json.dumps([c for c in listed if c["participant"] not in ops[drop][1].decode()],
                       sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises(ListingError, match=r"counts 3 \(contributions\), but the listing holds 2"):
        check(chain, path, short, ops[:drop] + ops[drop + 1:])
    # dropping the counter record itself
    counter = next(i for i, op in enumerate(ops) if op[1] == fl_keys.round_key(TASK, 1))
    with pytest.raises(UnprovenReadError):
        check(chain, path, res.value, ops[:counter] + ops[counter + 1:])
    # a round that does not exist lists nothing, and that is proven by the round record's absence
    empty, empty_ops = prove(chain, f"/contributions/{TASK}/9")
    assert empty.value == b"[]" and [RecordProof.decode(op[2]).value for op in empty_ops] == [None]
    check(chain, f"/contributions/{TASK}/9", empty.value, empty_ops)


def test_versions_list_is_complete_by_numbering(chain: Chain) -> None:
    path = f"/versions/{TASK}"
    res, ops = prove(chain, path)
    assert [v["version"] for v in json.loads(res.value)] == [0, 1, 2]
    proven = check(chain, path, res.value, ops)
    assert proven.present == 3 and proven.absent == 1  # version 3 is proven absent
    last = next(i for i, op in enumerate(ops) if op[1] == fl_keys.version_key(TASK, 2))
    with pytest.raises(UnprovenReadError):  # leaving out the newest version needs a proof that it is absent
        check(chain, path, res.value, ops[:last] + ops[last + 1:])
    middle = next(i for i, op in enumerate(ops) if op[1] == fl_keys.version_key(TASK, 1))
    with pytest.raises(ListingError, match="must be numbered 0..1 in order"):
        check(chain, path, res.value, ops[:middle] + ops[middle + 1:])


def test_a_listing_without_a_completeness_rule_is_refused(chain: Chain) -> None:
    def nonces(view: Reader, args: list[str]) -> QueryAnswer:
        return QueryAnswer([k.decode() for k, _ in view.iter_prefix(b"auth/nonce/")], None)

    queries = {"nonces": nonces}
    recorder = RecordingView(chain.store)
    key, value = answer_query(queries, "/nonces", b"", recorder, True)
    assert len(json.loads(value)) == 5  # owner, aggregator, three trainers
    ops = [(PROOF_OP_TYPE, k, RecordProof(*chain.store.prove(k)).encode()) for k in recorder.reads]
    with pytest.raises(ListingError, match="no rule can prove such a list complete"):
        verify_answer("/nonces", b"", value, ops, chain.sm.app_hash, queries=queries)


def test_a_query_that_swallows_errors_still_fails(chain: Chain) -> None:
    def lenient(view: Reader, args: list[str]) -> QueryAnswer:
        try:
            raw = view.get(fl_keys.task_key(TASK))
        except Exception:  # swallowing everything is the point of the test
            raw = None
        return QueryAnswer({"exists": raw is not None}, None)

    with pytest.raises(UnprovenReadError):
        verify_answer("/lenient", b"", b'{"exists":false}', [], chain.sm.app_hash, queries={"lenient": lenient})


# ----------------------------------------------------------------------------- absence, errors, other paths

def test_a_read_of_an_absent_key_is_proven_absent(chain: Chain) -> None:
    stranger = did_from_private_key(Signer(99).key)
    path = f"/budget/{TASK}/{stranger}"
    res, ops = prove(chain, path)
    assert res.code == 0 and json.loads(res.value)["epsilon_spent_micro"] == 0
    records = {op[1]: RecordProof.decode(op[2]).value for op in ops}
    assert sorted(v is None for v in records.values()) == [False, True]  # policy present, spend absent
    proven = check(chain, path, res.value, ops)
    assert proven.present == 1 and proven.absent == 1
    absent_key = next(k for k, v in records.items() if v is None)
    # a node claiming the stranger spent something must prove a spend record: it cannot
    lie = json.loads(res.value) | {"epsilon_spent_micro": 5}
    with pytest.raises(AnswerProofError, match="answer differs"):
        check(chain, path, json.dumps(lie, sort_keys=True, separators=(",", ":")).encode(), ops)
    with pytest.raises(AnswerProofError, match="does not verify: .*not in the proof.s bucket"):
        check(chain, path, res.value, [op if op[1] != absent_key else replace_value(op, b"{}") for op in ops])
    # a trainer who did contribute: the spend record is proven present instead
    spender = did_from_private_key(chain.trainers[0].key)  # type: ignore[attr-defined]
    res2, ops2 = prove(chain, f"/budget/{TASK}/{spender}")
    assert check(chain, f"/budget/{TASK}/{spender}", res2.value, ops2, key=res2.key).absent == 0


def test_not_found_answers_are_proven(chain: Chain) -> None:
    res, ops = prove(chain, "/task/nope")
    assert res.code == Code.QUERY_NOT_FOUND and len(ops) == 1
    check(chain, "/task/nope", b"", ops, code=res.code, log=res.log)
    # the task exists: a node cannot deny it
    _, real_ops = prove(chain, f"/task/{TASK}")
    with pytest.raises(AnswerProofError, match="code 21, but the proven records give code 0"):
        check(chain, f"/task/{TASK}", b"", real_ops, code=int(Code.QUERY_NOT_FOUND), log="task 'digits' not found")
    with pytest.raises(AnswerProofError, match="does not verify"):  # nor forge its absence
        check(chain, f"/task/{TASK}", b"", [replace_value(real_ops[0], None)], code=int(Code.QUERY_NOT_FOUND),
              log=f"task {TASK!r} not found")


def test_single_record_nonce_and_raw_key_answers(chain: Chain) -> None:
    for path, data in ((f"/task/{TASK}", b""), (f"/version/{TASK}/latest", b""), (f"/round/{TASK}/2", b""),
                       (f"/nonce/{Signer(11).hex}", b""), ("/key", b"meta/chain_id"), ("/key", b"no/such/key")):
        res, ops = prove(chain, path, data)
        assert res.code == 0 and ops, path
        check(chain, path, res.value, ops, data=data, key=res.key)
        with pytest.raises(AnswerProofError):
            check(chain, path, res.value + b" ", ops, data=data, key=res.key)
    # the answer names its record: another record's key does not pass
    res, ops = prove(chain, f"/task/{TASK}")
    assert res.key == fl_keys.task_key(TASK) and res.proof  # the bare single-record proof is still there
    with pytest.raises(AnswerProofError, match="names record"):
        check(chain, f"/task/{TASK}", res.value, ops, key=b"fl/task/other")
    # asking about another raw key than the one proven
    res, ops = prove(chain, "/key", b"meta/chain_id")
    with pytest.raises(UnprovenReadError):
        check(chain, "/key", res.value, ops, data=b"fl/task/digits", key=res.key)


def test_abci_query_carries_one_proof_op_per_record(chain: Chain) -> None:
    app = FedLedgerApp(chain.sm)
    path = f"/lineage/{TASK}/2"
    resp = app.query(pb.RequestQuery(path=path, prove=True))
    ops = [(op.type, op.key, op.data) for op in resp.proof_ops.ops]
    assert len(ops) == 3 + len(json.loads(resp.value)["ancestors"]) and {op[0] for op in ops} == {PROOF_OP_TYPE}
    check(chain, path, resp.value, ops)
    assert not app.query(pb.RequestQuery(path=path, prove=False)).proof_ops.ops


def test_proven_view_refuses_what_it_does_not_hold() -> None:
    view = ProvenView({b"a/1": b"x", b"a/2": None})
    assert view.get(b"a/1") == b"x" and view.get(b"a/2") is None
    with pytest.raises(UnprovenReadError):
        view.get(b"a/3")
    assert isinstance(view.failure, UnprovenReadError)
    with pytest.raises(ListingError):
        list(view.iter_prefix(b"a/"))


# ----------------------------------------------------------------------------- encoding

def test_record_proof_encoding_round_trips_and_rejects_garbage(chain: Chain) -> None:
    _, ops = prove(chain, f"/versions/{TASK}")
    for _, key, data in ops:
        rec = RecordProof.decode(data)
        assert rec.key == key and rec.encode() == data
        rec.verify(chain.sm.app_hash)
    data = ops[0][2]
    assert data[0] == 2 and Proof.decode(RecordProof.decode(data).proof.encode()).key == ops[0][1]
    for bad, why in ((b"", "truncated"), (b"\x01" + data[1:], "version"), (data[:1] + b"\x07" + data[2:], "flag"),
                     (data + b"\x00", "trailing"), (data[:2] + b"\xff\xff\xff\xff" + data[6:], "exceeds"),
                     (data[:4], "truncated")):
        with pytest.raises(ProofError, match=why):
            RecordProof.decode(bad)
    with pytest.raises(ProofError):
        Proof.decode(data)  # a record proof never parses as a bare proof, nor the reverse
    with pytest.raises(ProofError):
        RecordProof.decode(RecordProof.decode(data).proof.encode())


def test_server_side_errors_carry_no_proof_for_bad_queries(chain: Chain) -> None:
    res = chain.sm.query("/../etc", b"", True)
    assert res.code == Code.BAD_QUERY and res.proofs == ()
    with pytest.raises(TxError):
        answer_query({}, "/nothing", b"", chain.store, True)


def test_every_query_kind_is_proven_or_refused_only_for_an_uncovered_listing(chain: Chain) -> None:
    """The recording view and the re-derivation agree for every module's queries, whatever they read."""
    trainer = chain.trainers[0]  # type: ignore[attr-defined]
    did = did_from_private_key(trainer.key)
    from tests.support import ORG

    candidates = {
        "task": [TASK, "nope"], "round": [f"{TASK}/1", f"{TASK}/7"], "version": [f"{TASK}/1", f"{TASK}/latest"],
        "contribution": [f"{TASK}/1/{trainer.hex}"], "contributions": [f"{TASK}/2"], "versions": [TASK],
        "lineage": [f"{TASK}/1"], "budget": [f"{TASK}/{did}"], "org": [ORG], "member": [did],
        "whois": [trainer.hex], "reputation": [did], "reputation-history": [did], "reputation-params": [""],
        "proposal": ["1"], "proposals": [""], "governance": [""], "lifecycle": [TASK],
        "attestations": [f"{TASK}/1"],
    }
    kinds = sorted(chain.sm.queries)
    assert {"lineage", "contributions", "versions", "budget"} <= set(kinds)
    proven, refused = [], []
    for kind in kinds:
        for arg in candidates.get(kind, []):
            path = f"/{kind}/{arg}".rstrip("/")
            res, ops = prove(chain, path)
            if res.code not in (0, Code.QUERY_NOT_FOUND):
                continue
            plain = chain.sm.query(path, b"", False)  # recording the reads does not change the answer
            assert (plain.code, plain.value, plain.key) == (res.code, res.value, res.key), path
            try:
                verify_answer(path, b"", res.value, ops, chain.sm.app_hash, key=res.key, code=res.code, log=res.log,
                              height=chain.sm.height)
            except ListingError as exc:
                assert "no rule can prove" in str(exc), (path, exc)
                refused.append(path)
            else:
                proven.append(path)
    assert f"/lineage/{TASK}/1" in proven and f"/versions/{TASK}" in proven and "/task/nope" in proven
    assert len(proven) >= 12, (proven, refused)
    if "reputation" in kinds:  # an answer that reports its height is re-derived at the height it claims
        path = f"/reputation/{did}"
        res, ops = prove(chain, path)
        assert json.loads(res.value)["now_height"] == chain.sm.height
        with pytest.raises(AnswerProofError, match="answer differs"):
            verify_answer(path, b"", res.value, ops, chain.sm.app_hash, key=res.key, height=chain.sm.height + 5)


def test_listing_rules_cover_only_the_exact_key_layout() -> None:
    from fedledger.abci_app.query_proofs import find_listing_rule

    assert find_listing_rule(fl_keys.contribution_prefix(TASK, 1)) is not None
    assert find_listing_rule(fl_keys.contribution_prefix(TASK, 10**12)) is not None  # more than 10 digits
    assert find_listing_rule(fl_keys.version_prefix(TASK)) is not None
    for prefix in (b"fl/contrib/digits/00000000001/", b"fl/contrib/digits/0000000001", b"fl/contrib/digits/",
                   b"fl/version/", b"fl/version/Digits/", b"fl/version/digits/0", b"auth/nonce/", b""):
        assert find_listing_rule(prefix) is None, prefix
