"""The OIP v2 codec: JSON and binary tensors in, checked against the model's declaration; JSON and binary out."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.http._utils import _get_inference_request

from fedledger.node.inference.errors import OIPError
from fedledger.node.inference.oip import encode_error, encode_infer_response, parse_infer_request
from fedledger.node.inference.runtime import LoadedModel
from tests.inference_node_support import gather_model, gemm_relu_model, identity_model

GEMM = LoadedModel.from_bytes(gemm_relu_model(), name="m", version="1")
GATHER = LoadedModel.from_bytes(gather_model(), name="g", version="1")


def _body(**doc: Any) -> bytes:
    return json.dumps(doc).encode()


def _gemm(data: Any, shape: list[int] | None = None, datatype: str = "FP32", **extra: Any) -> bytes:
    return _body(inputs=[{"name": "input", "shape": shape or [2, 4], "datatype": datatype, "data": data}], **extra)


def _gather(ids: Any, shift: Any = (0.0, 1.0), ids_shape: list[int] | None = None) -> bytes:
    return _body(inputs=[{"name": "ids", "shape": ids_shape or [2, 3], "datatype": "INT64", "data": ids},
                         {"name": "shift", "shape": [2], "datatype": "FP32", "data": list(shift)}])


def _status(body: bytes, model: LoadedModel = GEMM, **kw: Any) -> tuple[int, str]:
    with pytest.raises(OIPError) as info:
        parse_infer_request(body, model, **kw)
    return info.value.status, info.value.message


def test_flat_and_nested_json_give_the_same_arrays() -> None:
    flat = parse_infer_request(_gemm(list(range(8)), id="r1"), GEMM)
    nested = parse_infer_request(_gemm([[0, 1, 2, 3], [4, 5, 6, 7]]), GEMM)
    ragged = parse_infer_request(_gemm([[0, 1, 2], [3, 4, 5, 6, 7]]), GEMM)  # row-major walk, whatever the nesting
    for req in (flat, nested, ragged):
        assert req.inputs["input"].dtype == np.float32 and req.inputs["input"].shape == (2, 4)
        np.testing.assert_array_equal(req.inputs["input"], np.arange(8, dtype=np.float32).reshape(2, 4))
    assert flat.id == "r1" and len(nested.id) == 32  # a request without an id gets one
    assert flat.outputs == ("logits",) and flat.binary_outputs == frozenset()


def test_int64_and_fixed_shapes() -> None:
    req = parse_infer_request(_gather([[1, 2, 3], [4, 5, 6]]), GATHER)
    assert req.inputs["ids"].dtype == np.int64 and list(req.inputs) == ["ids", "shift"]
    assert _status(_gather([1, 2, 3, 4, 5, 6], ids_shape=[1, 6]), GATHER) == (
        400, "input 'ids' of model 'g' has shape [2, 3] (-1: any size), the request gives [1, 6]")
    assert "must be integers, found non-integer numbers" in _status(_gather([1.5, 2, 3, 4, 5, 6]), GATHER)[1]
    assert "values must lie in [-9223372036854775808, 9223372036854775807], found 9223372036854775808" in _status(
        _gather([2**63, 0, 0, 0, 0, 0]), GATHER)[1]
    assert "found 1180591620717411303424" in _status(_gather([2**70, 2, 3, 4, 5, 6]), GATHER)[1]
    assert "found 9223372036854775808" in _status(_gather([[2**63, 2, 3], [4, 5, 6]]), GATHER)[1]
    u64 = LoadedModel.from_bytes(identity_model(), name="u", version="1")
    big = [2**64 - 1, 5, 2**63, 0, 1, 2]  # numpy alone would make floats of these and lose digits
    req = parse_infer_request(_body(inputs=[{"name": "x", "shape": [2, 3], "datatype": "UINT64", "data": big}]), u64)
    assert req.inputs["x"].dtype == np.uint64 and req.inputs["x"].ravel().tolist() == big
    negative = _body(inputs=[{"name": "x", "shape": [2, 3], "datatype": "UINT64", "data": [-1, 0, 0, 0, 0, 0]}])
    assert "found -1" in _status(negative, u64)[1]
    assert "must be integers, found booleans" in _status(_gather([True] * 6), GATHER)[1]


@pytest.mark.parametrize(("body", "fragment"), [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (_body(inputs=[]), "non-empty list of inputs"),
    (_gemm(list(range(8)), datatype="INT64"), "is FP32, the request says 'INT64'"),
    (_gemm(["a"] * 8, datatype="BYTES"), "BYTES (string) tensors are not supported"),
    (_gemm(list(range(8)), shape=[2, 5]), "has shape [-1, 4]"),
    (_gemm(list(range(7))), "holds 7 values but shape [2, 4] needs 8"),
    (_gemm([1, 2, 3, 4, 5, 6, 7, None]), "found nulls"),
    (_gemm(["x"] * 8), "found strings"),
    (_gemm(list(range(8)), shape=[2, -4]), "non-negative integers"),
    (_gemm(3.0), "must be a (flat or nested) list"),
    (_body(inputs=[{"name": "nope", "shape": [1], "datatype": "FP32", "data": [1]}]), "has no input 'nope'"),
    (_body(inputs=[{"name": "input", "shape": [1, 4], "datatype": "FP32"}]), "neither data nor binary_data_size"),
    (_gemm(list(range(8)), outputs=[{"name": "other"}]), "has no output 'other'"),
    (_gemm(list(range(8)), outputs=[{"name": "logits", "parameters": {"classification": 2}}]),
     "classification extension"),
    (_gemm(list(range(8)), id=5), "id must be a string"),
    (_gemm([1e39] * 8), "too large for FP32"),
])
def test_malformed_requests_are_400_with_a_clear_message(body: bytes, fragment: str) -> None:
    status, message = _status(body)
    assert status == 400 and fragment in message, message


def test_missing_and_duplicate_inputs() -> None:
    only_ids = _body(inputs=[{"name": "ids", "shape": [2, 3], "datatype": "INT64", "data": [0] * 6}])
    assert _status(only_ids, GATHER) == (400, "model 'g' also needs inputs ['shift']")
    twice = _body(inputs=[{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [0] * 4}] * 2)
    assert "given twice" in _status(twice)[1]


def _triton_body(arrays: dict[str, np.ndarray], datatypes: dict[str, str], *, outputs: list[Any] | None = None,
                 binary: bool = True) -> tuple[bytes, int | None]:
    inputs = []
    for name, value in arrays.items():
        item = triton.InferInput(name, list(value.shape), datatypes[name])
        item.set_data_from_numpy(value, binary_data=binary)
        inputs.append(item)
    body, json_size = _get_inference_request(inputs=inputs, request_id="t", outputs=outputs, sequence_id=0,
                                             sequence_start=False, sequence_end=False, priority=0, timeout=None,
                                             custom_parameters=None)
    return (body if isinstance(body, bytes) else body.encode()), json_size


def test_tritonclient_binary_request_parses() -> None:
    ids = np.array([[1, 2, 3], [4, 5, 6]], np.int64)
    shift = np.array([0.25, -2], np.float32)
    body, size = _triton_body({"ids": ids, "shift": shift}, {"ids": "INT64", "shift": "FP32"})
    assert size is not None and size < len(body)
    req = parse_infer_request(body, GATHER, header_length=size)
    np.testing.assert_array_equal(req.inputs["ids"], ids)
    np.testing.assert_array_equal(req.inputs["shift"], shift)
    assert req.binary_outputs == frozenset({"emb"})  # no outputs named: the client asks binary_data_output
    requested = [triton.InferRequestedOutput("emb", binary_data=False)]
    body, size = _triton_body({"ids": ids, "shift": shift}, {"ids": "INT64", "shift": "FP32"}, outputs=requested,
                              binary=False)
    assert size is None
    assert parse_infer_request(body, GATHER).binary_outputs == frozenset()


def test_binary_request_errors() -> None:
    x = np.ones((2, 4), np.float32)
    body, size = _triton_body({"input": x}, {"input": "FP32"})
    assert size is not None
    assert "needs an Inference-Header-Content-Length header" in _status(body)[1]
    assert "no Inference-Header-Content-Length" in _status(body[:size])[1]
    assert "only 0 bytes follow" in _status(body[:size], header_length=size)[1]
    assert "that no input's binary_data_size claims" in _status(body + b"xx", header_length=size)[1]
    assert "Inference-Header-Content-Length is" in _status(body, header_length=len(body) + 1)[1]
    short = body[:size].replace(b'"binary_data_size":32', b'"binary_data_size":28')
    assert "takes 32" in _status(short + body[size:size + 28], header_length=len(short))[1]


def test_json_response_is_flat_and_lossless() -> None:
    logits = np.array([[0.1, 0.2, 0.3], [1, 2, 3]], np.float32)
    encoded = encode_infer_response(model_name="m", model_version="1", request_id="r", parameters={"p": True},
                                    outputs={"logits": logits})
    assert encoded.header_length is None and encoded.media_type == "application/json"
    doc = json.loads(encoded.body)
    assert doc["model_name"] == "m" and doc["model_version"] == "1" and doc["id"] == "r" and doc["parameters"] == {
        "p": True}
    (out,) = doc["outputs"]
    assert out["name"] == "logits" and out["datatype"] == "FP32" and out["shape"] == [2, 3]
    np.testing.assert_array_equal(np.asarray(out["data"], np.float32).reshape(2, 3), logits)


def test_binary_response_decodes_with_tritonclient() -> None:
    outputs = {"emb": np.arange(12, dtype=np.float32).reshape(2, 3, 2), "n": np.array([7, -1], np.int64),
               "ok": np.array([True, False]), "s": np.array(["hé", "x"], dtype=object)}
    encoded = encode_infer_response(model_name="g", model_version="3", request_id="r", parameters={},
                                    outputs=outputs, binary=frozenset({"emb", "ok", "s"}))
    assert encoded.header_length is not None and encoded.media_type == "application/octet-stream"
    result = triton.InferResult.from_response_body(encoded.body, header_length=encoded.header_length)
    for name, value in outputs.items():
        got = result.as_numpy(name)
        if name == "s":
            assert [v.decode() for v in got.tolist()] == ["hé", "x"]
        else:
            np.testing.assert_array_equal(got, value)
            assert got.dtype == value.dtype


def test_error_body() -> None:
    assert json.loads(encode_error("bad")) == {"error": "bad"}
