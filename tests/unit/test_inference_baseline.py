"""The inference bench's peer, a plain FastAPI + onnxruntime server, answers OIP JSON with onnxruntime's numbers."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient

from fedledger.bench.inference_baseline import create_baseline_app
from tests.inference_node_support import direct, gather_model, gemm_relu_model


def test_baseline_answers_what_onnxruntime_computes() -> None:
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    with TestClient(create_baseline_app(gemm_relu_model(), "digits", intra_op_num_threads=1)) as http:
        body = {"inputs": [{"name": "input", "shape": [3, 4], "datatype": "FP32", "data": x.ravel().tolist()}]}
        (out,) = http.post("/v2/models/digits/infer", json=body).json()["outputs"]
        assert out["name"] == "logits" and out["datatype"] == "FP32" and out["shape"] == [3, 3]
        np.testing.assert_array_equal(np.asarray(out["data"], np.float32).reshape(3, 3),
                                      direct(gemm_relu_model(), {"input": x})["logits"])
        assert http.post("/v2/models/other/infer", json=body).status_code == 404


def test_baseline_serves_int64_inputs() -> None:
    with TestClient(create_baseline_app(gather_model(), "emb")) as http:
        body = {"inputs": [{"name": "ids", "shape": [2, 3], "datatype": "INT64", "data": [[0, 1, 2], [3, 4, 5]]},
                           {"name": "shift", "shape": [2], "datatype": "FP32", "data": [0, 0]}]}
        (out,) = http.post("/v2/models/emb/infer", json=body).json()["outputs"]
        assert out["shape"] == [2, 3, 2] and out["data"][:4] == [0, 1, 2, 3]
