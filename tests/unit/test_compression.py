"""Compression of updates: top-k with error feedback, 8-bit quantization, deltas, shared masks, the wire format."""

from __future__ import annotations

import hashlib
import math
import struct
from fractions import Fraction

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from fedledger.sdk.compression import (
    CompressionError,
    ErrorFeedback,
    Quantized8,
    SharedSparseUpdate,
    SparseUpdate,
    WireError,
    decode,
    delta,
    dequantize8,
    encode,
    encoded_size,
    gather,
    quantize8,
    restore,
    scatter,
    shared_coordinates,
    tensor_delta,
    tensor_restore,
    top_k,
)
from fedledger.sdk.compression.wire import KIND_DENSE, KIND_QUANT8, KIND_SHARED, KIND_TOPK

F32 = np.float32


def _rng(tag: int) -> np.random.Generator:
    # Test data only; the library never uses numpy's generators.
    return np.random.default_rng(tag)


def _ref_top_k(x: np.ndarray, k: int) -> np.ndarray:
    """Straightforward reference: sort by (−|x|, index), keep k, sort the indices."""
    order = np.lexsort((np.arange(x.shape[0]), -np.abs(x.astype(np.float64))))
    return np.sort(order[:k]).astype(np.uint32)


# ---------------------------------------------------------------- top-k

@pytest.mark.parametrize("k", [0, 1, 7, 100, 999, 1000])
def test_top_k_matches_the_sorting_reference(k: int) -> None:
    x = _rng(k).standard_normal(1000).astype(F32)
    s = top_k(x, k)
    assert s.indices.dtype == np.uint32 and s.values.dtype == F32 and s.k == k
    assert np.array_equal(s.indices, _ref_top_k(x, k))
    assert np.array_equal(s.values, x[s.indices])
    dense = s.to_dense()
    assert np.array_equal(dense[s.indices], x[s.indices]) and np.count_nonzero(dense) <= k


def test_top_k_breaks_ties_by_lowest_index() -> None:
    x = np.array([1, -3, 2, 3, -3, 0, 3, 2], dtype=F32)
    assert top_k(x, 2).indices.tolist() == [1, 3]
    assert top_k(x, 4).indices.tolist() == [1, 3, 4, 6]
    assert top_k(x, 5).indices.tolist() == [1, 2, 3, 4, 6]
    many = np.ones(10_000, dtype=F32)
    assert top_k(many, 10).indices.tolist() == list(range(10))
    with_ties = np.round(_rng(3).standard_normal(5000) * 3).astype(F32)  # heavy ties
    for k in (1, 50, 2500):
        assert np.array_equal(top_k(with_ties, k).indices, _ref_top_k(with_ties, k))


def test_error_feedback_is_exact_for_integer_updates() -> None:
    rng = _rng(11)
    d, k, rounds = 500, 13, 40
    ef = ErrorFeedback(d)
    sent_total = np.zeros(d, dtype=np.float64)
    input_total = np.zeros(d, dtype=np.float64)
    for _ in range(rounds):
        x = rng.integers(-1000, 1000, size=d).astype(F32)  # every addition is exact in float64
        s = ef.compress(x, k)
        assert s.k == k
        sent_total[s.indices] += s.values
        input_total += x
    assert np.array_equal(sent_total + ef.residual, input_total)


def test_error_feedback_conserves_mass_within_the_float64_bound() -> None:
    rng = _rng(12)
    d, k, rounds = 300, 5, 30
    ef = ErrorFeedback(d)
    sent = [Fraction(0)] * d
    inputs = [Fraction(0)] * d
    bound = [0.0] * d
    for _ in range(rounds):
        x = (rng.standard_normal(d) * 10 ** rng.uniform(-3, 3)).astype(F32)
        acc = ef.residual + x
        s = ef.compress(x, k)
        for i, v in zip(s.indices.tolist(), s.values.tolist(), strict=True):
            sent[i] += Fraction(v)
        for i in range(d):
            inputs[i] += Fraction(float(x[i]))
            bound[i] += 2.0**-53 * abs(float(acc[i]))  # one float64 rounding per round
    residual = ef.residual
    for i in range(d):
        # Exact rational arithmetic: Σ sent + residual − Σ inputs is the sum of the float64 addition errors.
        err = abs(sent[i] + Fraction(float(residual[i])) - inputs[i])
        assert err <= Fraction(bound[i])


