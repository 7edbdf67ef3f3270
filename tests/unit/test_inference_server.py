"""The inference node's OIP v2 server on real uvicorn: health, metadata, JSON and stock tritonclient infer, batching,
hot swap, staleness, receipts, and {"error"} bodies for every failure while the server keeps serving."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from fastapi.testclient import TestClient
from tritonclient.utils import InferenceServerException

from fedledger.node.inference.errors import ServerStartError
from fedledger.node.inference.holder import ModelHolder, ServedModel
from fedledger.node.inference.runtime import LoadedModel
from fedledger.node.inference.server import create_app
from fedledger.node.inference.serving import ServerThread, serve_in_thread
from tests.inference_node_support import batch_gather_model, direct, gather_model, gemm_relu_model

X = np.array([[0.5, -1.0, 2.0, 0.25], [1.0, 1.0, -3.0, 0.0]], np.float32)


def _load(model_bytes: bytes, version: str) -> LoadedModel:
    return LoadedModel.from_bytes(model_bytes, name="digits", version=version)


def _infer_body(x: np.ndarray = X, **extra: Any) -> dict[str, Any]:
    return {"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32", "data": x.tolist()}], **extra}


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]
    return str(body["error"])


@pytest.fixture
def holder() -> ModelHolder:
    return ModelHolder(ServedModel(_load(gemm_relu_model(0), "1"), "1", {"cid": "bafy-one"}))


@pytest.fixture
def server(holder: ModelHolder) -> Iterator[ServerThread]:
    with serve_in_thread(create_app(holder, model_name="digits", max_delay_ms=5)) as running:
        yield running


def test_health_and_metadata(server: ServerThread) -> None:
    with httpx.Client(base_url=server.url) as http:
        meta = http.get("/v2").json()
        assert meta["name"] == "fedledger-inference" and "binary_tensor_data" in meta["extensions"]
        assert isinstance(meta["version"], str)
        assert http.get("/v2/health/live").status_code == 200
        assert http.get("/v2/health/ready").status_code == 200
        model = http.get("/v2/models/digits").json()
        assert model["name"] == "digits" and model["versions"] == ["1"] and model["platform"] == "onnxruntime_onnx"
        assert model["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
        assert model["outputs"] == [{"name": "logits", "datatype": "FP32", "shape": [-1, 3]}]
        assert model["fedledger"] == {"version": "1", "stale": False, "metadata": {"cid": "bafy-one"}}
        assert http.get("/v2/models/digits/versions/1").json()["versions"] == ["1"]
        assert http.get("/v2/models/digits/ready").status_code == 200
        assert http.get("/v2/models/digits/versions/1/ready").status_code == 200
        assert "not served here" in _error(http.get("/v2/models/other"), 404)
        assert "version '9' is not served" in _error(http.get("/v2/models/digits/versions/9/ready"), 404)
        assert "no endpoint GET /nowhere" in _error(http.get("/nowhere"), 404)
        assert "not allowed" in _error(http.delete("/v2/models/digits"), 405)


def test_json_infer_matches_onnxruntime(server: ServerThread) -> None:
    with httpx.Client(base_url=server.url) as http:
        response = http.post("/v2/models/digits/infer", json=_infer_body(id="req-1"))
        assert response.status_code == 200 and response.headers["content-type"] == "application/json"
        doc = response.json()
        assert doc["model_name"] == "digits" and doc["model_version"] == "1" and doc["id"] == "req-1"
        assert doc["parameters"] == {"fedledger_version": "1", "fedledger_stale": False}
        (out,) = doc["outputs"]
        assert out["name"] == "logits" and out["datatype"] == "FP32" and out["shape"] == [2, 3]
        got = np.asarray(out["data"], np.float32).reshape(2, 3)
        np.testing.assert_array_equal(got, direct(gemm_relu_model(0), {"input": X})["logits"])
        versioned = http.post("/v2/models/digits/versions/1/infer", json=_infer_body())
        assert versioned.json()["outputs"] == doc["outputs"]


def test_stock_tritonclient_works_unchanged(server: ServerThread) -> None:
    client = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    try:
        assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("digits")
        assert client.get_model_metadata("digits")["inputs"][0]["datatype"] == "FP32"
        expected = direct(gemm_relu_model(0), {"input": X})["logits"]
        item = triton.InferInput("input", list(X.shape), "FP32")
        item.set_data_from_numpy(X)  # binary tensor data, the client's default
        result = client.infer("digits", [item])  # no outputs named: binary_data_output
        np.testing.assert_array_equal(result.as_numpy("logits"), expected)
        assert result.get_response()["parameters"]["fedledger_version"] == "1"
        json_item = triton.InferInput("input", list(X.shape), "FP32")
        json_item.set_data_from_numpy(X, binary_data=False)
        asked = [triton.InferRequestedOutput("logits", binary_data=False)]
        result = client.infer("digits", [json_item], outputs=asked, model_version="1", request_id="abc",
                              request_compression_algorithm="gzip")
        np.testing.assert_array_equal(result.as_numpy("logits"), expected)
        assert result.get_response()["id"] == "abc"
        with pytest.raises(InferenceServerException, match="has no input 'nope'"):
            wrong = triton.InferInput("nope", [1, 4], "FP32")
            wrong.set_data_from_numpy(X[:1])
            client.infer("digits", [wrong])
    finally:
        client.close()


def test_concurrent_requests_are_batched_and_each_gets_its_rows(server: ServerThread, holder: ModelHolder) -> None:
    assert holder.current is not None
    model = holder.current.model
    before = model.runs
    rng = np.random.default_rng(5)
    inputs = [rng.standard_normal((1 + i % 2, 4)).astype(np.float32) for i in range(32)]

    async def fire() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=20) as http:
            return await asyncio.gather(*(http.post("/v2/models/digits/infer", json=_infer_body(x)) for x in inputs))

    responses = asyncio.run(fire())
    assert model.runs - before < len(inputs)  # 32 requests, typically 2 runs
    for x, response in zip(inputs, responses, strict=True):
        out = response.json()["outputs"][0]
        assert out["shape"] == [x.shape[0], 3]
        np.testing.assert_array_equal(np.asarray(out["data"], np.float32).reshape(out["shape"]),
                                      direct(gemm_relu_model(0), {"input": x})["logits"])


def test_hot_swap_and_staleness_show_in_responses(server: ServerThread, holder: ModelHolder) -> None:
    with httpx.Client(base_url=server.url) as http:
        first = http.post("/v2/models/digits/infer", json=_infer_body()).json()
        holder.swap(ServedModel(_load(gemm_relu_model(1), "2"), "v2", {}))
        second = http.post("/v2/models/digits/infer", json=_infer_body()).json()
        assert second["model_version"] == "v2" and second["parameters"]["fedledger_version"] == "v2"
        assert second["outputs"][0]["data"] != first["outputs"][0]["data"]
        np.testing.assert_array_equal(np.asarray(second["outputs"][0]["data"], np.float32).reshape(2, 3),
                                      direct(gemm_relu_model(1), {"input": X})["logits"])
        assert "version '1' is not served" in _error(
            http.post("/v2/models/digits/versions/1/infer", json=_infer_body()), 404)
        assert http.get("/v2/models/digits").json()["versions"] == ["v2"]
        holder.mark_stale("chain unreachable for 30 s")
        stale = http.post("/v2/models/digits/infer", json=_infer_body()).json()["parameters"]
        assert stale == {"fedledger_version": "v2", "fedledger_stale": True,
                         "fedledger_stale_reason": "chain unreachable for 30 s"}
        assert http.get("/v2/models/digits").json()["fedledger"]["stale_reason"] == "chain unreachable for 30 s"
        holder.mark_fresh()
        assert http.post("/v2/models/digits/infer", json=_infer_body()).json()["parameters"]["fedledger_stale"] is False


def test_every_error_is_an_oip_error_body_and_the_server_keeps_serving(server: ServerThread) -> None:
    url = "/v2/models/digits/infer"
    with httpx.Client(base_url=server.url) as http:
        assert "not valid JSON" in _error(http.post(url, content=b"{oops"), 400)
        assert "has shape [-1, 4]" in _error(http.post(url, json=_infer_body(np.zeros((2, 5), np.float32))), 400)
        wrong_dtype = _infer_body()
        wrong_dtype["inputs"][0]["datatype"] = "INT32"
        assert "is FP32, the request says 'INT32'" in _error(http.post(url, json=wrong_dtype), 400)
        assert "not served here" in _error(http.post("/v2/models/other/infer", json=_infer_body()), 404)
        unknown = {"inputs": [{"name": "pixels", "shape": [1], "datatype": "FP32", "data": [1.0]}]}
        assert "has no input 'pixels'" in _error(http.post(url, json=unknown), 400)
        assert "non-empty list of inputs" in _error(http.post(url, json={"inputs": []}), 400)
        assert "not valid JSON" in _error(http.post(url, content=b"\xff\xfe"), 400)
        assert "Content-Encoding 'br'" in _error(http.post(url, content=b"{}", headers={"content-encoding": "br"}),
                                                  415)
        assert "does not decompress" in _error(
            http.post(url, content=b"nope", headers={"content-encoding": "gzip"}), 400)
        assert "byte count" in _error(
            http.post(url, content=b"{}", headers={"inference-header-content-length": "x"}), 400)
        ok = http.post(url, json=_infer_body())
        assert ok.status_code == 200 and ok.json()["outputs"][0]["shape"] == [2, 3]


def test_not_ready_is_503_until_a_model_is_loaded() -> None:
    holder = ModelHolder()
    with TestClient(create_app(holder, model_name="digits")) as http:
        assert "not loaded yet" in _error(http.get("/v2/health/ready"), 503)
        assert http.get("/v2/health/live").status_code == 200
        assert "not loaded yet" in _error(http.get("/v2/models/digits/ready"), 503)
        assert "not loaded yet" in _error(http.get("/v2/models/digits"), 503)
        assert "not loaded yet" in _error(http.post("/v2/models/digits/infer", json=_infer_body()),
                                          503)
        holder.swap(_load(gemm_relu_model(0), "1"))
        assert http.get("/v2/health/ready").status_code == 200
        assert http.post("/v2/models/digits/infer", json=_infer_body()).status_code == 200
        holder.unload()  # the chain's last good version has no artifact: serve nothing rather than a stale one
        assert "not loaded yet" in _error(http.post("/v2/models/digits/infer", json=_infer_body()), 503)
        assert http.get("/v2/health/ready").status_code == 503


def test_body_cap_run_failures_and_a_generic_int64_model() -> None:
    holder = ModelHolder(_load(gather_model(), "g1"))
    with TestClient(create_app(holder, model_name="emb", max_body_bytes=2048)) as http:
        feeds = {"ids": np.array([[0, 1, 2], [3, 4, 9]], np.int64), "shift": np.array([0.5, -1], np.float32)}
        body = {"inputs": [{"name": "ids", "shape": [2, 3], "datatype": "INT64", "data": feeds["ids"].tolist()},
                           {"name": "shift", "shape": [2], "datatype": "FP32", "data": feeds["shift"].tolist()}]}
        doc = http.post("/v2/models/emb/infer", json=body).json()
        np.testing.assert_array_equal(np.asarray(doc["outputs"][0]["data"], np.float32).reshape(2, 3, 2),
                                      direct(gather_model(), feeds)["emb"])
        missing = {"inputs": body["inputs"][:1]}
        assert "also needs inputs ['shift']" in _error(http.post("/v2/models/emb/infer", json=missing),
                                                       400)
        huge = {"inputs": [dict(body["inputs"][0], data=[0] * 2000)]}
        assert "at most 2048" in _error(http.post("/v2/models/emb/infer", json=huge), 413)
        bomb = gzip.compress(json.dumps(huge).encode())
        assert len(bomb) < 2048
        assert "decompressed request body is over 2048" in _error(
            http.post("/v2/models/emb/infer", content=bomb, headers={"content-encoding": "gzip"}), 413)
        assert http.post("/v2/models/emb/infer", json=body).status_code == 200

    holder = ModelHolder(_load(batch_gather_model(), "b1"))
    with TestClient(create_app(holder, model_name="b")) as http:
        bad = {"inputs": [{"name": "ids", "shape": [1, 2], "datatype": "INT64", "data": [99, 0]}]}
        assert "failed to run" in _error(http.post("/v2/models/b/infer", json=bad), 400)
        good = {"inputs": [{"name": "ids", "shape": [1, 2], "datatype": "INT64", "data": [1, 0]}]}
        assert http.post("/v2/models/b/infer", json=good).json()["outputs"][0]["data"] == [2, 3, 0, 1]


def test_signer_receipts_and_a_failing_signer_is_a_logged_500(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[tuple[str, str, dict[str, np.ndarray], dict[str, np.ndarray]]] = []

    def sign(version: str, request_id: str, inputs: dict[str, np.ndarray],
             outputs: dict[str, np.ndarray], parameters: Any) -> dict[str, Any]:
        calls.append((version, request_id, inputs, outputs))
        if inputs["input"][0, 0] == 42:
            raise RuntimeError("key store locked")
        return {"signer": "did:key:z6Mk", "sig": "00ff"}

    app = create_app(ModelHolder(_load(gemm_relu_model(0), "7")), model_name="digits", sign=sign)
    with TestClient(app, raise_server_exceptions=False) as http:
        assert "fedledger_receipt" in http.get("/v2").json()["extensions"]
        doc = http.post("/v2/models/digits/infer", json=_infer_body(id="q-9")).json()
        assert doc["parameters"]["fedledger_receipt"] == {"signer": "did:key:z6Mk", "sig": "00ff"}
        version, request_id, inputs, outputs = calls[0]
        assert version == "7" and request_id == "q-9"
        np.testing.assert_array_equal(inputs["input"], X)
        np.testing.assert_array_equal(outputs["logits"], direct(gemm_relu_model(0), {"input": X})["logits"])
        with caplog.at_level(logging.ERROR, logger="fedledger.inference"):
            failed = http.post("/v2/models/digits/infer", json=_infer_body(np.full((1, 4), 42, np.float32)))
        assert "key store locked" in _error(failed, 500)
        assert any("failed unexpectedly" in r.message for r in caplog.records)
        assert http.post("/v2/models/digits/infer", json=_infer_body()).status_code == 200


def test_validation_errors_use_the_error_body() -> None:
    app = create_app(ModelHolder(), model_name="digits")

    @app.get("/v2/typed/{n}")
    async def typed(n: int) -> dict[str, int]:  # a typed route, to provoke FastAPI's own validation
        return {"n": n}

    with TestClient(app) as http:
        assert "invalid request" in _error(http.get("/v2/typed/abc"), 400)


def test_a_taken_port_is_a_clear_error(holder: ModelHolder) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServerStartError, match=f"127.0.0.1:{port}: the port is taken") as info:
            serve_in_thread(create_app(holder, model_name="digits"), "127.0.0.1", port)
        assert info.value.error_code == "INFERENCE_PORT"


def test_requests_are_counted_in_the_metrics_by_model_and_status(holder: ModelHolder) -> None:
    from prometheus_client import REGISTRY

    def count(model: str, status: str) -> float:
        got = REGISTRY.get_sample_value("fedledger_inference_requests_total", {"model": model, "status": status})
        return got or 0.0

    before = (count("metricsmodel", "200"), count("metricsmodel", "400"), count("other", "404"))
    with TestClient(create_app(holder, model_name="metricsmodel")) as http:
        assert http.post("/v2/models/metricsmodel/infer", json=_infer_body()).status_code == 200
        assert http.post("/v2/models/metricsmodel/infer", json={"inputs": "nope"}).status_code == 400
        assert http.post("/v2/models/elsewhere/infer", json=_infer_body()).status_code == 404
    assert (count("metricsmodel", "200"), count("metricsmodel", "400"), count("other", "404")) == (
        before[0] + 1, before[1] + 1, before[2] + 1)
    seconds = REGISTRY.get_sample_value("fedledger_inference_seconds_count", {"model": "metricsmodel"})
    assert seconds is not None and seconds >= 2
