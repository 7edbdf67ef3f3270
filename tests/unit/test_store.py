"""Unit and property tests for the authenticated state store (fedledger.abci_app.store)."""

from __future__ import annotations

import hashlib
import sqlite3
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedledger.abci_app.store import (
    EMPTY_ROOT,
    CommittedStore,
    CorruptStoreError,
    HeightError,
    Proof,
    ProofError,
    StaleStateError,
    StateStoreError,
    WorkingState,
    verify_proof,
)
from fedledger.abci_app.store.kvdb import prefix_upper_bound
from fedledger.abci_app.store.merkle import BUCKET_BITS, NUM_BUCKETS, MerkleTree, bucket_index

PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _colliding_keys() -> list[bytes]:
    """Keys that all fall into one bucket, so multi-entry buckets get exercised."""
    groups: dict[int, list[bytes]] = defaultdict(list)
    for i in range(60_000):
        k = b"c/%d" % i
        groups[bucket_index(k)].append(k)
    best = max(groups.values(), key=len)
    assert len(best) >= 4
    return best


COLLIDE = _colliding_keys()
POOL = COLLIDE[:4] + [b"acct/%03d" % i for i in range(8)] + [b"b", b"b\x00", b"b\xff", b"\xff\xff"]

keys_st = st.sampled_from(POOL)
values_st = st.binary(min_size=0, max_size=8)
# ("set", key, value) or ("del", key, None)
op_st = st.one_of(
    st.tuples(st.just("set"), keys_st, values_st),
    st.tuples(st.just("del"), keys_st, st.none()),
)


def apply_op(ws: WorkingState, model: dict[bytes, bytes], op: tuple[str, bytes, bytes | None]) -> None:
    kind, key, value = op
    if kind == "set":
        assert value is not None
        ws.set(key, value)
        model[key] = value
    else:
        ws.delete(key)
        model.pop(key, None)


def store_with(items: dict[bytes, bytes], order: list[bytes] | None = None) -> CommittedStore:
    s = CommittedStore(":memory:")
    ws = s.working()
    for k in order if order is not None else sorted(items):
        ws.set(k, items[k])
    s.commit(ws, 1)
    return s