def test_error_feedback_sends_what_accumulated() -> None:
    ef = ErrorFeedback(4)
    a = ef.compress(np.array([1.0, 0.1, 0.2, 0.0], dtype=F32), 1)
    assert a.indices.tolist() == [0]
    b = ef.compress(np.array([0.0, 0.1, 0.2, 0.0], dtype=F32), 1)
    assert b.indices.tolist() == [2] and b.values[0] == np.float32(0.4)  # 0.2 carried + 0.2 new
    assert ef.residual[1] == pytest.approx(0.2) and ef.residual[2] == pytest.approx(0.0, abs=1e-8)
    ef.reset()
    assert not ef.residual.any()
    with pytest.raises(CompressionError, match="4"):
        ef.compress(np.zeros(5, dtype=F32), 1)


@pytest.mark.parametrize("bad, match", [
    (np.zeros((2, 2), dtype=F32), "1-D"),
    (np.array([1.0, np.inf], dtype=F32), "NaN or infinite"),
    (np.zeros(3), "float32"),
])
def test_top_k_refuses_bad_input(bad: np.ndarray, match: str) -> None:
    with pytest.raises(CompressionError, match=match):
        top_k(bad, 1)


def test_top_k_refuses_bad_k() -> None:
    for k in (-1, 4, True, 1.5):
        with pytest.raises(CompressionError, match="k must be"):
            top_k(np.zeros(3, dtype=F32), k)  # type: ignore[arg-type]


# ---------------------------------------------------------------- 8-bit quantization

def test_quant8_is_unbiased() -> None:
    rng = _rng(21)
    d, trials = 512, 2000
    x = (rng.standard_normal(d) * 3).astype(F32)
    total = np.zeros(d, dtype=np.float64)
    step = None
    for t in range(trials):
        q = quantize8(x, seed=t.to_bytes(4, "little"), chunk_size=128)
        step = q.scales
        total += dequantize8(q).astype(np.float64)
    assert step is not None
    s = np.repeat(step.astype(np.float64), 128)
    mean_err = total / trials - x.astype(np.float64)
    # Per coordinate the rounding error has variance ≤ s²/4, so its mean over the trials has std
    # ≤ s/(2·sqrt(trials)); 5 of those per coordinate, and 5 of the pooled std over all of them.
    assert (np.abs(mean_err) <= 5 * s / (2 * math.sqrt(trials))).all()
    pooled = float(np.mean(mean_err / s))
    assert abs(pooled) <= 5 / (2 * math.sqrt(trials * d))


def test_quant8_error_is_below_one_step_and_codes_use_the_range() -> None:
    rng = _rng(22)
    x = (rng.standard_normal(100_003) * rng.uniform(0.01, 100)).astype(F32)
    for chunk in (None, 1000, 7):
        q = quantize8(x, seed=b"e", chunk_size=chunk)
        c = q.chunk_size
        s = np.repeat(q.scales.astype(np.float64), c)[: x.shape[0]]
        err = np.abs(dequantize8(q).astype(np.float64) - x)
        ulp = np.spacing(np.abs(x)).astype(np.float64)
        assert (err <= s + ulp).all()
        assert q.codes.min() == 0 and q.codes.max() == 255
        lo = np.repeat(q.lows, c)[: x.shape[0]]
        assert np.array_equal(lo, np.minimum.reduceat(x, np.arange(0, x.shape[0], c)).repeat(c)[: x.shape[0]])


