"""PRG, key agreement/AEAD and message encodings of the SecAgg+ library."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from fedledger.sdk.secagg import keys
from fedledger.sdk.secagg.errors import SecAggError
from fedledger.sdk.secagg.messages import (
    CIPHERTEXT_BYTES,
    AdvertiseMessage,
    EncryptedShare,
    MaskedInputMessage,
    RevealedShare,
    ShareKeysMessage,
    ShareKind,
    UnmaskMessage,
)
from fedledger.sdk.secagg.prg import (
    Drbg,
    MaskAccumulator,
    derive_seed,
    dtype_for_bits,
    expand,
    keystream,
    permutation,
    uniform01,
)

SEED = bytes(range(32))
CTX = hashlib.sha256(b"round").digest()


def reference_keystream(seed: bytes, nbytes: int) -> bytes:
    """AES-128 of the counter blocks seed[16:] + i, block by block, through ECB."""
    ecb = Cipher(algorithms.AES(seed[:16]), modes.ECB()).encryptor()
    start = int.from_bytes(seed[16:], "big")
    blocks = b"".join(((start + i) % 2**128).to_bytes(16, "big") for i in range(-(-nbytes // 16)))
    return bytes(ecb.update(blocks))[:nbytes]


# --- PRG ---------------------------------------------------------------------------------------

def test_keystream_is_aes128_ctr_with_seed_key_and_counter() -> None:
    assert keystream(SEED, 1000) == reference_keystream(SEED, 1000)
    # A counter block that wraps around 2^128 in the middle of the stream.
    wrap = bytes(range(16)) + b"\xff" * 15 + b"\xfe"
    assert keystream(wrap, 100) == reference_keystream(wrap, 100)


@pytest.mark.parametrize("bits", [1, 7, 31, 32, 33, 63, 64])
def test_expand_reads_little_endian_words_masked_to_bits(bits: int) -> None:
    dim = 257
    dtype = dtype_for_bits(bits)
    raw = reference_keystream(SEED, dim * dtype.itemsize)
    width = dtype.itemsize
    want = [int.from_bytes(raw[i * width : (i + 1) * width], "little") % (1 << bits) for i in range(dim)]
    got = expand(SEED, dim, bits)
    assert got.dtype == dtype and got.flags.writeable
    assert [int(v) for v in got] == want


def test_dtype_and_bits_validation() -> None:
    assert dtype_for_bits(32) == np.uint32 and dtype_for_bits(33) == np.uint64
    for bad in (0, 65, True, 3.0):
        with pytest.raises(SecAggError, match="field bits"):
            dtype_for_bits(bad)  # type: ignore[arg-type]
    with pytest.raises(SecAggError, match="32 bytes"):
        expand(b"short", 4, 8)


def test_accumulator_matches_modular_reference() -> None:
    bits, dim = 20, 300
    seeds = [derive_seed(SEED, "s", i) for i in range(5)]
    vec = (np.arange(dim, dtype=np.uint32) * 977) % (1 << bits)
    acc = MaskAccumulator(dim, bits)
    acc.add_vector(vec)
    acc.add_seed(seeds[0])
    acc.add_seed(seeds[1])
    acc.subtract_seed(seeds[2])
    got = acc.result()
    want = [
        (int(vec[i]) + int(expand(seeds[0], dim, bits)[i]) + int(expand(seeds[1], dim, bits)[i])
         - int(expand(seeds[2], dim, bits)[i])) % (1 << bits)
        for i in range(dim)
    ]
    assert [int(v) for v in got] == want


def test_drbg_is_the_keystream_in_pieces() -> None:
    drbg = Drbg(SEED)
    assert drbg(10) + drbg(0) + drbg(37) == keystream(SEED, 47)


def test_derive_seed_separates_labels_and_parts() -> None:
    seen = {derive_seed(SEED, label, *parts) for label, parts in
            [("a", ()), ("a", (0,)), ("a", (1,)), ("b", (0,)), ("a", (0, 1)), ("a", (1, 0))]}
    assert len(seen) == 6
    assert derive_seed(SEED, "a", 3) == derive_seed(SEED, "a", 3)


def test_permutation_and_uniforms() -> None:
    p = permutation(SEED, 1000)
    assert sorted(p.tolist()) == list(range(1000))
    assert np.array_equal(p, permutation(SEED, 1000))
    assert not np.array_equal(p, permutation(derive_seed(SEED, "x"), 1000))
    u = uniform01(SEED, 100_000)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.005  # sd of the mean is 0.0009


# --- keys --------------------------------------------------------------------------------------

def test_mask_seed_is_symmetric_and_round_bound() -> None:
    rng = Drbg(SEED)
    a, b, c = (keys.generate_private_key(rng) for _ in range(3))
    ab = keys.mask_seed(a, keys.public_bytes(b), CTX)
    assert ab == keys.mask_seed(b, keys.public_bytes(a), CTX)
    assert ab != keys.mask_seed(a, keys.public_bytes(c), CTX)
    assert ab != keys.mask_seed(a, keys.public_bytes(b), derive_seed(CTX, "next"))
    # Different purposes of the same agreement give independent keys.
    assert ab != keys.aead_key(a, keys.public_bytes(b), CTX)


def test_share_encryption_round_trip_and_binding() -> None:
    rng = Drbg(SEED)
    a, b = keys.generate_private_key(rng), keys.generate_private_key(rng)
    key = keys.aead_key(a, keys.public_bytes(b), CTX)
    assert key == keys.aead_key(b, keys.public_bytes(a), CTX)
    ct = keys.encrypt_share(key, CTX, 3, 5, b"payload")
    assert keys.decrypt_share(key, CTX, 3, 5, ct) == b"payload"
    with pytest.raises(SecAggError, match="from client 5 to client 3 fail authentication"):
        keys.decrypt_share(key, CTX, 5, 3, ct)  # re-addressed
    with pytest.raises(SecAggError, match="fail authentication"):
        keys.decrypt_share(key, derive_seed(CTX, "other"), 3, 5, ct)  # replayed into another round
    tampered = bytes([ct[0] ^ 1]) + ct[1:]
    with pytest.raises(SecAggError, match="fail authentication"):
        keys.decrypt_share(key, CTX, 3, 5, tampered)


def test_public_key_loading() -> None:
    priv = keys.generate_private_key(Drbg(SEED))
    hex_key = keys.public_hex(priv)
    assert len(hex_key) == 64
    assert keys.public_bytes(keys.load_public_key(hex_key)) == keys.public_bytes(priv)
    with pytest.raises(SecAggError, match="32 bytes, got 31"):
        keys.load_public_key(bytes(31))
    with pytest.raises(SecAggError, match="not hex"):
        keys.load_public_key("zz" * 32)
    # The all-zero point has low order: agreement with it must fail cleanly.
    with pytest.raises(SecAggError, match="key agreement failed"):
        keys.mask_seed(priv, bytes(32), CTX)
    assert keys.private_bytes(keys.load_private_key(keys.private_bytes(priv))) == keys.private_bytes(priv)


# --- messages ----------------------------------------------------------------------------------

def sample_messages() -> list[AdvertiseMessage | ShareKeysMessage | MaskedInputMessage | UnmaskMessage]:
    shares = (EncryptedShare(2, bytes([1]) * CIPHERTEXT_BYTES), EncryptedShare(9, bytes([2]) * CIPHERTEXT_BYTES))
    revealed = (RevealedShare(2, ShareKind.SELF_MASK, 12345), RevealedShare(4, ShareKind.SECRET_KEY, 2**520))
    return [
        AdvertiseMessage(CTX, 7, bytes([3]) * 32, bytes([4]) * 32),
        ShareKeysMessage(CTX, 7, bytes([5]) * 32, shares),
        ShareKeysMessage(CTX, 7, bytes([5]) * 32, ()),
        MaskedInputMessage(CTX, 7, 20, np.array([0, 1, 2**20 - 1], dtype=np.uint32)),
        MaskedInputMessage(CTX, 7, 64, np.array([2**64 - 1, 5], dtype=np.uint64)),
        UnmaskMessage(CTX, 7, revealed),
    ]


@pytest.mark.parametrize("msg", sample_messages(), ids=lambda m: type(m).__name__)
def test_messages_round_trip_canonically(msg: AdvertiseMessage) -> None:
    data = msg.to_bytes()
    back = type(msg).from_bytes(data)
    assert back.to_bytes() == data
    assert back.digest() == hashlib.sha256(data).digest()
    with pytest.raises(SecAggError, match="trailing|do not fit"):
        type(msg).from_bytes(data + b"\x00")
    with pytest.raises(SecAggError):
        type(msg).from_bytes(data[:-1])


def test_masked_input_encoding_is_little_endian_words() -> None:
    msg = MaskedInputMessage(CTX, 1, 32, np.array([1, 2**32 - 1], dtype=np.uint32))
    assert msg.to_bytes()[-8:] == b"\x01\x00\x00\x00\xff\xff\xff\xff"
    assert MaskedInputMessage.from_bytes(msg.to_bytes()).vector.tolist() == [1, 2**32 - 1]


def test_message_validation() -> None:
    adv = sample_messages()[0]
    with pytest.raises(SecAggError, match="kind 1, expected 2"):
        ShareKeysMessage.from_bytes(adv.to_bytes())
    with pytest.raises(SecAggError, match="not a FedLedger SecAgg"):
        AdvertiseMessage.from_bytes(b"XXXX" + adv.to_bytes()[4:])
    with pytest.raises(SecAggError, match="sorted by index"):
        UnmaskMessage(CTX, 1, (RevealedShare(4, ShareKind.SELF_MASK, 1), RevealedShare(2, ShareKind.SELF_MASK, 1)))
    with pytest.raises(SecAggError, match="sorted by index"):
        ShareKeysMessage(CTX, 1, bytes(32), (EncryptedShare(3, bytes(CIPHERTEXT_BYTES)),) * 2)
    with pytest.raises(SecAggError, match="to itself"):
        ShareKeysMessage(CTX, 3, bytes(32), (EncryptedShare(3, bytes(CIPHERTEXT_BYTES)),))
    with pytest.raises(SecAggError, match="values ≥ 2\\^4"):
        MaskedInputMessage(CTX, 1, 4, np.array([16], dtype=np.uint32))
    with pytest.raises(SecAggError, match="1-D uint64"):
        MaskedInputMessage(CTX, 1, 40, np.array([16], dtype=np.uint32))
    with pytest.raises(SecAggError, match="not a field element"):
        RevealedShare(1, ShareKind.SELF_MASK, 2**521 - 1)
    with pytest.raises(SecAggError, match="round context"):
        AdvertiseMessage(b"short", 1, bytes(32), bytes(32))
    data = bytearray(sample_messages()[-1].to_bytes())
    data[38 + 8 + 4] = 7  # the first revealed share's kind byte
    with pytest.raises(SecAggError, match="unknown share kind 7"):
        UnmaskMessage.from_bytes(bytes(data))
