"""The Open Inference Protocol v2 REST codec (KServe/Triton): infer requests to numpy arrays and outputs back.

Both encodings of a tensor are read and written: JSON `data` lists, and the binary tensor data
extension that Triton's clients use by default, where the body is the JSON header
(`Inference-Header-Content-Length` bytes long) followed by each binary tensor's raw little-endian
bytes in the order the tensors appear, each tensor naming its length in `parameters.binary_data_size`.
"""

from __future__ import annotations

import json
import math
import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from fedledger.node.inference.errors import OIPError
from fedledger.node.inference.runtime import LoadedModel, TensorSpec
from fedledger.sdk.inference.datatypes import BYTES, NUMPY_OF, oip_of_numpy

__all__ = ["EncodedResponse", "InferRequest", "encode_error", "encode_infer_response", "parse_infer_request"]

# The request and output parameters of features this node does not implement; naming one is answered
# with a clear 400 rather than silently ignored, since the client would otherwise misread the reply.
_UNSUPPORTED = {
    "shared_memory_region": "the shared-memory extension",
    "classification": "the classification extension",
}


@dataclass(frozen=True)
class InferRequest:
    """A parsed infer request: every declared input as an array, and which outputs to return, and how."""

    id: str
    parameters: dict[str, Any]
    inputs: dict[str, np.ndarray]
    outputs: tuple[str, ...]  # the output names to return, in the order to return them
    binary_outputs: frozenset[str]  # those of `outputs` to send as binary tensor data


