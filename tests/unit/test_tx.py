"""Tx envelope: canonical encoding, signatures and one distinct code per kind of bad input."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fedledger.abci_app.canonical import CanonicalError, canonical_bytes, parse_canonical
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.tx import MAX_TX_BYTES, decode_tx
from tests.support import CHAIN, Signer


def test_round_trip_and_hash_is_stable() -> None:
    s = Signer(1)
    raw = s.tx("register_participant", {"role": "trainer", "name": "a"})
    tx = decode_tx(raw, CHAIN)
    assert tx.type == "register_participant" and tx.signer == s.hex and tx.nonce == 1
    assert raw == s.tx("register_participant", {"role": "trainer", "name": "a"}, nonce=1)  # Ed25519 is deterministic
    assert len(tx.hash) == 64


def _code(raw: bytes) -> Code:
    with pytest.raises(TxError) as info:
        decode_tx(raw, CHAIN)
    return info.value.code


def test_each_bad_input_has_its_own_code() -> None:
    s = Signer(2)
    good = s.tx("open_round", {"task_id": "t", "round": 1})
    env = json.loads(good)
    assert _code(b"") == Code.ENCODING
    assert _code(b"\xff\x00garbage") == Code.ENCODING
    assert _code(b"x" * (MAX_TX_BYTES + 1)) == Code.OVERSIZE
    assert _code(s.tx("open_round", {"task_id": "t", "round": 1}, chain="other")) == Code.WRONG_CHAIN
    env_bad_sig = dict(env, sig="00" * 64)
    assert _code(canonical_bytes(env_bad_sig)) == Code.BAD_SIGNATURE
    tampered = dict(env, body={"task_id": "t", "round": 2})  # body changed after signing
    assert _code(canonical_bytes(tampered)) == Code.BAD_SIGNATURE
    other = Signer(3)
    assert _code(canonical_bytes(dict(env, signer=other.hex))) == Code.BAD_SIGNATURE
    # Same content, non-canonical spelling: refused, so no two byte strings carry one signed tx.
    assert _code(json.dumps(env, indent=1).encode()) == Code.ENCODING
    assert _code(canonical_bytes({k: v for k, v in env.items() if k != "nonce"})) == Code.ENCODING


def test_floats_and_duplicates_are_refused() -> None:
    with pytest.raises(CanonicalError):
        parse_canonical(b'{"a":1.5}')
    with pytest.raises(CanonicalError):
        parse_canonical(b'{"a":1,"a":2}')
    with pytest.raises(CanonicalError):
        canonical_bytes({"a": 0.1})
    with pytest.raises(CanonicalError):
        parse_canonical(b'{"a":NaN}')


@given(st.binary(max_size=512))
def test_arbitrary_bytes_never_crash_decode(data: bytes) -> None:
    try:
        decode_tx(data, CHAIN)
    except TxError as exc:
        assert exc.code != Code.OK and exc.log
