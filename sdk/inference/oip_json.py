"""The client's half of the Open Inference Protocol v2 JSON form: numpy arrays to a request, a response to arrays.

The datatype names are the protocol's (KServe/Triton): FP32, INT64, BOOL and so on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.sdk.inference.datatypes import NUMPY_OF, oip_of_numpy

__all__ = ["DATATYPES", "datatype_of", "decode_outputs", "dtype_of", "encode_request"]

DATATYPES = NUMPY_OF  # the one table nodes and clients share


def datatype_of(dtype: np.dtype[Any]) -> str:
    """The OIP datatype name of a numpy dtype; ValueError for one the protocol's JSON form cannot carry."""
    name = oip_of_numpy(np.dtype(dtype))
    if name is None:
        raise ValueError(f"dtype {dtype} has no Open Inference Protocol datatype")
    return name


def dtype_of(datatype: str) -> np.dtype[Any]:
    """The numpy dtype of an OIP datatype name; ValueError for an unknown or unsupported one (BYTES)."""
    try:
        return DATATYPES[datatype]
    except (KeyError, TypeError):
        raise ValueError(f"datatype {str(datatype)[:20]!r} is not supported; use one of {sorted(DATATYPES)}") from None


def encode_request(inputs: Mapping[str, npt.NDArray[Any]], *, request_id: str | None = None,
                   parameters: Mapping[str, Any] | None = None) -> bytes:
    """An OIP v2 infer request body (JSON) for these named arrays."""
    body: dict[str, Any] = {"inputs": [
        {"name": name, "shape": list(arr.shape), "datatype": datatype_of(arr.dtype),
         "data": np.asarray(arr).reshape(-1).tolist()} for name, arr in inputs.items()]}
    if request_id is not None:
        body["id"] = request_id
    if parameters:
        body["parameters"] = dict(parameters)
    return json.dumps(body, separators=(",", ":")).encode()


def decode_outputs(payload: Mapping[str, Any]) -> dict[str, npt.NDArray[Any]]:
    """The named arrays of an OIP v2 infer response; ValueError/KeyError/TypeError when it is malformed."""
    out: dict[str, npt.NDArray[Any]] = {}
    for item in payload["outputs"]:
        arr = np.asarray(item["data"], dtype=dtype_of(item["datatype"]))
        out[str(item["name"])] = arr.reshape([int(d) for d in item["shape"]])
    return out