def test_quant8_endpoints_and_constant_chunks_are_exact() -> None:
    x = np.array([5.0, 5.0, 5.0, -1.0, 2.0, 7.0], dtype=F32)
    q = quantize8(x, seed=b"c", chunk_size=3)
    out = dequantize8(q)
    assert q.scales[0] == 0 and out[:3].tolist() == [5.0, 5.0, 5.0]
    assert out[3] == -1.0 and out[5] == np.float32(-1.0 + 255 * float(q.scales[1]))
    assert float(q.scales[1]) * 255 >= 8.0  # the step is rounded up, so the max is reachable without clipping


def test_quant8_is_deterministic_given_a_seed() -> None:
    x = _rng(23).standard_normal(1000).astype(F32)
    a, b = quantize8(x, seed=b"r1"), quantize8(x, seed=b"r1")
    assert np.array_equal(a.codes, b.codes) and encode(a) == encode(b)
    assert not np.array_equal(a.codes, quantize8(x, seed=b"r2").codes)
    assert quantize8(x, chunk_size=10**6).chunk_size == 1000  # one canonical single-chunk form


# ---------------------------------------------------------------- deltas and layout

def test_delta_restore_round_trip() -> None:
    rng = _rng(31)
    base = rng.standard_normal(10_000).astype(F32)
    new = (base + rng.standard_normal(10_000) * 0.01).astype(F32)
    d = delta(new, base)
    back = restore(base, d)
    bound = 2.0**-23 * (np.abs(new.astype(np.float64) - base) + np.abs(new.astype(np.float64)))
    assert (np.abs(back.astype(np.float64) - new) <= bound).all()
    ints = rng.integers(-100, 100, size=50).astype(F32)
    assert np.array_equal(restore(ints, delta(ints * 2, ints)), ints * 2)
    with pytest.raises(CompressionError, match="shape mismatch"):
        delta(np.zeros(3, dtype=F32), np.zeros(4, dtype=F32))


def test_tensor_delta_checks_names_and_shapes() -> None:
    base = {"w": np.ones((2, 3), dtype=F32), "b": np.zeros(3, dtype=F32)}
    new = {"w": np.full((2, 3), 3, dtype=F32), "b": np.ones(3, dtype=F32)}
    d = tensor_delta(new, base)
    assert d["w"].tolist() == [[2.0] * 3] * 2
    back = tensor_restore(base, d)
    assert all(np.array_equal(back[n], new[n]) for n in new)
    with pytest.raises(CompressionError, match=r"only in new \['x'\]"):
        tensor_delta({**new, "x": np.ones(1, dtype=F32)}, base)
    with pytest.raises(CompressionError, match="shape mismatch"):
        tensor_delta({**new, "b": np.ones(4, dtype=F32)}, base)


# ---------------------------------------------------------------- shared coordinates

def _ref_shared(seed: bytes, d: int, k: int) -> list[int]:
    """The documented derivation, written out independently with the cryptography package."""
    domain = b"fedledger/compression/shared-coordinates"
    key = hashlib.sha256(b"fedledger/prg/v1" + struct.pack("<H", len(domain)) + domain + seed).digest()
    stream = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor().update(bytes(8 * d))
    words = [int.from_bytes(stream[8 * i:8 * i + 8], "little") for i in range(d)]
    return sorted(sorted(range(d), key=lambda i: (-words[i], i))[:k])


def test_shared_coordinates_follow_the_documented_derivation() -> None:
    for seed, d, k in [(bytes(32), 50, 7), (b"\x01" * 32, 1000, 100), (hashlib.sha256(b"r").digest(), 17, 17)]:
        assert shared_coordinates(seed, d, k).tolist() == _ref_shared(seed, d, k)
    # Pinned: a change here breaks agreement between clients running different versions.
    assert shared_coordinates(bytes(32), 20, 5).tolist() == _ref_shared(bytes(32), 20, 5)


def test_shared_coordinates_are_identical_across_clients_and_differ_across_seeds() -> None:
    seed = hashlib.sha256(b"block 42").digest()
    clients = [shared_coordinates(bytes(seed), 100_000, 1000) for _ in range(5)]
    assert all(np.array_equal(c, clients[0]) for c in clients)
    c = clients[0]
    assert c.dtype == np.uint32 and c.shape == (1000,) and (np.diff(c.astype(np.int64)) > 0).all()
    assert int(c[-1]) < 100_000
    other = shared_coordinates(hashlib.sha256(b"block 43").digest(), 100_000, 1000)
    assert len(set(c.tolist()) & set(other.tolist())) < 60  # expected overlap 10
    assert shared_coordinates(seed, 10, 10).tolist() == list(range(10))
    assert shared_coordinates(seed, 10, 0).shape == (0,)


