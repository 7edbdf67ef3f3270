"""State-sync snapshots: build, serve and restore through the ABCI calls, and reject bad ones."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from fedledger.abci_app.app import FedLedgerApp
from fedledger.abci_app.context import BlockContext
from fedledger.abci_app.proto import types as pb
from fedledger.abci_app.snapshots import (
    SNAPSHOT_FORMAT,
    Manifest,
    SnapshotError,
    SnapshotManager,
    decode_state,
    encode_state,
)
from fedledger.abci_app.state_machine import StateMachine
from fedledger.abci_app.store import CommittedStore
from tests.support import CHAIN, Chain, Signer

OFFER = pb.ResponseOfferSnapshot
APPLY = pb.ResponseApplySnapshotChunk


def _source(tmp_path: Path, members: int = 6) -> Chain:
    chain = Chain(CommittedStore(tmp_path / "src.db"))
    chain.ok()
    for i in range(members):
        chain.ok(Signer(100 + i).admit("trainer"))
    return chain


def _fresh(tmp_path: Path, name: str = "dst.db") -> FedLedgerApp:
    return FedLedgerApp(StateMachine(CommittedStore(tmp_path / name), CHAIN))


def _step(sm: StateMachine, height: int, *txs: bytes) -> bytes:
    ctx = BlockContext(height=height, time_ns=height * 10**9,
                       block_hash=hashlib.sha256(b"%d" % height).digest(), chain_id=CHAIN)
    sm.finalize_block(ctx, list(txs))
    sm.commit()
    return sm.app_hash


def _snapshot(tmp_path: Path, chain: Chain, chunk_size: int = 512) -> tuple[SnapshotManager, pb.Snapshot]:
    mgr = SnapshotManager(tmp_path / "snaps", interval=5, keep=2, chunk_size=chunk_size)
    mgr.take(chain.store)
    (snap,) = mgr.list()
    return mgr, snap


def _chunks(mgr: SnapshotManager, snap: pb.Snapshot) -> list[bytes]:
    return [mgr.load_chunk(snap.height, snap.format, i) for i in range(snap.chunks)]


def test_encode_decode_roundtrip_and_strictness() -> None:
    items = [(b"a", b"1"), (b"b", b""), (b"c" * 300, b"x" * 70000)]
    data = b"".join(encode_state(items))
    assert decode_state(data) == items
    with pytest.raises(SnapshotError):
        decode_state(data[:-1])
    with pytest.raises(SnapshotError):
        decode_state(b"".join(encode_state([(b"b", b"1"), (b"a", b"2")])))


def test_snapshot_is_chunked_deterministic_and_served(tmp_path: Path) -> None:
    chain = _source(tmp_path)
    mgr, snap = _snapshot(tmp_path, chain)
    assert snap.height == chain.store.height and snap.format == SNAPSHOT_FORMAT and snap.chunks > 2
    m = Manifest.decode(snap.metadata)
    assert snap.hash == hashlib.sha256(snap.metadata).digest() and m.app_hash == chain.store.app_hash
    chunks = _chunks(mgr, snap)
    assert [hashlib.sha256(c).digest() for c in chunks] == list(m.chunk_hashes)
    assert decode_state(b"".join(chunks)) == list(chain.store.iter_all())
    # Another node taking the same state produces the identical snapshot hash.
    other = SnapshotManager(tmp_path / "snaps2", interval=5, chunk_size=512)
    assert other.take(chain.store).hash == snap.hash
    # Unknown height/format/index: an empty chunk, never an exception.
    assert mgr.load_chunk(snap.height + 1, 1, 0) == b"" and mgr.load_chunk(snap.height, 2, 0) == b""
    assert mgr.load_chunk(snap.height, 1, snap.chunks) == b""
    # A reopened manager serves what is on disk.
    assert SnapshotManager(tmp_path / "snaps", interval=5).list()[0].hash == snap.hash


def test_commit_takes_snapshots_at_interval_and_keeps_last_k(tmp_path: Path) -> None:
    chain = Chain(CommittedStore(tmp_path / "src.db"))
    mgr = SnapshotManager(tmp_path / "snaps", interval=2, keep=2, chunk_size=1024)
    app = FedLedgerApp(chain.sm, mgr)
    for h in range(1, 8):
        ctx_time = pb.RequestFinalizeBlock(height=h, hash=hashlib.sha256(b"%d" % h).digest())
        ctx_time.time.seconds = h
        txs = [Signer(200 + h).admit("trainer")]
        app.finalize_block(pb.RequestFinalizeBlock(height=h, txs=txs, hash=ctx_time.hash, time=ctx_time.time))
        app.commit(pb.RequestCommit())
    listed = app.list_snapshots(pb.RequestListSnapshots()).snapshots
    assert [s.height for s in listed] == [6, 4]
    assert sorted(p.name for p in (tmp_path / "snaps").iterdir()) == [f"{4:020d}", f"{6:020d}"]
    served = app.load_snapshot_chunk(pb.RequestLoadSnapshotChunk(height=6, format=1, chunk=0)).chunk
    assert served and served == mgr.load_chunk(6, 1, 0)
    assert app.load_snapshot_chunk(pb.RequestLoadSnapshotChunk(height=5, format=1, chunk=0)).chunk == b""
    assert FedLedgerApp(chain.sm).list_snapshots(pb.RequestListSnapshots()).snapshots == []


def test_restore_then_same_app_hash_on_next_blocks(tmp_path: Path) -> None:
    chain = _source(tmp_path)
    mgr, snap = _snapshot(tmp_path, chain)
    dst = _fresh(tmp_path)
    offer = dst.offer_snapshot(pb.RequestOfferSnapshot(snapshot=snap, app_hash=chain.store.app_hash))
    assert offer.result == OFFER.ACCEPT
    results = [dst.apply_snapshot_chunk(pb.RequestApplySnapshotChunk(index=i, chunk=c, sender="peer"))
               for i, c in enumerate(_chunks(mgr, snap))]
    assert all(r.result == APPLY.ACCEPT for r in results)
    info = dst.info(pb.RequestInfo())
    assert info.last_block_height == chain.store.height and info.last_block_app_hash == chain.store.app_hash
    # Both nodes now execute the same blocks and must agree on every app hash.
    for i in range(3):
        tx = Signer(300 + i).admit("trainer")
        h = chain.height + 1
        chain.ok(tx)
        assert _step(dst.machine, h, tx) == chain.store.app_hash
    # A replayed tx from before the snapshot is still refused on the restored node (nonces restored).
    again = Signer(100).admit("trainer")
    assert dst.machine.check_tx(again).code == chain.sm.check_tx(again).code != 0


def test_corrupted_chunk_is_refetched_and_sender_rejected(tmp_path: Path) -> None:
    chain = _source(tmp_path)
    mgr, snap = _snapshot(tmp_path, chain)
    dst = _fresh(tmp_path)
    dst.offer_snapshot(pb.RequestOfferSnapshot(snapshot=snap, app_hash=chain.store.app_hash))
    chunks = _chunks(mgr, snap)
    bad = bytes([chunks[0][0] ^ 1]) + chunks[0][1:]
    r = dst.apply_snapshot_chunk(pb.RequestApplySnapshotChunk(index=0, chunk=bad, sender="evil"))
    assert r.result == APPLY.RETRY and list(r.refetch_chunks) == [0] and list(r.reject_senders) == ["evil"]
    for i, c in enumerate(chunks):  # the good copy from another peer completes the restore
        assert dst.apply_snapshot_chunk(pb.RequestApplySnapshotChunk(index=i, chunk=c, sender="ok")).result \
            == APPLY.ACCEPT
    assert dst.machine.app_hash == chain.store.app_hash


def test_truncated_chunk_retried_then_snapshot_rejected(tmp_path: Path) -> None:
    chain = _source(tmp_path)
    mgr, snap = _snapshot(tmp_path, chain)
    dst = _fresh(tmp_path)
    dst.offer_snapshot(pb.RequestOfferSnapshot(snapshot=snap, app_hash=chain.store.app_hash))
    short = _chunks(mgr, snap)[0][:-3]
    outcomes = [dst.apply_snapshot_chunk(pb.RequestApplySnapshotChunk(index=0, chunk=short, sender="p")).result
                for _ in range(4)]
    assert outcomes == [APPLY.RETRY] * 3 + [APPLY.REJECT_SNAPSHOT]
    assert dst.machine.height == 0 and list(dst.machine.store.iter_all()) == []  # type: ignore[attr-defined]


def test_wrong_trusted_app_hash_is_rejected(tmp_path: Path) -> None:
    chain = _source(tmp_path)
    _, snap = _snapshot(tmp_path, chain)
    dst = _fresh(tmp_path)
    r = dst.offer_snapshot(pb.RequestOfferSnapshot(snapshot=snap, app_hash=b"\x01" * 32))
    assert r.result == OFFER.REJECT


def test_manifest_lying_about_app_hash_leaves_store_empty(tmp_path: Path) -> None:
    """Chunks match a manifest that claims the trusted hash, but the state hashes to something else."""
    chain = _source(tmp_path)
    mgr, snap = _snapshot(tmp_path, chain)
    items = list(chain.store.iter_all())
    items[0] = (items[0][0], items[0][1] + b"forged")
    data = b"".join(encode_state(items))
    m = Manifest(height=snap.height, app_hash=chain.store.app_hash, chunk_size=len(data),
                 chunk_hashes=(hashlib.sha256(data).digest(),), total_bytes=len(data), keys=len(items))
    dst = _fresh(tmp_path)
    assert dst.offer_snapshot(pb.RequestOfferSnapshot(snapshot=m.to_pb(), app_hash=chain.store.app_hash)).result \
        == OFFER.ACCEPT
    r = dst.apply_snapshot_chunk(pb.RequestApplySnapshotChunk(index=0, chunk=data, sender="p"))
    assert r.result == APPLY.REJECT_SNAPSHOT
    assert dst.machine.height == 0 and list(dst.machine.store.iter_all()) == []  # type: ignore[attr-defined]
    # The same store then accepts the honest snapshot.
    dst.offer_snapshot(pb.RequestOfferSnapshot(snapshot=snap, app_hash=chain.store.app_hash))
    for i, c in enumerate(_chunks(mgr, snap)):
        dst.apply_snapshot_chunk(pb.RequestApplySnapshotChunk(index=i, chunk=c))
    assert dst.machine.app_hash == chain.store.app_hash


def test_bad_format_and_inconsistent_offers(tmp_path: Path) -> None:
    chain = _source(tmp_path, members=1)
    _, snap = _snapshot(tmp_path, chain)
    dst = _fresh(tmp_path)
    trusted = chain.store.app_hash
    wrong_format = pb.Snapshot(height=snap.height, format=7, chunks=snap.chunks, hash=snap.hash,
                               metadata=snap.metadata)
    assert dst.offer_snapshot(pb.RequestOfferSnapshot(snapshot=wrong_format, app_hash=trusted)).result \
        == OFFER.REJECT_FORMAT
    wrong_hash = pb.Snapshot(height=snap.height, format=1, chunks=snap.chunks, hash=b"\x00" * 32,
                             metadata=snap.metadata)
    assert dst.offer_snapshot(pb.RequestOfferSnapshot(snapshot=wrong_hash, app_hash=trusted)).result == OFFER.REJECT
    garbage = pb.Snapshot(height=snap.height, format=1, chunks=1, hash=hashlib.sha256(b"{").digest(), metadata=b"{")
    assert dst.offer_snapshot(pb.RequestOfferSnapshot(snapshot=garbage, app_hash=trusted)).result == OFFER.REJECT
    # Chunks before any accepted offer abort; a node that already has state never restores.
    assert dst.apply_snapshot_chunk(pb.RequestApplySnapshotChunk(index=0, chunk=b"x")).result == APPLY.ABORT
    src_app = FedLedgerApp(chain.sm)
    assert src_app.offer_snapshot(pb.RequestOfferSnapshot(snapshot=snap, app_hash=trusted)).result == OFFER.ABORT


def test_out_of_order_chunk_restarts_snapshot(tmp_path: Path) -> None:
    chain = _source(tmp_path)
    mgr, snap = _snapshot(tmp_path, chain)
    dst = _fresh(tmp_path)
    dst.offer_snapshot(pb.RequestOfferSnapshot(snapshot=snap, app_hash=chain.store.app_hash))
    r = dst.apply_snapshot_chunk(pb.RequestApplySnapshotChunk(index=1, chunk=_chunks(mgr, snap)[1]))
    assert r.result == APPLY.RETRY_SNAPSHOT
