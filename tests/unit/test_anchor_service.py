"""The anchoring service and verification against an in-memory public chain and a pretend permissioned chain."""

from __future__ import annotations

import dataclasses

import pytest

from fedledger.abci_app.binary_merkle import MerkleProof, MerkleTree
from fedledger.node.anchor.contract import chain_tag, decode_anchored
from fedledger.node.anchor.errors import AnchorError, TxDroppedError
from fedledger.node.anchor.public import PublicChain
from fedledger.node.anchor.sender import SendPolicy, TxSender
from fedledger.node.anchor.service import AnchorCheck, AnchorService
from fedledger.node.anchor.verify import ProofBundle, trusted_height, verify_bundle
from tests.anchor_support import ADDRESS, GWEI, KEY, FakeEth, FakeRecorder, FakeSource, FakeTime, config


def service(eth: FakeEth, t: FakeTime, source: FakeSource, recorder: FakeRecorder, **kw: object) -> AnchorService:
    public = PublicChain(config(contract=eth.install_contract(), confirmations=2), eth)

    def make_sender(on_sent: object = None) -> TxSender:
        return TxSender(eth, KEY, 1337, SendPolicy(confirmations=2, stuck_after_s=3.0, poll_s=0.5), clock=t.clock,
                        sleep=t.sleep, on_sent=on_sent)  # type: ignore[arg-type]

    public.sender = make_sender  # type: ignore[method-assign]
    return AnchorService(public, source, recorder, clock=t.clock, **kw)  # type: ignore[arg-type]


def test_nothing_to_do_below_every() -> None:
    eth, t = FakeEth(), FakeTime()
    svc = service(eth, t, FakeSource(top=9), FakeRecorder())
    assert svc.anchor_once(min_checkpoints=10) is None
    assert eth.sent == []


def test_anchors_a_batch_and_records_it_only_once_confirmed() -> None:
    eth, t = FakeEth(), FakeTime()
    source, recorder = FakeSource(top=25), FakeRecorder()
    seen_unconfirmed: list[int] = []
    t.hooks.append(lambda: seen_unconfirmed.append(len(recorder.records)))
    t.hooks.append(eth.mine)
    result = service(eth, t, source, recorder).anchor_once(min_checkpoints=10)
    assert result is not None and seen_unconfirmed and set(seen_unconfirmed) == {0}
    tree = MerkleTree([c.leaf_bytes() for c in source.checkpoints(1, 25)])
    (body,) = recorder.records
    assert body == {"scheme": "fedledger-checkpoint-v1", "public_chain_id": 1337, "contract": result.contract.lower(),
                    "tx_hash": result.tx_hash, "block_number": result.block_number, "block_hash": result.block_hash,
                    "root": "0x" + tree.root.hex(), "from_height": 1, "to_height": 25}
    (log,) = eth.receipts[result.tx_hash].logs
    event = decode_anchored(log)
    assert event is not None and (event.chain_tag, event.root, event.from_height, event.to_height) == (
        chain_tag("test-chain"), tree.root, 1, 25)
    assert result.confirmations >= 2 and eth.height - result.block_number + 1 >= 2
    # The next batch starts where this one ended.
    source.top = 40
    nxt = service(eth, t, source, recorder).anchor_once(min_checkpoints=10)
    assert nxt is not None and (nxt.from_height, nxt.to_height) == (26, 40)


def test_max_batch_caps_a_batch() -> None:
    eth, t = FakeEth(), FakeTime()
    t.hooks.append(eth.mine)
    result = service(eth, t, FakeSource(top=50), FakeRecorder(), max_batch=20).anchor_once()
    assert result is not None and (result.from_height, result.to_height) == (1, 20)


