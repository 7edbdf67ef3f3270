"""Tensor element types of inference: ONNX type names, OIP datatype names and numpy dtypes (nodes and clients)."""

from __future__ import annotations

import numpy as np

__all__ = ["BYTES", "NUMPY_OF", "OIP_OF_ONNX", "oip_of_numpy"]

# OIP's name for string tensors; onnxruntime has them ("tensor(string)") but the node does not serve them.
BYTES = "BYTES"

# onnxruntime's NodeArg.type strings -> OIP datatype names (the names Triton and KServe use).
OIP_OF_ONNX: dict[str, str] = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8", "tensor(uint16)": "UINT16", "tensor(uint32)": "UINT32", "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8", "tensor(int16)": "INT16", "tensor(int32)": "INT32", "tensor(int64)": "INT64",
    "tensor(float16)": "FP16", "tensor(float)": "FP32", "tensor(double)": "FP64",
    "tensor(string)": BYTES, "tensor(bfloat16)": "BF16",
}

# OIP datatype -> numpy dtype, little-endian as the binary tensor extension lays tensors out. BYTES and BF16
# are absent on purpose: numpy has no native bfloat16, and strings have their own length-prefixed encoding.
NUMPY_OF: dict[str, np.dtype[np.generic]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"), "UINT16": np.dtype("<u2"), "UINT32": np.dtype("<u4"), "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"), "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"), "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
}

_OIP_OF_NUMPY = {dtype.newbyteorder("="): name for name, dtype in NUMPY_OF.items()}


def oip_of_numpy(dtype: np.dtype[np.generic]) -> str | None:
    """The OIP datatype of a numpy dtype, or None when the node does not serve it."""
    return _OIP_OF_NUMPY.get(dtype.newbyteorder("="))