def reference_root(items: dict[bytes, bytes]) -> bytes:
    """Independent, naive implementation of the documented hashing rules over all 65536 buckets."""
    sha = hashlib.sha256
    buckets: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
    for k, v in items.items():
        buckets[int.from_bytes(sha(k).digest()[:2], "big")].append((k, sha(v).digest()))
    level = []
    for i in range(NUM_BUCKETS):
        entries = sorted(buckets.get(i, []))
        pre = b"\x00" + len(entries).to_bytes(4, "big")
        for k, vh in entries:
            pre += len(k).to_bytes(4, "big") + k + vh
        level.append(sha(pre).digest())
    while len(level) > 1:
        level = [sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
    return level[0]


# ---------------------------------------------------------------- root semantics


def test_empty_root_matches_reference() -> None:
    s = CommittedStore(":memory:")
    assert s.height == 0
    assert s.app_hash == EMPTY_ROOT == reference_root({})
    assert s.working().root() == EMPTY_ROOT


def test_root_matches_independent_reference() -> None:
    items = {k: b"value-" + k for k in POOL}
    assert store_with(items).app_hash == reference_root(items)
    assert MerkleTree.build(items.items()).root == reference_root(items)


@PROPS
@given(st.lists(op_st, max_size=30))
def test_root_changes_iff_content_changes(ops: list[tuple[str, bytes, bytes | None]]) -> None:
    s = store_with({POOL[0]: b"base", POOL[5]: b"x"})
    ws = s.working()
    model = {POOL[0]: b"base", POOL[5]: b"x"}
    seen: dict[bytes, frozenset[tuple[bytes, bytes]]] = {ws.root(): frozenset(model.items())}
    for op in ops:
        before_model, before_root = dict(model), ws.root()
        apply_op(ws, model, op)
        after = ws.root()
        assert (after == before_root) == (model == before_model)
        # Same root <=> same content, also across non-adjacent steps (history independence).
        content = frozenset(model.items())
        if after in seen:
            assert seen[after] == content
        else:
            assert content not in seen.values()
            seen[after] = content
    # The committed tree is untouched by root() on the overlay.
    assert s.app_hash == store_with({POOL[0]: b"base", POOL[5]: b"x"}).app_hash


def test_set_same_value_and_delete_reset() -> None:
    s = store_with({b"a": b"1", COLLIDE[0]: b"2", COLLIDE[1]: b"3"})
    ws = s.working()
    r0 = ws.root()
    ws.set(b"a", b"1")
    assert ws.root() == r0
    ws.delete(COLLIDE[1])
    r1 = ws.root()
    assert r1 != r0
    ws.set(COLLIDE[1], b"3")
    assert ws.root() == r0
    ws.delete(b"never-there")
    assert ws.root() == r0
    ws.set(b"a", b"")  # empty value is a value, not a deletion
    assert ws.root() != r0
    assert ws.get(b"a") == b""


@PROPS
@given(
    st.dictionaries(keys_st, values_st, max_size=len(POOL)),
    st.randoms(use_true_random=False),
)
def test_root_independent_of_write_order(items: dict[bytes, bytes], rnd: object) -> None:
    order = sorted(items)
    shuffled = list(order)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    a = store_with(items, order)
    b = store_with(items, shuffled)
    assert a.app_hash == b.app_hash == MerkleTree.build(items.items()).root
    # Reaching the same content via extra writes and deletes, over two blocks, gives the same root.
    c = CommittedStore(":memory:")
    ws = c.working()
    for k in reversed(POOL):
        ws.set(k, b"junk")
    c.commit(ws, 1)
    ws = c.working()
    for k in POOL:
        if k in items:
            ws.set(k, items[k])
        else:
            ws.delete(k)
    assert c.commit(ws, 2) == a.app_hash


# ---------------------------------------------------------------- proofs

ABSENT = [COLLIDE[4] if len(COLLIDE) > 4 else b"zz", b"nope", b"acct/999"]


@PROPS
@given(st.dictionaries(keys_st, values_st, max_size=len(POOL)))
def test_proofs_verify_and_reject_tampering(items: dict[bytes, bytes]) -> None:
    s = store_with(items)
    root = s.app_hash
    for key in POOL + ABSENT:
        value, proof = s.prove(key)
        assert value == items.get(key)
        verify_proof(root, key, value, proof)
        # wrong value
        wrong = b"different" if value is None else value + b"!"
        with pytest.raises(ProofError):
            verify_proof(root, key, wrong, proof)
        if value is not None:
            with pytest.raises(ProofError):
                verify_proof(root, key, None, proof)
        # wrong key: the same proof does not prove anything about another key
        with pytest.raises(ProofError):
            verify_proof(root, key + b"\x00", value, proof)
        # tampered sibling (each level)
        for lvl in range(BUCKET_BITS):
            sibs = list(proof.siblings)
            sibs[lvl] = bytes([sibs[lvl][0] ^ 1]) + sibs[lvl][1:]
            with pytest.raises(ProofError):
                verify_proof(root, key, value, Proof(proof.key, proof.entries, tuple(sibs)))
        # tampered bucket entries: changed value hash, dropped entry, extra entry
        for i, (k, vh) in enumerate(proof.entries):
            ents = list(proof.entries)
            ents[i] = (k, bytes([vh[0] ^ 0x80]) + vh[1:])
            with pytest.raises(ProofError):
                verify_proof(root, key, value, Proof(proof.key, tuple(ents), proof.siblings))
            dropped = proof.entries[:i] + proof.entries[i + 1 :]
            # dropping the key's own entry must not turn into a valid absence proof
            claim = None if k == key else value
            with pytest.raises(ProofError):
                verify_proof(root, key, claim, Proof(proof.key, dropped, proof.siblings))
        extra = tuple(sorted(proof.entries + ((key + b"~x", b"\x00" * 32),)))
        with pytest.raises(ProofError):
            verify_proof(root, key, value, Proof(proof.key, extra, proof.siblings))
        # wrong root
        with pytest.raises(ProofError):
            verify_proof(EMPTY_ROOT if root != EMPTY_ROOT else b"\x01" * 32, key, value, proof)


def test_proof_of_absence_in_shared_bucket() -> None:
    s = store_with({COLLIDE[0]: b"a", COLLIDE[2]: b"c"})
    value, proof = s.prove(COLLIDE[1])
    assert value is None
    assert [k for k, _ in proof.entries] == sorted([COLLIDE[0], COLLIDE[2]])
    verify_proof(s.app_hash, COLLIDE[1], None, proof)
    with pytest.raises(ProofError, match="not in the proof's bucket"):
        verify_proof(s.app_hash, COLLIDE[1], b"a", proof)
    # A present key's proof is a presence proof and cannot claim absence.
    _, p0 = s.prove(COLLIDE[0])
    with pytest.raises(ProofError, match="absence is not proven"):
        verify_proof(s.app_hash, COLLIDE[0], None, p0)
    # Unsorted entries are rejected even if otherwise plausible.
    swapped = Proof(proof.key, tuple(reversed(proof.entries)), proof.siblings)
    with pytest.raises(ProofError, match="sorted"):
        verify_proof(s.app_hash, COLLIDE[1], None, swapped)


def test_proof_entry_from_foreign_bucket_rejected() -> None:
    s = store_with({b"x": b"1"})
    _, proof = s.prove(b"x")
    other = next(k for k in POOL if bucket_index(k) != bucket_index(b"x"))
    forged = Proof(b"x", tuple(sorted(proof.entries + ((other, b"\x00" * 32),))), proof.siblings)
    with pytest.raises(ProofError, match="does not belong"):
        verify_proof(s.app_hash, b"x", b"1", forged)


@PROPS
@given(st.dictionaries(keys_st, values_st, max_size=len(POOL)), st.sampled_from(POOL + ABSENT))
def test_proof_encoding_round_trip(items: dict[bytes, bytes], key: bytes) -> None:
    s = store_with(items)
    value, proof = s.prove(key)
    data = proof.encode()
    back = Proof.decode(data)
    assert back == proof
    assert back.encode() == data
    verify_proof(s.app_hash, key, value, back)
    # every truncation and any trailing byte is rejected
    for cut in range(len(data)):
        with pytest.raises(ProofError):
            Proof.decode(data[:cut])
    with pytest.raises(ProofError, match="trailing"):
        Proof.decode(data + b"\x00")


@PROPS
@given(st.binary(max_size=700))
def test_proof_decode_garbage(data: bytes) -> None:
    try:
        p = Proof.decode(data)
    except ProofError:
        return
    # Anything that does decode must be canonical.
    assert p.encode() == data


def test_proof_decode_specific_garbage() -> None:
    good = store_with({b"k": b"v"}).prove(b"k")[1].encode()
    with pytest.raises(ProofError, match="version"):
        Proof.decode(b"\x02" + good[1:])
    with pytest.raises(ProofError, match="exceeds limit"):
        Proof.decode(b"\x01" + (10**6).to_bytes(4, "big") + b"k" * 100)
    with pytest.raises(ProofError, match="entry count"):
        Proof.decode(b"\x01\x00\x00\x00\x01k\xff\xff\xff\xff" + b"\x00" * 600)
    with pytest.raises(ProofError):
        Proof.decode(b"")
    with pytest.raises(ProofError):
        Proof.decode("not bytes")  # type: ignore[arg-type]
    with pytest.raises(ProofError, match="sibling"):
        Proof(b"k", (), (b"\x00" * 32,) * 15)
    with pytest.raises(ProofError, match="32 bytes"):
        Proof(b"k", ((b"a", b"\x00" * 31),), (b"\x00" * 32,) * 16)
    with pytest.raises(ProofError, match="root"):
        verify_proof(b"short", b"k", b"v", Proof.decode(good))


# ---------------------------------------------------------------- persistence


def test_reopen_gives_same_state(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    s = CommittedStore(path)
    for h in range(1, 4):
        ws = s.working()
        for i in range(50):
            ws.set(b"acct/%03d" % (i * h % 70), b"h%d-%d" % (h, i))
        ws.delete(b"acct/%03d" % h)
        s.commit(ws, h)
    height, app_hash, contents = s.height, s.app_hash, list(s.iter_prefix(b""))
    s.close()
    with pytest.raises(StateStoreError, match="closed"):
        s.get(b"acct/001")
    s2 = CommittedStore(path)
    assert (s2.height, s2.app_hash) == (3, app_hash) and height == 3
    assert list(s2.iter_prefix(b"")) == contents
    assert len(s2) == len(contents)
    v, proof = s2.prove(b"acct/010")
    verify_proof(s2.app_hash, b"acct/010", v, proof)
    assert s2.get(b"acct/003") is None
    ws = s2.working()
    ws.set(b"new", b"1")
    s2.commit(ws, 4)
    s2.close()
    with CommittedStore(path) as s3:
        assert s3.height == 4 and s3.get(b"new") == b"1"


def test_uncommitted_working_state_is_lost_on_crash(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    s = CommittedStore(path)
    ws = s.working()
    ws.set(b"a", b"1")
    root1 = s.commit(ws, 1)
    ws = s.working()
    ws.set(b"a", b"2")
    ws.set(b"b", b"3")
    assert ws.root() != root1
    s.close()  # "crash" between FinalizeBlock and Commit
    s2 = CommittedStore(path)
    assert (s2.height, s2.app_hash) == (1, root1)
    assert s2.get(b"a") == b"1" and s2.get(b"b") is None


def test_failed_db_write_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    s = CommittedStore(path)
    ws = s.working()
    ws.set(b"a", b"1")
    s.commit(ws, 1)
    ws = s.working()
    ws.set(b"a", b"2")
    # Another connection holds the write lock, so our transaction cannot start.
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    other.execute("BEGIN IMMEDIATE")
    s._db._conn.execute("PRAGMA busy_timeout=0")
    try:
        with pytest.raises(StateStoreError, match="block 2"):
            s.commit(ws, 2)
        assert s.height == 1 and s.get(b"a") == b"1"
        assert s.working().root() == s.app_hash
    finally:
        other.execute("ROLLBACK")
        other.close()
    s.commit(ws, 2)  # the working state is still usable after the failure
    assert s.get(b"a") == b"2"
    s.close()


def test_tampered_database_detected(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    s = CommittedStore(path)
    ws = s.working()
    ws.set(b"a", b"1")
    s.commit(ws, 1)
    s.close()
    con = sqlite3.connect(path)
    con.execute("UPDATE kv SET value = ? WHERE key = ?", (b"2", b"a"))
    con.commit()
    con.close()
    with pytest.raises(CorruptStoreError, match="height 1"):
        CommittedStore(path)


def test_commit_height_and_staleness_rules() -> None:
    s = CommittedStore(":memory:")
    ws = s.working()
    ws.set(b"a", b"1")
    with pytest.raises(HeightError, match="must be height 1"):
        s.commit(ws, 2)
    with pytest.raises(HeightError):
        s.commit(ws, 0)
    other = s.working()
    other.set(b"b", b"2")
    s.commit(ws, 1)
    with pytest.raises(StaleStateError):
        ws.set(b"c", b"3")
    with pytest.raises(StaleStateError):
        s.commit(ws, 2)
    with pytest.raises(StaleStateError):
        other.get(b"b")
    with pytest.raises(StaleStateError):
        s.commit(other, 2)
    with pytest.raises(StateStoreError, match="this store"):
        s.commit(CommittedStore(":memory:").working(), 2)
    assert s.height == 1


def test_committed_view_stable_while_working_pending() -> None:
    s = store_with({b"a": b"1", COLLIDE[0]: b"x"})
    root = s.app_hash
    ws = s.working()
    ws.set(b"a", b"2")
    ws.delete(COLLIDE[0])
    ws.set(COLLIDE[1], b"y")
    assert ws.root() != root
    assert s.app_hash == root
    assert s.get(b"a") == b"1" and ws.get(b"a") == b"2"
    assert s.get(COLLIDE[0]) == b"x" and ws.get(COLLIDE[0]) is None
    for key in (b"a", COLLIDE[0], COLLIDE[1]):
        v, p = s.prove(key)
        verify_proof(root, key, v, p)
    new = s.commit(ws, 2)
    v, p = s.prove(COLLIDE[1])
    assert v == b"y"
    verify_proof(new, COLLIDE[1], b"y", p)


def test_bad_input_raises_store_error() -> None:
    s = CommittedStore(":memory:")
    ws = s.working()
    with pytest.raises(StateStoreError, match="bytes"):
        ws.set("a", b"1")  # type: ignore[arg-type]
    with pytest.raises(StateStoreError, match="bytes"):
        ws.set(b"a", "1")  # type: ignore[arg-type]
    with pytest.raises(StateStoreError, match="length"):
        ws.set(b"", b"1")
    with pytest.raises(StateStoreError, match="length"):
        s.get(b"k" * 5000)
    with pytest.raises(StateStoreError, match="prefix"):
        list(s.iter_prefix("a"))  # type: ignore[arg-type]
    with pytest.raises(StateStoreError):
        CommittedStore("/nonexistent-dir/x/state.db")


# ---------------------------------------------------------------- iteration and overlays


def test_prefix_upper_bound() -> None:
    assert prefix_upper_bound(b"") is None
    assert prefix_upper_bound(b"\xff\xff") is None
    assert prefix_upper_bound(b"a") == b"b"
    assert prefix_upper_bound(b"a\xff") == b"b"
    assert prefix_upper_bound(b"a\x00") == b"a\x01"


@PROPS
@given(
    st.dictionaries(keys_st, values_st, max_size=len(POOL)),
    st.lists(op_st, max_size=25),
    st.sampled_from([b"", b"acct/", b"acct/00", b"b", b"b\xff", b"\xff", b"c/", b"zzz"]),
)
def test_iter_prefix_matches_model(
    committed: dict[bytes, bytes], ops: list[tuple[str, bytes, bytes | None]], prefix: bytes
) -> None:
    s = store_with(committed)
    ws = s.working()
    model = dict(committed)
    for op in ops:
        apply_op(ws, model, op)
    expect = sorted((k, v) for k, v in model.items() if k.startswith(prefix))
    assert list(ws.iter_prefix(prefix)) == expect
    assert list(s.iter_prefix(prefix)) == sorted((k, v) for k, v in committed.items() if k.startswith(prefix))
    for k in POOL:
        assert ws.get(k) == model.get(k)
    s.commit(ws, 2)
    assert list(s.iter_prefix(prefix)) == expect


def test_iter_prefix_large_and_write_during_iteration() -> None:
    s = CommittedStore(":memory:")
    ws = s.working()
    for i in range(1500):  # more than one fetch chunk
        ws.set(b"p/%05d" % i, b"%d" % i)
    ws.set(b"q", b"outside")
    s.commit(ws, 1)
    ws = s.working()
    ws.delete(b"p/00010")
    ws.set(b"p/00010x", b"new")
    got = []
    for k, _ in ws.iter_prefix(b"p/"):
        got.append(k)
        ws.set(b"p/%s-w" % k, b"1")  # writing while iterating is allowed and not seen
    assert len(got) == 1500
    assert got == sorted(got)
    assert b"p/00010" not in got and b"p/00010x" in got


def test_nested_snapshot_revert_discards_only_inner_writes() -> None:
    s = store_with({b"a": b"0", b"b": b"0"})
    ws = s.working()
    ws.set(b"a", b"1")
    outer = ws.snapshot()
    ws.set(b"b", b"1")
    root_outer = ws.root()
    inner = ws.snapshot()
    ws.set(b"a", b"2")
    ws.delete(b"b")
    ws.set(b"c", b"2")
    assert ws.root() != root_outer
    ws.revert(inner)
    assert (ws.get(b"a"), ws.get(b"b"), ws.get(b"c")) == (b"1", b"1", None)
    assert ws.root() == root_outer
    assert list(ws.iter_prefix(b"")) == [(b"a", b"1"), (b"b", b"1")]
    with pytest.raises(StateStoreError, match="unknown snapshot"):
        ws.revert(inner)
    ws.revert(outer)
    assert (ws.get(b"a"), ws.get(b"b")) == (b"1", b"0")
    assert ws.root() == store_with({b"a": b"1", b"b": b"0"}).app_hash
    # release keeps the writes
    t = ws.snapshot()
    ws.set(b"d", b"4")
    ws.release(t)
    assert ws.get(b"d") == b"4"
    with pytest.raises(StateStoreError):
        ws.revert(t)
    # atomic(): reverted on exception, kept otherwise
    with pytest.raises(RuntimeError):
        with ws.atomic():
            ws.set(b"e", b"5")
            raise RuntimeError("tx failed")
    assert ws.get(b"e") is None
    with ws.atomic():
        ws.set(b"f", b"6")
    assert ws.get(b"f") == b"6"
    final = s.commit(ws, 2)
    assert final == store_with({b"a": b"1", b"b": b"0", b"d": b"4", b"f": b"6"}).app_hash


@PROPS
@given(st.lists(op_st, max_size=15), st.lists(op_st, max_size=15), st.lists(op_st, max_size=15))
def test_revert_restores_exact_state(
    before: list[tuple[str, bytes, bytes | None]],
    inner1: list[tuple[str, bytes, bytes | None]],
    inner2: list[tuple[str, bytes, bytes | None]],
) -> None:
    s = store_with({POOL[1]: b"c", COLLIDE[2]: b"d"})
    ws = s.working()
    model = {POOL[1]: b"c", COLLIDE[2]: b"d"}
    for op in before:
        apply_op(ws, model, op)
    r_before, m_before = ws.root(), dict(model)
    t1 = ws.snapshot()
    for op in inner1:
        apply_op(ws, model, op)
    r_mid, m_mid = ws.root(), dict(model)
    t2 = ws.snapshot()
    for op in inner2:
        apply_op(ws, model, op)
    ws.root()
    ws.revert(t2)
    assert ws.root() == r_mid
    assert list(ws.iter_prefix(b"")) == sorted(m_mid.items())
    ws.revert(t1)
    assert ws.root() == r_before
    assert list(ws.iter_prefix(b"")) == sorted(m_before.items())
    assert s.commit(ws, 2) == MerkleTree.build(m_before.items()).root
