"""Safe, deterministic binary codec for named float32 tensors (model weights and deltas)."""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.abci_app.errors import ProtocolError

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "MAX_NAME_BYTES",
    "MAX_NDIM",
    "MAX_TENSORS",
    "MAX_TOTAL_ELEMENTS",
    "PayloadError",
    "Tensors",
    "decode_tensors",
    "encode_tensors",
]

# Layout (all integers little-endian):
#   magic "FLTN" | u8 version | u32 tensor count
#   per tensor, names in strictly increasing order:
#       u16 name length | UTF-8 name | u8 ndim | ndim x u32 dims
#   then every tensor's data, in the same order, as little-endian float32 (C order).
# Exactly one encoding exists per set of tensors (sorted names, fixed widths, no padding, no trailing
# bytes), so equal tensors give equal bytes and therefore equal content hashes.
MAGIC = b"FLTN"
FORMAT_VERSION = 1

# Limits protect the decoder from hostile payloads that announce huge allocations.
MAX_TENSORS = 4096
MAX_NAME_BYTES = 256
MAX_NDIM = 8
MAX_TOTAL_ELEMENTS = 1 << 27  # 128 Mi float32 values = 512 MiB, far above any model used here

_PREFIX = struct.Struct("<4sBI")
_U16 = struct.Struct("<H")
_U8 = struct.Struct("<B")
_U32 = struct.Struct("<I")
_LE_F32 = np.dtype("<f4")

Tensors = dict[str, npt.NDArray[np.float32]]
"""Named float32 tensors, e.g. a model's weights or a weight delta."""


class PayloadError(ProtocolError):
    """A tensor payload cannot be encoded or decoded (malformed, truncated, non-finite, too large)."""

    error_code = "PAYLOAD"


def _check_name(name: object) -> bytes:
    """Return the UTF-8 bytes of a tensor name after checking it is a sensible, bounded string."""
    if not isinstance(name, str) or not name:
        raise PayloadError(f"tensor name must be a non-empty string, got {name!r}")
    raw = name.encode("utf-8")
    if len(raw) > MAX_NAME_BYTES:
        raise PayloadError(f"tensor name {name[:40]!r}... is {len(raw)} bytes, limit is {MAX_NAME_BYTES}")
    return raw


def encode_tensors(tensors: Mapping[str, npt.NDArray[Any]]) -> bytes:
    """Encode named real-valued arrays as float32 into the canonical FedLedger tensor payload.

    Raises PayloadError for non-numeric or non-finite values, bad names, or sizes over the limits.
    """
    if not isinstance(tensors, Mapping):
        raise PayloadError(f"expected a mapping of name -> array, got {type(tensors).__name__}")
    if len(tensors) > MAX_TENSORS:
        raise PayloadError(f"{len(tensors)} tensors exceed the limit of {MAX_TENSORS}")
    header = bytearray()
    bodies: list[bytes] = []
    total = 0
    names = sorted(tensors)  # str order equals UTF-8 byte order, the order the decoder checks
    header += _PREFIX.pack(MAGIC, FORMAT_VERSION, len(names))
    for name in names:
        raw_name = _check_name(name)
        arr = np.asarray(tensors[name])
        if arr.dtype.kind not in "fiu":
            raise PayloadError(f"tensor {name!r} has dtype {arr.dtype}, expected a real number type")
        if arr.ndim > MAX_NDIM:
            raise PayloadError(f"tensor {name!r} has {arr.ndim} dimensions, limit is {MAX_NDIM}")
        if any(dim > MAX_TOTAL_ELEMENTS for dim in arr.shape):
            raise PayloadError(
                f"tensor {name!r} has shape {arr.shape}; no dimension may exceed {MAX_TOTAL_ELEMENTS}"
            )
        total += arr.size
        if total > MAX_TOTAL_ELEMENTS:
            raise PayloadError(f"payload exceeds {MAX_TOTAL_ELEMENTS} elements")
        with np.errstate(over="ignore"):  # float64 values beyond float32 range become inf, rejected below
            as_f32 = np.ascontiguousarray(arr, dtype=_LE_F32)
        if not np.isfinite(as_f32).all():
            raise PayloadError(f"tensor {name!r} contains NaN or infinite values (after casting to float32)")
        header += _U16.pack(len(raw_name)) + raw_name + _U8.pack(arr.ndim)
        for dim in arr.shape:
            header += _U32.pack(dim)
        bodies.append(as_f32.tobytes(order="C"))
    return bytes(header) + b"".join(bodies)