def test_a_batch_already_on_chain_is_recorded_without_paying_twice() -> None:
    eth, t = FakeEth(), FakeTime()
    t.hooks.append(eth.mine)
    source = FakeSource(top=12)
    first = service(eth, t, source, FakeRecorder()).anchor_once()  # recorded elsewhere, then "lost"
    assert first is not None
    sent_before = len(eth.sent)
    again = service(eth, t, source, FakeRecorder()).anchor_once()
    assert again is not None and again.found_existing and again.tx_hash == first.tx_hash
    assert len(eth.sent) == sent_before


def test_a_dropped_anchor_is_sent_again_with_a_new_nonce() -> None:
    eth, t = FakeEth(), FakeTime()
    state = {"dropped": False}

    def drop_first(tx_hash: str, attempt: int) -> None:
        if not state["dropped"]:
            state["dropped"] = True
            eth.pool.clear()
            eth.nonces[ADDRESS] += 1  # a foreign tx took nonce 0

    t.hooks.append(eth.mine)
    recorder = FakeRecorder()
    result = service(eth, t, FakeSource(top=5), recorder, on_sent=drop_first).anchor_once()
    assert result is not None and len(result.attempts) == 2 and result.tx_hash == result.attempts[1]
    assert eth.receipts.get(result.attempts[0]) is None and len(recorder.records) == 1


def test_three_drops_give_up_and_record_nothing() -> None:
    eth, t = FakeEth(), FakeTime()

    def always(tx_hash: str, attempt: int) -> None:
        eth.pool.clear()
        eth.nonces[ADDRESS] += 1

    t.hooks.append(eth.mine)
    recorder = FakeRecorder()
    with pytest.raises(TxDroppedError):
        service(eth, t, FakeSource(top=5), recorder, on_sent=always).anchor_once()
    assert recorder.records == []


# ----------------------------------------------------------------------------- verification
def anchored_bundle() -> tuple[FakeEth, FakeTime, ProofBundle]:
    eth, t = FakeEth(), FakeTime()
    t.hooks.append(eth.mine)
    source, recorder = FakeSource(top=35), FakeRecorder()
    result = service(eth, t, source, recorder).anchor_once()
    assert result is not None
    checkpoints = source.checkpoints(1, 35)
    tree = MerkleTree([c.leaf_bytes() for c in checkpoints])
    anchor = {k: v for k, v in recorder.records[0].items() if k != "scheme"} | {"seq": 1}
    bundle = ProofBundle("digits", 2, checkpoints[19], tree.proof(19), anchor)  # v2 promoted at height 20
    return eth, t, bundle


def test_a_genuine_bundle_verifies() -> None:
    eth, _, bundle = anchored_bundle()
    verdict = verify_bundle(bundle, eth, min_confirmations=2)
    assert verdict.ok, verdict.to_json()
    assert [c.name for c in verdict.checks] == ["checkpoint", "inclusion proof", "public chain", "receipt",
                                                "Anchored event"]
    assert ProofBundle.from_json(bundle.to_json()) == bundle


def test_tampered_bundles_are_rejected() -> None:
    eth, _, bundle = anchored_bundle()
    cp = bundle.checkpoint
    forged_version = dataclasses.replace(cp.versions[0], cid="bafkEVIL")
    forged_leaf = dataclasses.replace(bundle, checkpoint=dataclasses.replace(cp, versions=(forged_version,)))
    forged_sibling = dataclasses.replace(bundle, proof=MerkleProof(19, 35, (b"\x00" * 32,) + bundle.proof.siblings[1:]))
    for bad in (forged_leaf, forged_sibling):
        verdict = verify_bundle(bad, eth)
        assert not verdict.ok
        assert [c.name for c in verdict.checks if not c.ok] == ["inclusion proof"]
    # A version the checkpoint does not list.
    verdict = verify_bundle(dataclasses.replace(bundle, version=3), eth)
    assert [c.name for c in verdict.checks if not c.ok] == ["checkpoint"]
    # A root that is not the anchored one: both the proof and the event disagree.
    other = {**bundle.anchor, "root": "0x" + "00" * 32}
    verdict = verify_bundle(dataclasses.replace(bundle, anchor=other), eth)
    assert {c.name for c in verdict.checks if not c.ok} == {"inclusion proof", "Anchored event"}


