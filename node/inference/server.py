"""The inference node's Open Inference Protocol v2 REST server (FastAPI): health, metadata and infer for one model.

Every answer that is not a success is the protocol's error body {"error": message} with a 4xx or
503 status; the one 500 is an unexpected exception, which is logged with its traceback. Infer
responses carry FedLedger's serving state in `parameters`: the version label that computed the
outputs, whether the node is stale (cannot reach the chain) and why, and, with a signer, a receipt.
"""

from __future__ import annotations

import json
import logging
import time
import zlib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from fedledger.node.inference.batcher import (
    DEFAULT_INLINE_BELOW_MS,
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_DELAY_MS,
    DEFAULT_MAX_QUEUE,
    DynamicBatcher,
)
from fedledger.node.inference.errors import InferenceRunError, OIPError
from fedledger.node.inference.holder import ModelHolder, ServedModel
from fedledger.node.inference.oip import encode_error, encode_infer_response, parse_infer_request
from fedledger.node.inference.prover import EXTENSION as PROVE_EXTENSION
from fedledger.node.inference.prover import ProofScheduler, install_prove_routes
from fedledger.sdk.metrics import INFERENCE_REQUESTS, INFERENCE_SECONDS

__all__ = ["DEFAULT_MAX_BODY_BYTES", "PLATFORM", "SERVER_NAME", "ModelEntry", "Resolver", "Signer", "create_app"]

log = logging.getLogger("fedledger.inference")

SERVER_NAME = "fedledger-inference"
PLATFORM = "onnxruntime_onnx"  # Triton's platform name for ONNX models run by onnxruntime
DEFAULT_MAX_BODY_BYTES = 64 << 20  # a request body (after decompression) larger than this is refused with 413
# Bodies above this are parsed on a worker thread: parsing megabytes of JSON would stall every other request.
_PARSE_INLINE_BYTES = 256 << 10

