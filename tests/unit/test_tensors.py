import random
import struct
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fedledger.sdk.tensors import (
    MAGIC,
    MAX_NDIM,
    MAX_TOTAL_ELEMENTS,
    PayloadError,
    decode_tensors,
    encode_tensors,
)

names = st.text(min_size=1, max_size=20)
finite_f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)
arrays = hnp.arrays(np.float32, shapes, elements=finite_f32)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(names, arrays, max_size=6))
def test_round_trip_any_shapes(tensors: dict[str, npt.NDArray[np.float32]]) -> None:
    data = encode_tensors(tensors)
    out = decode_tensors(data)
    assert sorted(out) == sorted(tensors)
    for name, arr in tensors.items():
        assert out[name].dtype == np.float32
        assert out[name].shape == arr.shape
        # Byte comparison also distinguishes -0.0 from 0.0.
        assert out[name].tobytes() == arr.tobytes()
    assert encode_tensors(out) == data


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(names, arrays, min_size=1, max_size=6), st.randoms())
def test_bytes_do_not_depend_on_insertion_order(
    tensors: dict[str, npt.NDArray[np.float32]], rnd: random.Random
) -> None:
    items = list(tensors.items())
    rnd.shuffle(items)
    assert encode_tensors(dict(items)) == encode_tensors(tensors)


def test_known_layout_and_determinism() -> None:
    t = {"b": np.array([1.0, -2.0], dtype=np.float32), "a": np.array(0.5, dtype=np.float32)}
    data = encode_tensors(t)
    expected = (
        MAGIC
        + bytes([1])
        + struct.pack("<I", 2)
        + struct.pack("<H", 1) + b"a" + bytes([0])
        + struct.pack("<H", 1) + b"b" + bytes([1]) + struct.pack("<I", 2)
        + struct.pack("<f", 0.5)
        + struct.pack("<ff", 1.0, -2.0)
    )
    assert data == expected
    assert encode_tensors({k: v.copy() for k, v in t.items()}) == data


def test_float64_and_int_inputs_are_cast_to_float32() -> None:
    out = decode_tensors(encode_tensors({"x": np.arange(3, dtype=np.int64), "y": np.array([0.1])}))
    assert out["x"].dtype == np.float32 and out["x"].tolist() == [0.0, 1.0, 2.0]
    assert out["y"][0] == np.float32(0.1)


def test_decoded_arrays_are_writable_copies() -> None:
    data = encode_tensors({"w": np.ones((2, 2), dtype=np.float32), "b": np.zeros(3, dtype=np.float32)})
    out, again = decode_tensors(data), decode_tensors(data)
    wire = np.frombuffer(data, dtype=np.uint8)
    for name in ("w", "b"):
        assert out[name].flags.writeable
        # A copy: no memory shared with the payload, nor with another decode, nor between tensors.
        assert not np.shares_memory(out[name], wire)
        assert not np.shares_memory(out[name], again[name])
    assert not np.shares_memory(out["w"], out["b"])
    out["w"][0, 0] = 5.0
    assert again["w"][0, 0] == 1.0 and decode_tensors(data)["w"][0, 0] == 1.0 and out["b"].tolist() == [0, 0, 0]


VALID = encode_tensors(
    {"layer.bias": np.array([1.0, 2.0], np.float32), "layer.weight": np.eye(2, dtype=np.float32)}
)