def test_shared_coordinates_are_uniform() -> None:
    d, k, trials = 40, 10, 4000
    counts = np.zeros(d)
    for t in range(trials):
        counts[shared_coordinates(hashlib.sha256(t.to_bytes(4, "little")).digest(), d, k)] += 1
    p = k / d
    expected = trials * p
    assert (np.abs(counts - expected) <= 5 * math.sqrt(trials * p * (1 - p))).all()


def test_gather_scatter_and_bad_seeds() -> None:
    seed = bytes(range(32))
    x = np.arange(100, dtype=F32)
    c = shared_coordinates(seed, 100, 10)
    vals = gather(x, c)
    assert vals.tolist() == c.astype(np.float32).tolist()
    dense = scatter(vals, c, 100)
    assert np.array_equal(dense[c], vals) and np.count_nonzero(dense) == np.count_nonzero(vals)
    assert np.array_equal(SharedSparseUpdate(100, vals).to_dense(c), dense)
    with pytest.raises(CompressionError, match="32 bytes"):
        shared_coordinates(b"short", 100, 10)
    with pytest.raises(CompressionError, match="must be bytes"):
        shared_coordinates("x" * 32, 100, 10)  # type: ignore[arg-type]
    with pytest.raises(CompressionError, match="k must be"):
        shared_coordinates(seed, 100, 101)


# ---------------------------------------------------------------- wire format

def _samples() -> list[object]:
    x = _rng(41).standard_normal(1001).astype(F32)
    return [x, ErrorFeedback(1001).compress(x, 10), top_k(x, 0), quantize8(x, seed=b"w", chunk_size=100),
            quantize8(x, seed=b"w"), SharedSparseUpdate(1001, x[:37].copy())]


