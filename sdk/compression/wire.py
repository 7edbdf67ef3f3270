"""A compact, canonical byte encoding of every compressed form, so payload sizes are measured, not estimated.

Layout (all integers and floats little-endian, no padding, no trailing bytes)::

    magic "FLCU" | u8 version (1) | u8 kind | u32 size d                       (10-byte header)
    kind 1 dense   : d × f32                                                   10 + 4d bytes
    kind 2 top-k   : u32 k | k × u32 indices (strictly increasing, < d) | k × f32 values
                                                                               14 + 8k bytes
    kind 3 quant8  : u32 chunk_size (1..d) | n × f32 lows | n × f32 scales (≥ 0) | d × u8 codes,
                     n = ceil(d / chunk_size)                                   14 + 8n + d bytes
    kind 4 shared  : u32 k | k × f32 values (at the round's shared coordinates)  14 + 4k bytes

Every float must be finite and 1 ≤ d ≤ MAX_SIZE. Exactly one encoding exists per value, so equal
updates give equal bytes (and content hashes). ``decode`` checks the announced length against
the buffer before allocating anything, and reports what is wrong with a ``WireError``.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.sdk.compression._checks import MAX_SIZE
from fedledger.sdk.compression.errors import CompressionError, WireError
from fedledger.sdk.compression.quant8 import Quantized8, chunk_count
from fedledger.sdk.compression.sparse_mask import SharedSparseUpdate
from fedledger.sdk.compression.topk import SparseUpdate

__all__ = [
    "FORMAT_VERSION",
    "HEADER_BYTES",
    "KIND_DENSE",
    "KIND_QUANT8",
    "KIND_SHARED",
    "KIND_TOPK",
    "MAGIC",
    "Compressed",
    "decode",
    "encode",
    "encoded_size",
]

MAGIC = b"FLCU"
FORMAT_VERSION = 1
KIND_DENSE = 1
KIND_TOPK = 2
KIND_QUANT8 = 3
KIND_SHARED = 4
_NAMES = {KIND_DENSE: "dense", KIND_TOPK: "top-k", KIND_QUANT8: "quant8", KIND_SHARED: "shared"}

_HEADER = struct.Struct("<4sBBI")
_U32 = struct.Struct("<I")
HEADER_BYTES = _HEADER.size

Compressed = npt.NDArray[np.float32] | SparseUpdate | Quantized8 | SharedSparseUpdate
"""What encode takes and decode returns: a dense float32 vector or one of the compressed forms."""


def encoded_size(kind: int, d: int, k: int = 0, chunk_size: int = 1) -> int:
    """The exact payload length of a form: k for top-k and shared, chunk_size for quant8."""
    if kind == KIND_DENSE:
        return HEADER_BYTES + 4 * d
    if kind == KIND_TOPK:
        return HEADER_BYTES + 4 + 8 * k
    if kind == KIND_QUANT8:
        return HEADER_BYTES + 4 + 8 * chunk_count(d, chunk_size) + d
    if kind == KIND_SHARED:
        return HEADER_BYTES + 4 + 4 * k
    raise WireError(f"unknown kind {kind}; known kinds: {_NAMES}")


def _le(arr: npt.NDArray[Any], dtype: str) -> bytes:
    return np.ascontiguousarray(arr, dtype=np.dtype(dtype)).tobytes()


def encode(update: Compressed) -> bytes:
    """The canonical bytes of a dense 1-D float32 vector or of a SparseUpdate, Quantized8 or SharedSparseUpdate."""
    if isinstance(update, SparseUpdate):
        return (_HEADER.pack(MAGIC, FORMAT_VERSION, KIND_TOPK, update.size) + _U32.pack(update.k)
                + _le(update.indices, "<u4") + _le(update.values, "<f4"))
    if isinstance(update, Quantized8):
        return (_HEADER.pack(MAGIC, FORMAT_VERSION, KIND_QUANT8, update.size) + _U32.pack(update.chunk_size)
                + _le(update.lows, "<f4") + _le(update.scales, "<f4") + _le(update.codes, "u1"))
    if isinstance(update, SharedSparseUpdate):
        return (_HEADER.pack(MAGIC, FORMAT_VERSION, KIND_SHARED, update.size) + _U32.pack(update.k)
                + _le(update.values, "<f4"))
    if isinstance(update, np.ndarray):
        if update.dtype != np.float32 or update.ndim != 1 or not 1 <= update.shape[0] <= MAX_SIZE:
            raise WireError(f"a dense update must be a 1-D float32 array of length 1..{MAX_SIZE}")
        if not np.isfinite(update).all():
            raise WireError("a dense update contains NaN or infinite values")
        return _HEADER.pack(MAGIC, FORMAT_VERSION, KIND_DENSE, update.shape[0]) + _le(update, "<f4")
    raise WireError(f"cannot encode a {type(update).__name__}: expected a float32 array, SparseUpdate, "
                    f"Quantized8 or SharedSparseUpdate")


class _Reader:
    """Reads fields in order from a buffer whose exact length was checked up front."""

    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def array(self, dtype: str, n: int) -> npt.NDArray[Any]:
        width = np.dtype(dtype).itemsize
        out = np.frombuffer(self.data, dtype=dtype, count=n, offset=self.pos)
        self.pos += width * n
        return out.astype(np.dtype(dtype).newbyteorder("="))  # a native, writable copy


def _need(data: bytes, length: int, what: str) -> None:
    if len(data) < length:
        raise WireError(f"truncated {what} payload: needs {length} bytes, got {len(data)}")
    if len(data) > length:
        raise WireError(f"{len(data) - length} trailing bytes after a {what} payload of {length} bytes")


def _u32_after_header(data: bytes, what: str) -> int:
    if len(data) < HEADER_BYTES + _U32.size:
        raise WireError(f"truncated {what} payload: {len(data)} bytes, shorter than its {HEADER_BYTES + 4}-byte header")
    return int(_U32.unpack_from(data, HEADER_BYTES)[0])


def decode(data: bytes) -> Compressed:
    """Parse bytes written by ``encode``; raises WireError naming the problem for anything else."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise WireError(f"expected bytes, not {type(data).__name__}")
    data = bytes(data)
    if len(data) < HEADER_BYTES:
        raise WireError(f"truncated payload: {len(data)} bytes, shorter than the {HEADER_BYTES}-byte header")
    magic, version, kind, d = _HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise WireError(f"not a compressed update: magic {magic!r}, expected {MAGIC!r}")
    if version != FORMAT_VERSION:
        raise WireError(f"unsupported format version {version} (this build reads {FORMAT_VERSION})")
    if kind not in _NAMES:
        raise WireError(f"unknown kind {kind}; known kinds: {_NAMES}")
    if not 1 <= d <= MAX_SIZE:
        raise WireError(f"size {d} is outside [1, {MAX_SIZE}]")
    what = _NAMES[kind]
    try:
        if kind == KIND_DENSE:
            _need(data, encoded_size(kind, d), what)
            values = _Reader(data, HEADER_BYTES).array("<f4", d)
            if not np.isfinite(values).all():
                raise WireError("dense values contain NaN or infinite values")
            return values
        field = _u32_after_header(data, what)
        if kind == KIND_QUANT8:
            if not 1 <= field <= d:
                raise WireError(f"chunk_size {field} is outside [1, size={d}]")
            _need(data, encoded_size(kind, d, chunk_size=field), what)
            n = chunk_count(d, field)
            r = _Reader(data, HEADER_BYTES + 4)
            return Quantized8(d, field, r.array("<f4", n), r.array("<f4", n), r.array("u1", d))
        if field > d:
            raise WireError(f"k = {field} exceeds size {d}")
        _need(data, encoded_size(kind, d, k=field), what)
        r = _Reader(data, HEADER_BYTES + 4)
        if kind == KIND_TOPK:
            return SparseUpdate(d, r.array("<u4", field), r.array("<f4", field))
        return SharedSparseUpdate(d, r.array("<f4", field))
    except WireError:
        raise
    except CompressionError as exc:
        raise WireError(f"invalid {what} payload: {exc}") from None