@pytest.mark.parametrize("cut", range(len(VALID)))
def test_every_truncation_is_rejected(cut: int) -> None:
    with pytest.raises(PayloadError):
        decode_tensors(VALID[:cut])


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "truncated"),
        (b"hello world, not tensors", "magic"),
        (b"\x80\x03}q\x00." + b"\x00" * 8, "magic"),  # a pickle is not a payload
        (VALID + b"\x00", "trailing"),
        (VALID + b"\x00\x00\x00\x00", "trailing"),
        (b"FLTN" + bytes([2]) + VALID[5:], "version"),
        (b"FLTN" + bytes([1]) + struct.pack("<I", 10**9), "limit"),
    ],
)
def test_garbage_is_rejected(data: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        decode_tensors(data)


def _payload(entries: list[tuple[bytes, tuple[int, ...]]], body: bytes) -> bytes:
    out = MAGIC + bytes([1]) + struct.pack("<I", len(entries))
    for raw, dims in entries:
        out += struct.pack("<H", len(raw)) + raw + bytes([len(dims)]) + struct.pack(f"<{len(dims)}I", *dims)
    return bytes(out + body)


def test_hand_built_payload_decodes() -> None:
    out = decode_tensors(_payload([(b"w", (2,))], struct.pack("<ff", 1.5, 2.5)))
    assert out["w"].tolist() == [1.5, 2.5]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_values_are_rejected(bad: float) -> None:
    with pytest.raises(PayloadError, match="NaN or infinite"):
        decode_tensors(_payload([(b"w", (2,))], struct.pack("<ff", 1.0, bad)))
    with pytest.raises(PayloadError, match="NaN or infinite"):
        encode_tensors({"w": np.array([1.0, bad], dtype=np.float32)})


def test_float64_overflow_is_rejected_on_encode() -> None:
    with pytest.raises(PayloadError, match="NaN or infinite"):
        encode_tensors({"w": np.array([1e300])})


@pytest.mark.parametrize(
    "entries, body, message",
    [
        ([(b"b", (1,)), (b"a", (1,))], b"\x00" * 8, "strictly increasing"),
        ([(b"a", (1,)), (b"a", (1,))], b"\x00" * 8, "strictly increasing"),
        ([(b"", (1,))], b"\x00" * 4, "name length"),
        ([(b"\xff\xfe", (1,))], b"\x00" * 4, "UTF-8"),
        ([(b"w", (1,) * (MAX_NDIM + 1))], b"\x00" * 4, "dimensions"),
        ([(b"w", (65536, 65536))], b"", "elements"),
        ([(b"w", (0, 2**32 - 1))], b"", "absurd shape"),
        ([(b"w", (MAX_TOTAL_ELEMENTS // 2,)), (b"x", (MAX_TOTAL_ELEMENTS // 2 + 1,))], b"", "elements"),
        ([(b"w", (3,))], b"\x00" * 8, "truncated"),
    ],
)
def test_malformed_headers_are_rejected(
    entries: list[tuple[bytes, tuple[int, ...]]], body: bytes, message: str
) -> None:
    with pytest.raises(PayloadError, match=message):
        decode_tensors(_payload(entries, body))


@pytest.mark.parametrize(
    "tensors, message",
    [
        ({"": np.zeros(1)}, "non-empty"),
        ({"w": np.array(["a"])}, "dtype"),
        ({"w": np.array([1 + 2j])}, "dtype"),
        ({"w": np.zeros((1,) * (MAX_NDIM + 1))}, "dimensions"),
        ({"x" * 300: np.zeros(1)}, "limit"),
    ],
)
def test_encode_rejects_bad_input(tensors: dict[str, Any], message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        encode_tensors(tensors)


def test_decode_rejects_non_bytes() -> None:
    with pytest.raises(PayloadError, match="expected bytes"):
        not_bytes: Any = "FLTN"
        decode_tensors(not_bytes)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_crash(data: bytes) -> None:
    # Any bytes either decode to a canonical payload of finite float32 tensors or raise PayloadError
    # with a reason; any other exception fails the test.
    try:
        out = decode_tensors(data)
    except PayloadError as exc:
        assert str(exc)
        return
    assert encode_tensors(out) == data
    assert all(a.dtype == np.float32 and np.isfinite(a).all() for a in out.values())


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=len(VALID) - 1), st.integers(min_value=0, max_value=255))
def test_single_byte_corruption_is_rejected_or_harmless(pos: int, value: int) -> None:
    corrupted = bytearray(VALID)
    corrupted[pos] = value
    try:
        out = decode_tensors(bytes(corrupted))
    except PayloadError:
        return
    # If it still decodes it must be a well-formed, canonical payload.
    assert encode_tensors(out) == bytes(corrupted)
