"""TxSender and the public-chain checks on an in-memory node: fees, nonces, outages, replacement, drops, refusals."""

from __future__ import annotations

import pytest

from fedledger.node.anchor.errors import AnchorConfigError, AnchorTxError, PublicChainError, TxDroppedError
from fedledger.node.anchor.public import PublicChain
from fedledger.node.anchor.sender import SendPolicy, TxSender
from tests.anchor_support import ADDRESS, GWEI, KEY, OTHER_KEY, FakeEth, FakeTime, config

TO = "0x" + "cd" * 20


def sender(eth: FakeEth, t: FakeTime, **policy: object) -> TxSender:
    base: dict[str, object] = {"confirmations": 2, "stuck_after_s": 3.0, "confirm_timeout_s": 60.0, "poll_s": 0.5}
    base.update(policy)
    return TxSender(eth, KEY, 1337, SendPolicy(**base), clock=t.clock, sleep=t.sleep)  # type: ignore[arg-type]


def test_sends_eip1559_and_waits_for_confirmations() -> None:
    eth, t = FakeEth(base_fee=3 * GWEI, suggested_tip=2 * GWEI), FakeTime()
    t.hooks.append(eth.mine)
    s = sender(eth, t)
    done = s.send(TO, b"\x01\x02")
    tx = eth.receipts[done.receipt.tx_hash]
    assert done.nonce == 0 and done.attempts == (tx.tx_hash,)
    assert done.confirmations == 2  # mined in one block, confirmed by the next
    assert eth.height - done.receipt.block_number + 1 == 2
    assert done.receipt.effective_gas_price == 3 * GWEI + 2 * GWEI
    # The second tx takes the next nonce.
    assert s.send(TO, b"\x03").nonce == 1


def test_fee_cap_and_gas_margin() -> None:
    eth, t = FakeEth(base_fee=3 * GWEI, suggested_tip=2 * GWEI), FakeTime()
    t.hooks.append(eth.mine)
    s = sender(eth, t)
    assert s.estimate(TO, b"") == 30_000 * 5 // 4
    first: list[tuple[int, int, int]] = []
    s.on_sent = lambda h, n: first.append((eth.pool[h].tip, eth.pool[h].cap, eth.pool[h].nonce))
    s.send(TO, b"")
    assert first == [(2 * GWEI, 2 * 3 * GWEI + 2 * GWEI, 0)]  # tip: the node's suggestion; cap: 2 x base + tip


def test_stuck_tx_is_replaced_with_the_same_nonce_and_higher_fees() -> None:
    # The miner wants a 5 gwei tip; the first attempt offers 1 gwei (configured) and sticks.
    eth, t = FakeEth(suggested_tip=5 * GWEI, min_tip=5 * GWEI), FakeTime()
    t.hooks.append(eth.mine)
    s = sender(eth, t, priority_fee_wei=GWEI, stuck_after_s=3.0)
    done = s.send(TO, b"\xaa")
    assert len(done.attempts) == 2 and done.receipt.tx_hash == done.attempts[1]
    assert eth.receipts.get(done.attempts[0]) is None  # the replaced tx never gets mined
    assert done.nonce == 0 and eth.nonces[ADDRESS] == 1
    assert done.receipt.effective_gas_price == GWEI + 5 * GWEI  # base fee + the market tip


def test_replacement_bumps_at_least_an_eighth_even_when_the_market_tip_is_low() -> None:
    eth, t = FakeEth(suggested_tip=GWEI, min_tip=2 * GWEI), FakeTime()
    t.hooks.append(eth.mine)
    tips: list[int] = []
    s = sender(eth, t, stuck_after_s=1.0)
    s.on_sent = lambda h, n: tips.append(next(p.tip for p in eth.pool.values() if p.tx_hash == h))
    done = s.send(TO, b"")
    assert tips[0] == GWEI
    for before, after in zip(tips, tips[1:], strict=False):
        assert after * 8 >= before * 9  # >= +12.5% each time (nodes demand +10%)
    assert tips[-1] >= 2 * GWEI and done.receipt.status == 1


def test_node_outage_is_waited_out_and_the_tx_confirmed() -> None:
    eth, t = FakeEth(), FakeTime()
    naps = {"n": 0}

    def weather() -> None:
        naps["n"] += 1
        eth.down = 1 <= naps["n"] <= 4  # down for four polls right after the broadcast
        if not eth.down:
            eth.mine()

    t.hooks.append(weather)
    done = sender(eth, t).send(TO, b"")
    assert done.outages >= 3 and done.receipt.status == 1 and len(done.attempts) == 1