def test_wrong_contract_missing_receipt_and_too_few_confirmations() -> None:
    eth, _, bundle = anchored_bundle()
    verdict = verify_bundle(bundle, eth, contract="0x" + "99" * 20)
    assert [c.name for c in verdict.checks if not c.ok] == ["Anchored event"]
    verdict = verify_bundle(bundle, eth, min_confirmations=1000)
    assert [c.name for c in verdict.checks if not c.ok] == ["receipt"]
    missing = dataclasses.replace(bundle, anchor={**bundle.anchor, "tx_hash": "0x" + "ee" * 32})
    verdict = verify_bundle(missing, eth)
    assert not verdict.ok and verdict.checks[-1].name == "receipt" and "not mined" in verdict.checks[-1].detail
    assert not verify_bundle(bundle, FakeEth(chain_id=5)).ok


def test_bundle_parsing_errors() -> None:
    _, _, bundle = anchored_bundle()
    with pytest.raises(AnchorError, match="not an anchor proof bundle"):
        ProofBundle.from_json({"format": "x"})
    raw = bundle.to_json()
    raw["proof"] = {"index": 0}
    with pytest.raises(AnchorError, match="proof is malformed"):
        ProofBundle.from_json(raw)


def test_trusted_height() -> None:
    assert trusted_height({"version": 0, "height": 7, "status": "initial"}) == 7
    assert trusted_height({"version": 3, "height": 50, "decided_height": 55, "status": "promoted"}) == 55
    assert trusted_height({"version": 3, "height": 50, "decided_height": 55, "status": "rolled_back"}) == 55
    with pytest.raises(AnchorError, match="version 4 of digits is quarantined: only promoted versions"):
        trusted_height({"version": 4, "task_id": "digits", "height": 60, "decided_height": 62,
                        "status": "quarantined"})
    with pytest.raises(AnchorError, match="is proposed"):
        trusted_height({"version": 5, "task_id": "digits", "height": 70, "status": "proposed"})


def test_a_provider_refusing_log_searches_does_not_stop_anchoring() -> None:
    from fedledger.node.anchor.eth import EthRPCError

    eth, t = FakeEth(), FakeTime()
    t.hooks.append(eth.mine)

    def refuse(*_args: object) -> list[object]:
        raise EthRPCError("eth_getLogs", "query exceeds max block range 1000")

    eth.logs = refuse  # type: ignore[method-assign,assignment]
    recorder = FakeRecorder()
    assert service(eth, t, FakeSource(top=4), recorder).anchor_once() is not None
    assert len(recorder.records) == 1


def test_run_retries_passing_trouble_and_stops_on_real_errors() -> None:
    from fedledger.node.anchor.errors import AnchorTxError, PublicChainUnavailable

    eth, t = FakeEth(), FakeTime()
    t.hooks.append(eth.mine)
    source, recorder = FakeSource(top=3), FakeRecorder()
    svc = service(eth, t, source, recorder)
    outcomes: list[object] = [PublicChainUnavailable("down"), None]
    real = svc.anchor_once

    def flaky(min_checkpoints: int = 1) -> object:
        step = outcomes.pop(0) if outcomes else "real"
        if isinstance(step, Exception):
            raise step
        if step is None:
            return None
        return real(min_checkpoints)

    svc.anchor_once = flaky  # type: ignore[method-assign,assignment]
    errors: list[Exception] = []
    results: list[object] = []
    naps: list[float] = []
    svc.run(2, until=lambda: len(results) == 1, on_result=results.append, on_error=errors.append, sleep=naps.append)
    assert [str(e) for e in errors] == ["down"] and len(recorder.records) == 1
    assert naps[:2] == [1.0, 1.0]  # back off after the outage, poll when nothing waits
    outcomes[:] = [AnchorTxError("tx 0x1 was mined in block 3 but reverted")]
    with pytest.raises(AnchorTxError, match="reverted"):
        svc.run(1, until=lambda: False, sleep=naps.append)
    with pytest.raises(ValueError, match="at least 1 block"):
        svc.run(0)


