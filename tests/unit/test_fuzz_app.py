"""Property tests: arbitrary and mutated tx bytes never crash CheckTx/FinalizeBlock and never change state."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedledger.abci_app.errors import Code
from fedledger.abci_app.modules.auth.nonces import nonce_key
from fedledger.abci_app.store import CommittedStore
from tests.support import DP, Chain, Signer, model_ref

_signer = Signer(77)


def _valid_txs() -> list[bytes]:
    s = Signer(77)
    return [
        s.admit("trainer"),
        s.tx("commit_contribution", {"task_id": "t", "round": 1, "base_version": 0, "num_examples": 3,
                                     "dp": DP, **model_ref("x")}),
        s.tx("propose_version", {"task_id": "t", "round": 1, "contributors": [s.hex], **model_ref("y")}),
    ]


VALID = _valid_txs()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid tx with bytes flipped, inserted or deleted."""
    raw = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete"]))
        pos = draw(st.integers(0, len(raw) - 1))
        if op == "flip":
            raw[pos] ^= draw(st.integers(1, 255))
        elif op == "insert":
            raw.insert(pos, draw(st.integers(0, 255)))
        elif len(raw) > 1:
            del raw[pos]
    return bytes(raw)


tx_bytes = st.one_of(st.binary(max_size=2048), mutated())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(tx_bytes, min_size=1, max_size=5))
def test_garbage_never_crashes_and_never_changes_state(txs: list[bytes]) -> None:
    store = CommittedStore(":memory:")
    chain = Chain(store)
    chain.ok()  # block 1: genesis state committed
    before = chain.sm.app_hash
    for raw in txs:
        res = chain.sm.check_tx(raw)
        if raw not in VALID:
            assert res.code != Code.OK and res.log
    results = chain.block(*[t for t in txs if t not in VALID])
    assert all(r.code != Code.OK and r.log for r in results)
    # Nothing moved: same root as an empty block would give, no nonce recorded.
    assert chain.sm.app_hash == before
    assert store.get(nonce_key(_signer.hex)) is None
    store.close()


@settings(max_examples=100, deadline=None)
@given(mutated())
def test_mutation_of_a_signed_tx_is_rejected(raw: bytes) -> None:
    store = CommittedStore(":memory:")
    chain = Chain(store)
    if raw in VALID:
        return
    res = chain.sm.check_tx(raw)
    assert res.code in {Code.ENCODING, Code.BAD_SIGNATURE, Code.OVERSIZE, Code.WRONG_CHAIN}, (res.code, res.log)
    store.close()