# sign(served version label, request id, the request's inputs, the returned outputs, the request's parameters)
# -> the response's receipt.
Signer = Callable[[str, str, dict[str, np.ndarray], dict[str, np.ndarray], Mapping[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class ModelEntry:
    """One more model a server answers for besides its main one (a split stage): its holder, batcher and signer."""

    name: str
    holder: ModelHolder
    batcher: DynamicBatcher
    sign: Signer | None


# name -> the entry serving it, or None: how a server finds models other than its main one (created on demand).
Resolver = Callable[[str], ModelEntry | None]


def _server_version() -> str:
    try:
        return package_version("fedledger")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0.0.0"


def _error(status: int, message: str) -> Response:
    return Response(encode_error(message), status_code=status, media_type="application/json")


async def _read_body(request: Request, cap: int) -> bytes:
    """The request body, decompressed per Content-Encoding, refused with 413 once it passes `cap` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise OIPError(413, f"the request body is {declared} bytes; this node accepts at most {cap}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise OIPError(413, f"the request body is over {cap} bytes, the most this node accepts")
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise OIPError(415, f"Content-Encoding {encoding!r} is not supported; send identity, gzip or deflate")
    # gzip has its own header (wbits 16+); "deflate" on the web means the zlib format, as Triton's client sends.
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
    try:
        plain = inflater.decompress(body, cap + 1)
    except zlib.error as exc:
        raise OIPError(400, f"the {encoding} body does not decompress: {exc}") from None
    if len(plain) > cap:
        raise OIPError(413, f"the decompressed request body is over {cap} bytes, the most this node accepts")
    if not inflater.eof:
        raise OIPError(400, f"the {encoding} body is truncated")
    return plain


def _header_length(request: Request) -> int | None:
    value = request.headers.get("inference-header-content-length")
    if value is None:
        return None
    if not value.strip().isdigit():
        raise OIPError(400, f"Inference-Header-Content-Length must be a byte count, got {value!r}")
    return int(value)


def create_app(holder: ModelHolder, *, model_name: str, sign: Signer | None = None,
               max_batch: int = DEFAULT_MAX_BATCH, max_delay_ms: float = DEFAULT_MAX_DELAY_MS,
               max_queue: int = DEFAULT_MAX_QUEUE, inline_below_ms: float = DEFAULT_INLINE_BELOW_MS,
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, resolve: Resolver | None = None,
               prover: ProofScheduler | None = None) -> FastAPI:
    """An OIP v2 server for the model `holder` serves, under the name `model_name`.

    `resolve` finds further models by name (the inference node's split stages); their requests
    take the same path, with their own holder, batcher and signer.

    `max_batch` rows and `max_delay_ms` shape dynamic batching (max_batch=1 turns it off), and
    `inline_below_ms` which lone requests skip the worker thread (0: none do); the batcher is
    `app.state.batcher`. With a `prover`, the zk proving routes (prover.py) are served too.
    """
    batcher = DynamicBatcher(holder, max_batch=max_batch, max_delay_ms=max_delay_ms, max_queue=max_queue,
                             inline_below_ms=inline_below_ms, name=model_name)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await batcher.aclose()

    # No docs or OpenAPI routes: the node's surface is the protocol's, nothing else.
    app = FastAPI(title=SERVER_NAME, docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.batcher = batcher
    app.state.holder = holder
    extensions = ["binary_tensor_data", "fedledger_version", "fedledger_stale"]
    if sign is not None:
        extensions.append("fedledger_receipt")
    if prover is not None:
        extensions.append(PROVE_EXTENSION)
        install_prove_routes(app, prover, model_name)

    main = ModelEntry(model_name, holder, batcher, sign)

    def entry_of(name: str) -> ModelEntry:
        if name == model_name:
            return main
        found = resolve(name) if resolve is not None else None
        if found is None:
            raise OIPError(404, f"model {name!r} is not served here; this node serves {model_name!r}")
        return found

    def served_or_raise(name: str, version: str | None) -> ServedModel:
        entry = entry_of(name)
        served = entry.holder.current
        if served is None:
            raise OIPError(503, f"model {name!r} is not loaded yet; retry once the node is ready")
        if version is not None and version != served.version:
            raise OIPError(404, f"model {name!r} version {version!r} is not served; this node serves "
                                f"version {served.version!r} (or omit the version)")
        return served

    def metadata(name: str, served: ServedModel) -> dict[str, Any]:
        stale, reason = entry_of(name).holder.freshness()
        state: dict[str, Any] = {"version": served.version, "stale": stale, "metadata": dict(served.metadata)}
        if stale:
            state["stale_reason"] = reason
        return {"name": name, "versions": [served.version], "platform": PLATFORM,
                "inputs": [i.metadata() for i in served.model.inputs],
                "outputs": [o.metadata() for o in served.model.outputs], "fedledger": state}

    @app.get("/v2")
    async def server_metadata() -> Response:
        return JSONResponse({"name": SERVER_NAME, "version": _server_version(), "extensions": extensions})

    @app.get("/v2/health/live")
    async def live() -> Response:
        return JSONResponse({"live": True})

    @app.get("/v2/health/ready")
    async def ready() -> Response:
        if not holder.ready:
            return _error(503, f"not ready: model {model_name!r} is not loaded yet")
        return JSONResponse({"ready": True})

    @app.get("/v2/models/{name}")
    async def model_metadata(name: str) -> Response:
        return Response(_json(metadata(name, served_or_raise(name, None))), media_type="application/json")

    @app.get("/v2/models/{name}/versions/{version}")
    async def model_version_metadata(name: str, version: str) -> Response:
        return Response(_json(metadata(name, served_or_raise(name, version))), media_type="application/json")

    @app.get("/v2/models/{name}/ready")
    async def model_ready(name: str) -> Response:
        served_or_raise(name, None)
        return JSONResponse({"name": name, "ready": True})

    @app.get("/v2/models/{name}/versions/{version}/ready")
    async def model_version_ready(name: str, version: str) -> Response:
        served_or_raise(name, version)
        return JSONResponse({"name": name, "ready": True})

    async def infer(request: Request, name: str, version: str | None) -> Response:
        served = served_or_raise(name, version)
        entry = entry_of(name)
        body = await _read_body(request, max_body_bytes)
        header_length = _header_length(request)
        if len(body) > _PARSE_INLINE_BYTES:
            parsed = await run_in_threadpool(parse_infer_request, body, served.model, header_length=header_length)
        else:
            parsed = parse_infer_request(body, served.model, header_length=header_length)
        result = await entry.batcher.submit(parsed.inputs)
        missing = [n for n in parsed.outputs if n not in result.outputs]
        if missing:  # the model was swapped between parsing and running, and the new one lacks these outputs
            raise OIPError(409, f"model {name!r} changed to version {result.served.version!r}, which has no "
                                f"outputs {missing}; resend the request")
        outputs = {n: result.outputs[n] for n in parsed.outputs}
        label = result.served.version  # the version that computed these outputs, even if a swap came since
        stale, reason = entry.holder.freshness()
        parameters: dict[str, Any] = {"fedledger_version": label, "fedledger_stale": stale}
        if stale:
            parameters["fedledger_stale_reason"] = reason
        if entry.sign is not None:
            # Inline: a receipt costs ~0.1 ms (mostly one Ed25519 signature), less than a hop to a worker thread.
            parameters["fedledger_receipt"] = entry.sign(label, parsed.id, parsed.inputs, outputs, parsed.parameters)
        encoded = encode_infer_response(model_name=name, model_version=label, request_id=parsed.id,
                                        parameters=parameters, outputs=outputs, binary=parsed.binary_outputs)
        headers = {} if encoded.header_length is None else \
            {"Inference-Header-Content-Length": str(encoded.header_length)}
        return Response(encoded.body, media_type=encoded.media_type, headers=headers)

    async def guarded_infer(request: Request, name: str, version: str | None) -> Response:
        started = time.monotonic()
        response = await _answer(request, name, version)
        # A bounded label: the main model by its name; split stages and unknown names are one "other" series.
        model = name if name == model_name else "other"
        INFERENCE_REQUESTS.labels(model, str(response.status_code)).inc()
        INFERENCE_SECONDS.labels(model).observe(time.monotonic() - started)
        return response

    async def _answer(request: Request, name: str, version: str | None) -> Response:
        try:
            return await infer(request, name, version)
        except OIPError as exc:
            return _error(exc.status, exc.message)
        except InferenceRunError as exc:
            return _error(400, str(exc))
        except Exception as exc:  # noqa: BLE001 - the protocol's error body, never a stack trace to the client
            log.exception("inference request for %s failed unexpectedly", name)
            return _error(500, f"internal error: {type(exc).__name__}: {exc}")

    @app.post("/v2/models/{name}/infer")
    async def model_infer(request: Request, name: str) -> Response:
        return await guarded_infer(request, name, None)

    @app.post("/v2/models/{name}/versions/{version}/infer")
    async def model_version_infer(request: Request, name: str, version: str) -> Response:
        return await guarded_infer(request, name, version)

    _install_error_handlers(app)
    return app


def _json(doc: Any) -> bytes:
    # default=str: holder metadata is free-form; a value JSON cannot hold is shown as its text, not a 500.
    return json.dumps(doc, default=str).encode("utf-8")


def _install_error_handlers(app: FastAPI) -> None:
    async def on_oip(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, OIPError)
        return _error(exc.status, exc.message)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            message = f"no endpoint {request.method} {request.url.path}; the OIP v2 endpoints are under /v2"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        return _error(exc.status_code, message)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
                             for e in exc.errors())
        return _error(400, f"invalid request to {request.url.path}: {problems}")

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, f"internal error: {type(exc).__name__}: {exc}")

    app.add_exception_handler(OIPError, on_oip)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(Exception, on_unexpected)