# ----------------------------------------------------------------------------- dry run and reorgs
def test_plan_quotes_the_next_batch_and_sends_nothing() -> None:
    eth, t = FakeEth(base_fee=GWEI, suggested_tip=2 * GWEI), FakeTime()
    svc = service(eth, t, FakeSource(top=12), FakeRecorder())
    plan = svc.plan()
    assert plan is not None and (plan.from_height, plan.to_height) == (1, 12)
    q = plan.quote
    assert (q.gas, q.tip, q.max_fee, q.base_fee, q.nonce) == (30_000 * 5 // 4, 2 * GWEI, 4 * GWEI, GWEI, 0)
    assert q.max_cost_wei == q.gas * 4 * GWEI and q.cost_now_wei == q.gas * 3 * GWEI
    assert eth.sent == [] and eth.nonce(ADDRESS, "pending") == 0
    assert svc.plan(min_checkpoints=13) is None


def _anchored(reinclude: bool) -> tuple[FakeEth, FakeTime, FakeRecorder, AnchorService, str, int]:
    eth, t = FakeEth(), FakeTime()
    t.hooks.append(eth.mine)
    recorder = FakeRecorder()
    svc = service(eth, t, FakeSource(top=12), recorder)
    first = svc.anchor_once()
    assert first is not None
    assert [c.status for c in svc.check()] == ["ok"] and recorder.reanchors == []
    eth.reorg(first.block_number, reinclude=reinclude)
    return eth, t, recorder, svc, first.tx_hash, first.block_number


def test_check_follows_a_tx_the_reorg_reincluded() -> None:
    eth, _t, recorder, svc, tx_hash, _ = _anchored(reinclude=True)
    sent = len(eth.sent)
    (found,) = svc.check()
    assert found.status == "moved" and found.tx_hash == tx_hash == found.replaced_tx_hash
    (body,) = recorder.reanchors
    assert body["tx_hash"] == tx_hash and body["block_hash"] == eth.receipts[tx_hash].block_hash
    assert len(eth.sent) == sent  # nothing paid twice
    assert [c.status for c in svc.check()] == ["ok"]


def test_check_anchors_a_lost_tx_again() -> None:
    eth, _t, recorder, svc, tx_hash, _ = _anchored(reinclude=False)
    eth.suggested = 3 * GWEI  # the market moved, so the new tx differs from the lost one (same nonce, same data)
    (found,) = svc.check()
    assert found.status == "reanchored" and found.replaced_tx_hash == tx_hash and found.tx_hash != tx_hash
    (body,) = recorder.reanchors
    receipt = eth.receipts[body["tx_hash"]]
    event = decode_anchored(receipt.logs[0])
    assert event is not None and "0x" + event.root.hex() == recorder.records[0]["root"] == body["root"]
    assert (event.from_height, event.to_height) == (1, 12) and body["seq"] == 1
    assert [c.status for c in svc.check()] == ["ok"]


def test_check_refuses_a_root_the_checkpoints_do_not_give() -> None:
    _eth, _t, recorder, svc, _tx, _ = _anchored(reinclude=False)
    recorder.records[0]["root"] = "0x" + "00" * 32
    with pytest.raises(AnchorError, match="not re-anchoring a root the chain does not back"):
        svc.check()
    assert recorder.reanchors == []


def test_run_checks_for_reorgs_every_so_often() -> None:
    eth, t, recorder, svc, tx_hash, _ = _anchored(reinclude=False)
    eth.suggested = 3 * GWEI
    found: list[AnchorCheck] = []
    svc.run(100, until=lambda: bool(found) or t.now > 1000, sleep=t.sleep, check_every_s=30.0,
            on_check=found.append)
    (check,) = found
    assert check.status == "reanchored" and check.replaced_tx_hash == tx_hash
    assert len(recorder.reanchors) == 1