class _Reader:
    """Bounds-checked cursor over a payload; every short read becomes a PayloadError."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        """Return the next n bytes or raise PayloadError naming the truncated field."""
        end = self.pos + n
        if end > len(self.data):
            raise PayloadError(
                f"payload truncated while reading {what} (need {n} bytes at offset {self.pos}, "
                f"have {len(self.data) - self.pos})"
            )
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk


def decode_tensors(data: bytes) -> Tensors:
    """Decode and validate a tensor payload produced by encode_tensors.

    Only the canonical encoding is accepted; anything else (bad magic or version, truncation,
    unsorted or duplicate names, trailing bytes, NaN/Inf, shapes beyond the limits) raises PayloadError.
    The returned arrays are independent, writable, native float32 copies.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise PayloadError(f"expected bytes, got {type(data).__name__}")
    buf = bytes(data)
    reader = _Reader(buf)
    magic, version, count = _PREFIX.unpack(reader.take(_PREFIX.size, "header"))
    if magic != MAGIC:
        raise PayloadError(f"not a FedLedger tensor payload (magic {magic!r}, expected {MAGIC!r})")
    if version != FORMAT_VERSION:
        raise PayloadError(f"unsupported tensor payload version {version} (supported: {FORMAT_VERSION})")
    if count > MAX_TENSORS:
        raise PayloadError(f"payload announces {count} tensors, limit is {MAX_TENSORS}")

    entries: list[tuple[str, tuple[int, ...]]] = []
    total = 0
    previous: bytes | None = None
    for index in range(count):
        (name_len,) = _U16.unpack(reader.take(_U16.size, f"name length of tensor #{index}"))
        if name_len == 0 or name_len > MAX_NAME_BYTES:
            raise PayloadError(f"tensor #{index} has name length {name_len}, allowed 1..{MAX_NAME_BYTES}")
        raw_name = reader.take(name_len, f"name of tensor #{index}")
        try:
            name = raw_name.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PayloadError(f"tensor #{index} name is not valid UTF-8") from exc
        if previous is not None and raw_name <= previous:
            raise PayloadError(f"tensor names not strictly increasing at {name!r} (duplicate or unsorted)")
        previous = raw_name
        (ndim,) = _U8.unpack(reader.take(_U8.size, f"ndim of tensor {name!r}"))
        if ndim > MAX_NDIM:
            raise PayloadError(f"tensor {name!r} has {ndim} dimensions, limit is {MAX_NDIM}")
        dims = struct.unpack(f"<{ndim}I", reader.take(4 * ndim, f"shape of tensor {name!r}"))
        if any(dim > MAX_TOTAL_ELEMENTS for dim in dims):
            raise PayloadError(f"tensor {name!r} has absurd shape {dims}")
        # Python ints cannot overflow, so the running product is an exact bound check.
        size = math.prod(dims)
        total += size
        if total > MAX_TOTAL_ELEMENTS:
            raise PayloadError(f"payload announces over {MAX_TOTAL_ELEMENTS} elements (at tensor {name!r})")
        entries.append((name, tuple(dims)))

    expected = reader.pos + 4 * total
    if len(buf) < expected:
        raise PayloadError(f"payload truncated: tensor data needs {expected} bytes in total, got {len(buf)}")
    if len(buf) > expected:
        raise PayloadError(f"payload has {len(buf) - expected} trailing bytes after the tensor data")

    out: Tensors = {}
    for name, dims in entries:
        size = math.prod(dims)
        flat = np.frombuffer(buf, dtype=_LE_F32, count=size, offset=reader.pos)
        reader.pos += 4 * size
        arr = flat.astype(np.float32).reshape(dims)  # astype copies: writable, aligned, native order
        if not np.isfinite(arr).all():
            raise PayloadError(f"tensor {name!r} contains NaN or infinite values")
        out[name] = arr
    return out