def _same(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and b.dtype == a.dtype and np.array_equal(a, b)
    assert type(a) is type(b)
    fields = {"SparseUpdate": ("size", "indices", "values"), "SharedSparseUpdate": ("size", "values"),
              "Quantized8": ("size", "chunk_size", "lows", "scales", "codes")}[type(a).__name__]
    return all(np.array_equal(getattr(a, f), getattr(b, f)) and np.asarray(getattr(b, f)).dtype
               == np.asarray(getattr(a, f)).dtype for f in fields)


def test_wire_round_trips_and_sizes() -> None:
    x, sparse, empty, q_chunked, q_whole, shared = _samples()
    sizes = [encoded_size(KIND_DENSE, 1001), encoded_size(KIND_TOPK, 1001, k=10), encoded_size(KIND_TOPK, 1001, k=0),
             encoded_size(KIND_QUANT8, 1001, chunk_size=100), encoded_size(KIND_QUANT8, 1001, chunk_size=1001),
             encoded_size(KIND_SHARED, 1001, k=37)]
    assert sizes == [10 + 4004, 14 + 80, 14, 14 + 8 * 11 + 1001, 14 + 8 + 1001, 14 + 148]
    for obj, n in zip(_samples(), sizes, strict=True):
        raw = encode(obj)  # type: ignore[arg-type]
        assert len(raw) == n
        back = decode(raw)
        assert _same(obj, back)
        assert encode(back) == raw  # canonical
    assert encode(x) == b"FLCU\x01\x01" + struct.pack("<I", 1001) + x.astype("<f4").tobytes()


def test_wire_sizes_at_one_million_coordinates() -> None:
    d = 10**6
    x = _rng(42).standard_normal(d).astype(F32)
    assert len(encode(x)) == 4_000_010
    assert len(encode(top_k(x, d // 100))) == 80_014
    assert len(encode(quantize8(x, seed=b"m"))) == 1_000_022
    assert len(encode(quantize8(x, seed=b"m", chunk_size=4096))) == 1_001_974
    assert len(encode(SharedSparseUpdate(d, x[: d // 100].copy()))) == 40_014


def test_wire_refuses_every_truncation_and_trailing_bytes() -> None:
    for obj in _samples():
        raw = encode(obj)  # type: ignore[arg-type]
        for cut in range(len(raw)):
            with pytest.raises(WireError, match="truncated"):
                decode(raw[:cut])
        with pytest.raises(WireError, match="1 trailing bytes"):
            decode(raw + b"\x00")


def _header(kind: int, d: int) -> bytes:
    return b"FLCU\x01" + bytes([kind]) + struct.pack("<I", d)


@pytest.mark.parametrize("raw, match", [
    (b"", "truncated"),
    (b"GARBAGE!garbage-garbage", "magic"),
    (b"FLCU\x02\x01" + struct.pack("<I", 1) + b"\0" * 4, "version 2"),
    (b"FLCU\x01\x09" + struct.pack("<I", 1) + b"\0" * 4, "unknown kind 9"),
    (_header(KIND_DENSE, 0), "size 0"),
    (_header(KIND_DENSE, 2**31) + b"\0" * 8, "size 2147483648"),
    (_header(KIND_DENSE, 1) + struct.pack("<f", float("nan")), "NaN"),
    (_header(KIND_TOPK, 3) + struct.pack("<I", 4) + b"\0" * 32, "k = 4 exceeds size 3"),
    (_header(KIND_TOPK, 3) + struct.pack("<I2I2f", 2, 2, 1, 1.0, 1.0), "strictly increasing"),
    (_header(KIND_TOPK, 3) + struct.pack("<I2I2f", 2, 1, 1, 1.0, 1.0), "strictly increasing"),
    (_header(KIND_TOPK, 3) + struct.pack("<I2I2f", 2, 0, 3, 1.0, 1.0), "out of range"),
    (_header(KIND_TOPK, 3) + struct.pack("<I1I1f", 1, 0, float("inf")), "NaN or infinite"),
    (_header(KIND_QUANT8, 3) + struct.pack("<I", 0), "chunk_size 0"),
    (_header(KIND_QUANT8, 3) + struct.pack("<I", 4), "chunk_size 4"),
    (_header(KIND_QUANT8, 2) + struct.pack("<I2f", 2, 0.0, -1.0) + b"\0\0", "non-negative"),
    (_header(KIND_QUANT8, 2) + struct.pack("<I2f", 2, float("nan"), 1.0) + b"\0\0", "finite"),
    (_header(KIND_SHARED, 2) + struct.pack("<I", 3), "k = 3 exceeds size 2"),
])
def test_wire_refuses_garbage(raw: bytes, match: str) -> None:
    with pytest.raises(WireError, match=match):
        decode(raw)


def test_wire_refuses_random_bytes_and_bad_objects() -> None:
    rng = _rng(43)
    for n in (3, 10, 14, 100, 4000):
        with pytest.raises(WireError):
            decode(rng.integers(0, 256, size=n, dtype=np.uint8).tobytes())
    with pytest.raises(WireError, match="expected bytes"):
        decode("FLCU")  # type: ignore[arg-type]
    with pytest.raises(WireError, match="cannot encode"):
        encode([1.0, 2.0])  # type: ignore[arg-type]
    with pytest.raises(WireError, match="1-D float32"):
        encode(np.zeros(3))


def test_compressed_forms_validate_their_fields() -> None:
    with pytest.raises(CompressionError, match="strictly increasing"):
        SparseUpdate(5, np.array([2, 1], dtype=np.uint32), np.zeros(2, dtype=F32))
    with pytest.raises(CompressionError, match="one value per index"):
        SparseUpdate(5, np.array([1], dtype=np.uint32), np.zeros(2, dtype=F32))
    with pytest.raises(CompressionError, match="codes"):
        Quantized8(4, 2, np.zeros(2, dtype=F32), np.zeros(2, dtype=F32), np.zeros(3, dtype=np.uint8))