@dataclass(frozen=True)
class EncodedResponse:
    """A response body, and the length of its JSON header when binary tensors follow it (else None)."""

    body: bytes
    header_length: int | None

    @property
    def media_type(self) -> str:
        """JSON alone, or JSON followed by raw bytes."""
        return "application/json" if self.header_length is None else "application/octet-stream"


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise OIPError(400, f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _parameters(entry: Mapping[str, Any], what: str) -> dict[str, Any]:
    params = _object(entry.get("parameters", {}), f"{what}'s parameters")
    for key, feature in _UNSUPPORTED.items():
        if key in params:
            raise OIPError(400, f"{what} asks for {feature} ({key!r}), which this node does not support")
    return params


def _shape(value: Any, name: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in value):
        raise OIPError(400, f"input {name!r}: shape must be a list of non-negative integers, got {value!r}")
    return tuple(value)


def _flatten(data: list[Any]) -> list[Any]:
    # Only for ragged nesting, which numpy refuses to stack; row-major order is the walk's order.
    flat: list[Any] = []
    stack: list[Any] = [iter(data)]
    while stack:
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
        elif isinstance(item, list):
            stack.append(iter(item))
        else:
            flat.append(item)
    return flat


_END = object()


def _json_values(data: Any, spec: TensorSpec, count: int, shape: tuple[int, ...]) -> np.ndarray:
    """The JSON `data` (flat or nested, row-major) as an array of the declared dtype and `shape`."""
    name, dtype = spec.name, NUMPY_OF[spec.datatype]
    if not isinstance(data, list):
        raise OIPError(400, f"input {name!r}: data must be a (flat or nested) list of values, "
                            f"got {type(data).__name__}")
    try:
        values = np.asarray(data)
    except (ValueError, OverflowError):  # ragged nesting, which numpy will not stack: walk it instead
        try:
            values = np.asarray(_flatten(data))
        except (ValueError, OverflowError) as exc:
            raise OIPError(400, f"input {name!r}: data is not a list of {spec.datatype} values ({exc})") from None
    kind = values.dtype.kind
    want = "booleans (true/false)" if dtype.kind == "b" else "integers" if dtype.kind in "iu" else "numbers"
    allowed = {"b": "b", "i": "iu", "u": "iu", "f": "iuf"}[dtype.kind]
    if values.size and kind not in allowed and dtype.kind in "iu" and kind in "fO":
        # numpy turns ints past int64 into floats or objects: say which value is out of range, not "non-integer"
        # (or, for UINT64 values past int64 mixed with small ones, floats that would lose digits: convert exactly).
        flat = _flatten(data)
        if all(isinstance(v, int) and not isinstance(v, bool) for v in flat):
            info = np.iinfo(dtype)  # type: ignore[type-var]  # dtype.kind is 'i' or 'u' here
            bad = [v for v in flat if not info.min <= v <= info.max]
            if bad:
                raise OIPError(400, f"input {name!r} is {spec.datatype}: values must lie in "
                                    f"[{info.min}, {info.max}], found {bad[0]}")
            values, kind = np.array(flat, dtype=dtype), dtype.kind
    if values.size and kind not in allowed:
        found = {"f": "non-integer numbers", "b": "booleans", "U": "strings", "S": "strings",
                 "O": "nulls, objects or out-of-range numbers"}.get(kind, f"values of kind {kind!r}")
        raise OIPError(400, f"input {name!r} is {spec.datatype}: its data must be {want}, found {found}")
    if values.size != count:
        raise OIPError(400, f"input {name!r}: data holds {values.size} values but shape {list(shape)} "
                            f"needs {count}")
    if values.size and dtype.kind in "iu":
        info = np.iinfo(dtype)  # type: ignore[type-var]  # dtype.kind is 'i' or 'u' here
        low, high = values.min(), values.max()
        if int(low) < info.min or int(high) > info.max:
            raise OIPError(400, f"input {name!r} is {spec.datatype}: values must lie in [{info.min}, {info.max}], "
                                f"found {int(low) if int(low) < info.min else int(high)}")
    with np.errstate(over="ignore", invalid="ignore"):
        converted = values.astype(dtype).reshape(shape)
    if dtype.kind == "f" and values.size and not np.isfinite(converted).all() and np.isfinite(values).all():
        raise OIPError(400, f"input {name!r}: a value is too large for {spec.datatype}")
    return converted


def _binary_values(raw: bytes, spec: TensorSpec, count: int, shape: tuple[int, ...]) -> np.ndarray:
    dtype = NUMPY_OF[spec.datatype]
    if len(raw) != count * dtype.itemsize:
        raise OIPError(400, f"input {spec.name!r}: binary_data_size is {len(raw)} bytes, but {spec.datatype} "
                            f"{list(shape)} takes {count * dtype.itemsize}")
    if dtype.kind == "b" and raw and max(raw) > 1:
        raise OIPError(400, f"input {spec.name!r} is BOOL: each binary element must be the byte 0 or 1")
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def _split_body(body: bytes, header_length: int | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    if not 0 <= header_length <= len(body):
        raise OIPError(400, f"Inference-Header-Content-Length is {header_length}, but the body is "
                            f"{len(body)} bytes")
    return body[:header_length], body[header_length:]


def parse_infer_request(body: bytes, model: LoadedModel, *, header_length: int | None = None) -> InferRequest:
    """Parse an infer request body against `model`'s declared inputs; raises OIPError(status, message).

    `header_length` is the Inference-Header-Content-Length header: when given, the JSON is that many
    leading bytes of `body` and the rest holds the binary tensors.
    """
    header, binary = _split_body(body, header_length)
    try:
        doc = json.loads(header)
    except (ValueError, UnicodeDecodeError) as exc:
        hint = "" if header_length is not None else \
            " (a body with binary tensors needs an Inference-Header-Content-Length header)"
        raise OIPError(400, f"the request is not valid JSON: {exc}{hint}") from None
    doc = _object(doc, "the infer request")
    request_id = doc.get("id", "")
    if not isinstance(request_id, str):
        raise OIPError(400, f"id must be a string, got {type(request_id).__name__}")
    parameters = _parameters(doc, "the request")
    entries = doc.get("inputs")
    if not isinstance(entries, list) or not entries:
        raise OIPError(400, "the request needs a non-empty list of inputs: "
                            '[{"name", "shape", "datatype", "data"}]')
    inputs: dict[str, np.ndarray] = {}
    offset = 0
    for position, raw_entry in enumerate(entries):
        entry = _object(raw_entry, f"inputs[{position}]")
        name = entry.get("name")
        if not isinstance(name, str):
            raise OIPError(400, f"inputs[{position}] needs a string name")
        spec = model.input(name)
        if spec is None:
            raise OIPError(400, f"model {model.name!r} has no input {name!r}; its inputs are "
                                f"{[i.name for i in model.inputs]}")
        if name in inputs:
            raise OIPError(400, f"input {name!r} is given twice")
        datatype = entry.get("datatype")
        if datatype == BYTES:
            raise OIPError(400, f"input {name!r}: BYTES (string) tensors are not supported by this node; "
                                f"model {model.name!r} takes {spec.datatype}")
        if datatype != spec.datatype:
            raise OIPError(400, f"input {name!r} of model {model.name!r} is {spec.datatype}, "
                                f"the request says {datatype!r}")
        if spec.datatype not in NUMPY_OF:
            raise OIPError(400, f"input {name!r} is {spec.datatype}, which this node cannot serve")
        shape = _shape(entry.get("shape"), name)
        if not spec.accepts_shape(shape):
            raise OIPError(400, f"input {name!r} of model {model.name!r} has shape {list(spec.shape)} "
                                f"(-1: any size), the request gives {list(shape)}")
        count = math.prod(shape)
        params = _parameters(entry, f"input {name!r}")
        size = params.get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise OIPError(400, f"input {name!r}: binary_data_size must be a non-negative integer")
            if header_length is None:
                raise OIPError(400, f"input {name!r} has binary_data_size, but the request has no "
                                    "Inference-Header-Content-Length header saying where its JSON ends")
            if "data" in entry:
                raise OIPError(400, f"input {name!r} has both data and binary_data_size; send one")
            if offset + size > len(binary):
                raise OIPError(400, f"input {name!r}: binary data ends at byte {offset + size}, "
                                    f"but only {len(binary)} bytes follow the JSON header")
            inputs[name] = _binary_values(binary[offset:offset + size], spec, count, shape)
            offset += size
        elif "data" in entry:
            inputs[name] = _json_values(entry["data"], spec, count, shape)
        else:
            raise OIPError(400, f"input {name!r} has neither data nor binary_data_size")
    if offset != len(binary):
        raise OIPError(400, f"{len(binary) - offset} bytes of binary data follow the JSON header "
                            "that no input's binary_data_size claims")
    missing = [i.name for i in model.inputs if i.name not in inputs]
    if missing:
        raise OIPError(400, f"model {model.name!r} also needs inputs {missing}")
    outputs, binary_outputs = _requested_outputs(doc, parameters, model)
    return InferRequest(request_id or uuid.uuid4().hex, parameters,
                        {i.name: inputs[i.name] for i in model.inputs}, outputs, binary_outputs)


def _requested_outputs(doc: Mapping[str, Any], parameters: Mapping[str, Any],
                       model: LoadedModel) -> tuple[tuple[str, ...], frozenset[str]]:
    # Triton's rule: binary_data_output (request-wide) is the default, and each output's binary_data overrides it.
    default_binary = parameters.get("binary_data_output", False)
    if not isinstance(default_binary, bool):
        raise OIPError(400, "binary_data_output must be true or false")
    declared = [o.name for o in model.outputs]
    entries = doc.get("outputs")
    if entries is None:
        return tuple(declared), frozenset(declared) if default_binary else frozenset()
    if not isinstance(entries, list):
        raise OIPError(400, 'outputs must be a list of {"name"} objects')
    names: list[str] = []
    binary: set[str] = set()
    for position, raw_entry in enumerate(entries):
        entry = _object(raw_entry, f"outputs[{position}]")
        name = entry.get("name")
        if not isinstance(name, str) or name not in declared:
            raise OIPError(400, f"model {model.name!r} has no output {name!r}; its outputs are {declared}")
        if name in names:
            raise OIPError(400, f"output {name!r} is requested twice")
        wants_binary = _parameters(entry, f"output {name!r}").get("binary_data", default_binary)
        if not isinstance(wants_binary, bool):
            raise OIPError(400, f"output {name!r}: binary_data must be true or false")
        names.append(name)
        if wants_binary:
            binary.add(name)
    return tuple(names), frozenset(binary)


def _raw_bytes(value: np.ndarray, datatype: str) -> bytes:
    if datatype == BYTES:  # the extension's string layout: a 4-byte little-endian length before each element
        parts = [s if isinstance(s, bytes) else str(s).encode("utf-8") for s in value.ravel().tolist()]
        return b"".join(struct.pack("<I", len(p)) + p for p in parts)
    return np.ascontiguousarray(value, dtype=NUMPY_OF[datatype]).tobytes()


def _datatype(name: str, value: np.ndarray) -> str:
    datatype = BYTES if value.dtype.kind in "OUS" else oip_of_numpy(value.dtype)
    if datatype is None:
        raise OIPError(500, f"output {name!r} has dtype {value.dtype}, which has no OIP encoding here")
    return datatype


def encode_infer_response(*, model_name: str, model_version: str, request_id: str,
                          parameters: Mapping[str, Any], outputs: Mapping[str, np.ndarray],
                          binary: frozenset[str] = frozenset()) -> EncodedResponse:
    """The response for `outputs` (in their order); those named in `binary` go as binary tensor data."""
    entries: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name, value in outputs.items():
        datatype = _datatype(name, value)
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(value.shape)}
        if name in binary:
            raw = _raw_bytes(value, datatype)
            entry["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        else:
            flat = value.ravel().tolist()
            entry["data"] = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in flat] \
                if datatype == BYTES else flat
        entries.append(entry)
    doc = {"model_name": model_name, "model_version": model_version, "id": request_id,
           "parameters": dict(parameters), "outputs": entries}
    header = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    if not blobs:
        return EncodedResponse(header, None)
    return EncodedResponse(header + b"".join(blobs), len(header))


def encode_error(message: str) -> bytes:
    """The OIP error body: {"error": message}."""
    return json.dumps({"error": message}).encode("utf-8")