def test_a_node_that_lost_the_tx_gets_the_same_bytes_again() -> None:
    eth, t = FakeEth(), FakeTime()
    s = sender(eth, t)
    s.on_sent = lambda h, n: eth.pool.clear()  # restarted without its pool, right after accepting the tx
    t.hooks.append(eth.mine)
    done = s.send(TO, b"")
    assert eth.sent.count(done.receipt.tx_hash) == 2 and done.attempts == (done.receipt.tx_hash,)


def test_nonce_taken_by_another_tx_is_a_drop() -> None:
    eth, t = FakeEth(min_tip=10 * GWEI), FakeTime()
    s = sender(eth, t, stuck_after_s=100.0)

    def foreign(tx_hash: str, attempt: int) -> None:
        # Someone else with the same key replaced the tx in the pool and got mined.
        eth.pool.clear()
        eth.nonces[ADDRESS] += 1

    s.on_sent = foreign
    with pytest.raises(TxDroppedError, match="nonce 0 .* was used by another tx") as info:
        s.send(TO, b"")
    assert info.value.attempts == (eth.sent[0],)


def test_a_reverted_tx_is_an_error() -> None:
    eth, t = FakeEth(), FakeTime()
    eth.revert = True
    t.hooks.append(eth.mine)
    with pytest.raises(AnchorTxError, match="reverted"):
        sender(eth, t).send(TO, b"")


def test_unfunded_key_is_refused_before_anything_is_sent() -> None:
    eth, t = FakeEth(balance=10**9), FakeTime()
    with pytest.raises(PublicChainError, match=f"the anchor key {ADDRESS} holds 1000000000 wei .* fund it"):
        sender(eth, t).send(TO, b"")
    assert eth.sent == []


def test_a_call_that_would_revert_is_refused_at_estimation() -> None:
    eth, t = FakeEth(), FakeTime()
    eth.estimate_error = "execution reverted: NotOwner()"
    with pytest.raises(PublicChainError, match="would fail on chain 1337: execution reverted"):
        sender(eth, t).send(TO, b"")
    assert eth.sent == []


def test_fee_cap_limit() -> None:
    eth, t = FakeEth(suggested_tip=5 * GWEI), FakeTime()
    with pytest.raises(PublicChainError, match="above max_fee_wei"):
        sender(eth, t, max_fee_wei=GWEI).send(TO, b"")


# ----------------------------------------------------------------------------- public chain checks
def test_wrong_chain_id_is_refused() -> None:
    eth = FakeEth(chain_id=11155111)
    with pytest.raises(PublicChainError, match="serves chain id 11155111, but the configuration .* expects 1337"):
        PublicChain(config(contract=eth.install_contract()), eth).contract()


def test_missing_contract_is_refused() -> None:
    eth = FakeEth()
    with pytest.raises(AnchorConfigError, match="no anchor contract is configured"):
        PublicChain(config(), eth).contract()
    with pytest.raises(PublicChainError, match="there is no contract at 0x"):
        PublicChain(config(contract="0x" + "12" * 20), eth).contract()


def test_foreign_code_and_foreign_owner_are_refused() -> None:
    eth = FakeEth()
    address = eth.install_contract()
    eth.codes[address.lower()] = b"\x60\x00"
    with pytest.raises(PublicChainError, match="is not this build's CheckpointAnchor"):
        PublicChain(config(contract=address), eth).contract()
    eth2 = FakeEth()
    theirs = eth2.install_contract(owner="0x" + "77" * 20)
    with pytest.raises(PublicChainError, match="anchors only for its owner 0x7777"):
        PublicChain(config(contract=theirs), eth2).contract()


def test_deploy_then_the_contract_passes_the_checks() -> None:
    eth, t = FakeEth(), FakeTime()
    t.hooks.append(eth.mine)
    public = PublicChain(config(confirmations=1), eth)
    public.sender = lambda on_sent=None: TxSender(  # type: ignore[method-assign]
        eth, KEY, 1337, SendPolicy(confirmations=1, poll_s=0.5), clock=t.clock, sleep=t.sleep)
    deployed = public.deploy()
    assert deployed.chain_id == 1337 and deployed.block_number == eth.height
    assert PublicChain(config(contract=deployed.address), eth).contract() == deployed.address
    # Another key may not anchor through it.
    with pytest.raises(PublicChainError, match="anchors only for its owner"):
        PublicChain(config(contract=deployed.address, key=OTHER_KEY), eth).contract()
