"""An inference node's HTTP endpoints for encrypted (CKKS) stages: POST .../stages/{i}/he, GET /v2/he/health.

The path extends the Open Inference Protocol's model/version paths:
POST /v2/models/{name}/versions/{version}/stages/{stage}/he takes a frame (sdk/he/records.py)
with the client's signed request, the input ciphertext and, the first time, the evaluation
context; it answers a frame with the node's signed receipt and the output ciphertext. Every
refusal is {"error": message, "code": error_code} with the HEError's status: 400 malformed, 409
wrong stage, 413 oversized, 422 tampered or unfitting context, 428 context not held.

The routes can stand alone (create_he_app, one fixed stage) or be mounted on the inference
node's OIP app (mount_he_routes), where a provider returns the stages of the version the node
serves right now, so a hot swap on promotion swaps the HE stages with the plaintext model.
GET /v2/he/health says which model, version and stages the node holds, which is how a client
learns which registered node to send each stage to.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.node.inference.he_eval import ContextCache, evaluate_stage
from fedledger.sdk.he.errors import HEError, HEFormatError, HEIntegrityError, HEOversizeError, HEStageError
from fedledger.sdk.he.keys import sha256_hex
from fedledger.sdk.he.params import CKKS_PARAMS, CKKSParams
from fedledger.sdk.he.poly import PolyStage
from fedledger.sdk.he.records import decode_frame, encode_frame, parse_request, sign_receipt

__all__ = ["DEFAULT_MAX_HE_BODY_BYTES", "HEStageNode", "HEStageSet", "StageProvider", "create_he_app",
           "he_stage_path", "mount_he_routes"]

log = logging.getLogger("fedledger.inference.he")

# A public context at the default parameters is ~53 MB (Galois keys for every power-of-two rotation);
# a body above this cannot be a context plus one ciphertext.
DEFAULT_MAX_HE_BODY_BYTES = 96 << 20


def he_stage_path(model: str, version: int, stage: int) -> str:
    """The endpoint path of one stage."""
    return f"/v2/models/{model}/versions/{version}/stages/{stage}/he"


@dataclass(frozen=True, eq=False)
class HEStageNode:
    """What one node serves: a model version's single stage, and the DID key it signs receipts with."""

    model: str
    version: int
    stage: PolyStage
    key: Ed25519PrivateKey
    params: CKKSParams = CKKS_PARAMS


@dataclass(frozen=True, eq=False)
class HEStageSet:
    """What a node serves right now: some stages of one model version (ideally one), keyed by stage index."""

    model: str
    version: int
    stages: Mapping[int, PolyStage] = field(default_factory=dict)
    params: CKKSParams = CKKS_PARAMS


# Called per request: the stages served right now, or None while nothing is (no version, or not a poly model).
StageProvider = Callable[[], HEStageSet | None]


def _error(exc: HEError) -> JSONResponse:
    return JSONResponse({"error": str(exc), "code": exc.error_code}, status_code=exc.http_status)


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is (or announces to be) longer than limit."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HEOversizeError(f"body of {declared} bytes exceeds this node's limit of {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HEOversizeError(f"body exceeds this node's limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def create_he_app(node: HEStageNode, max_body_bytes: int = DEFAULT_MAX_HE_BODY_BYTES,
                  context_capacity: int = 4) -> FastAPI:
    """A FastAPI app serving node's one stage."""
    app = FastAPI(title="fedledger-he-stage", docs_url=None, redoc_url=None, openapi_url=None)
    fixed = HEStageSet(model=node.model, version=node.version, stages={node.stage.index: node.stage},
                       params=node.params)
    mount_he_routes(app, lambda: fixed, node.key, params=node.params, max_body_bytes=max_body_bytes,
                    context_capacity=context_capacity)
    return app


def mount_he_routes(app: FastAPI, provider: StageProvider, key: Ed25519PrivateKey, *,
                    params: CKKSParams = CKKS_PARAMS, max_body_bytes: int = DEFAULT_MAX_HE_BODY_BYTES,
                    context_capacity: int = 4) -> None:
    """Add the HE stage and health routes to app; provider says which stages are served at each request."""
    contexts = ContextCache(context_capacity, params)
    did = did_from_private_key(key)

    def compute(body: bytes, model: str, version: int, stage: int) -> bytes:
        served = provider()
        held = served.stages.get(stage) if served is not None else None
        if served is None or held is None or (model, version) != (served.model, served.version):
            what = "no HE stage" if served is None or not served.stages else \
                f"{served.model} version {served.version} stages {sorted(served.stages)}"
            raise HEStageError(f"this node serves {what}, not {model} version {version} stage {stage}")
        frame = decode_frame(body)
        if set(frame.header) != {"request"}:
            raise HEFormatError("a request frame's header holds exactly 'request'")
        req = parse_request(frame.header["request"])
        if (req.model, req.version, req.stage) != (model, version, stage):
            raise HEStageError(f"the signed request is for {req.model} version {req.version} stage {req.stage}, "
                               f"but was sent to stage {stage} of {model} version {version}")
        if req.params != served.params.label():
            raise HEStageError(f"the request uses {req.params}; this node evaluates {served.params.label()}")
        actual = sha256_hex(frame.ciphertext)
        if actual != req.input_sha256:
            raise HEIntegrityError(f"the ciphertext's sha256 {actual[:16]}... is not the one the client signed "
                                   f"({req.input_sha256[:16]}...)")
        ctx = contexts.get(req.eval_context_sha256, frame.context)
        output = evaluate_stage(ctx, frame.ciphertext, held)
        receipt = sign_receipt(key, req, sha256_hex(output), node=did)
        return encode_frame({"receipt": receipt.to_json()}, output)

    @app.get("/v2/he/health")
    async def health() -> dict[str, object]:
        served = provider()
        stages = sorted(served.stages) if served is not None else []
        return {"model": served.model if served is not None else None,
                "version": served.version if served is not None else None,
                "stage": stages[0] if len(stages) == 1 else None, "stages": stages, "node": did,
                "params": (served.params if served is not None else params).label()}

    @app.post("/v2/models/{model}/versions/{version}/stages/{stage}/he")
    async def infer_stage(model: str, version: int, stage: int, request: Request) -> Response:
        try:
            body = await _read_body(request, max_body_bytes)
            out = await run_in_threadpool(compute, body, model, version, stage)
        except HEError as exc:
            log.info("refused an HE stage request: %s", exc)
            return _error(exc)
        return Response(out, media_type="application/octet-stream")
