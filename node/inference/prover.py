"""Scheduled zk proving on an inference node: a job queue with a worker thread, keys cached per version.

Proving costs seconds (keys hundreds of MB), so it never runs on a request: POST .../prove queues
a job and answers its id at once; GET /v2/prove/{job} polls pending | running | done | failed. A
done job carries the proof and the submit_inference_proof body signed by this node, ready for the
client to post. Routes are an OIP v2 extension ("fedledger_zk_prove") on the node's server.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import queue
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response

from fedledger.abci_app.modules.zk.msgs import INPUT_MODES
from fedledger.node.inference.errors import OIPError
from fedledger.node.inference.oip import encode_error
from fedledger.sdk.zk.errors import ZkError, ZkSetupError
from fedledger.sdk.zk.proof import Proof, prove
from fedledger.sdk.zk.setup import CircuitSetup
from fedledger.sdk.zk.srs import SrsFile
from fedledger.sdk.zk.submission import signed_proof_body

__all__ = [
    "DEFAULT_MAX_JOBS",
    "DEFAULT_MAX_QUEUE",
    "DiskSetupBuilder",
    "EXTENSION",
    "JobState",
    "KeyCache",
    "ProofJob",
    "ProofScheduler",
    "install_prove_routes",
    "setup_builder",
]

log = logging.getLogger("fedledger.inference.prover")

EXTENSION = "fedledger_zk_prove"
DEFAULT_MAX_QUEUE = 16  # jobs waiting; more is refused with 429 (a prover falls behind gracefully)
DEFAULT_MAX_JOBS = 256  # finished jobs kept for polling; the oldest are forgotten first
MAX_INPUT = 1 << 16  # most input values one proving request may carry
JobState = Literal["pending", "running", "done", "failed"]


class KeyCache:
    """Circuit setups per (version, input mode), built on first use by `build` and kept (keys are expensive)."""

    def __init__(self, build: Callable[[int, str], CircuitSetup]) -> None:
        self._build = build
        self._setups: dict[tuple[int, str], CircuitSetup] = {}
        self._lock = threading.Lock()

    def get(self, version: int, input_mode: str) -> CircuitSetup:
        """The setup, building it the first time (ZkError from `build` if the version cannot be set up)."""
        with self._lock:
            key = (version, input_mode)
            if key not in self._setups:
                self._setups[key] = self._build(version, input_mode)
            return self._setups[key]


@dataclass(frozen=True)
class DiskSetupBuilder:
    """A picklable builder: a version's artifact is the node's verified cache file `v<version>.onnx`.

    Picklable, so that an isolated scheduler can build and prove in a child process: ezkl holds the
    GIL for the whole of a setup or a proof (measured: a 2^16 gen_srs in a thread froze the main
    thread for 22 s), which in the serving process would stall every HTTP answer.
    """

    task_id: str
    artifact_dir: Path
    srs: SrsFile
    cache_dir: Path

    def __call__(self, version: int, input_mode: str) -> CircuitSetup:
        """The version's setup, from its cached artifact (ZkSetupError if this node never held it)."""
        try:
            artifact = (self.artifact_dir / f"v{version:08d}.onnx").read_bytes()
        except FileNotFoundError:
            raise ZkSetupError(f"this node has no artifact of version {version} of {self.task_id!r} to prove "
                               "with") from None
        return CircuitSetup.build(self.task_id, version, input_mode, artifact, self.srs, self.cache_dir)


_CHILD_SETUPS: dict[tuple[DiskSetupBuilder, int, str], CircuitSetup] = {}


def _child_prove(builder: DiskSetupBuilder, version: int, input_mode: str, data: list[float]) -> Proof:
    """In the prover's child process: the (cached) setup, then the proof."""
    key = (builder, version, input_mode)
    if key not in _CHILD_SETUPS:
        _CHILD_SETUPS[key] = builder(version, input_mode)
    return prove(_CHILD_SETUPS[key], np.asarray(data, dtype=np.float32))


def setup_builder(task_id: str, artifact_for: Callable[[int], bytes | None], srs: SrsFile,
                  cache_dir: Path) -> Callable[[int, str], CircuitSetup]:
    """A KeyCache builder from the node's artifacts: `artifact_for(version)` gives a version's ONNX bytes (or None)."""

    def build(version: int, input_mode: str) -> CircuitSetup:
        artifact = artifact_for(version)
        if artifact is None:
            raise ZkSetupError(f"this node has no artifact of version {version} of {task_id!r} to prove with")
        return CircuitSetup.build(task_id, version, input_mode, artifact, srs, cache_dir)

    return build


@dataclass
class ProofJob:
    """One proving job and, once finished, its result."""

    job_id: str
    task_id: str
    version: int
    input_mode: str
    request_id: str
    data: list[float] = field(repr=False)
    state: JobState = "pending"
    result: dict[str, Any] | None = None  # {"proof": ..., "submission": ...} when done
    reason: str | None = None  # why it failed

    def to_json(self) -> dict[str, Any]:
        """What a poll answers."""
        doc: dict[str, Any] = {"job_id": self.job_id, "state": self.state, "task_id": self.task_id,
                               "version": self.version, "input_mode": self.input_mode, "request_id": self.request_id}
        if self.result is not None:
            doc.update(self.result)
        if self.reason is not None:
            doc["reason"] = self.reason
        return doc


class ProofScheduler:
    """A node's proving queue: one worker thread proves jobs in order and signs each proof with the node's key."""

    def __init__(self, task_id: str, keys: KeyCache, node_key: Ed25519PrivateKey, *,
                 max_queue: int = DEFAULT_MAX_QUEUE, max_jobs: int = DEFAULT_MAX_JOBS,
                 isolate: DiskSetupBuilder | None = None) -> None:
        """`isolate`: build and prove in one child process with this builder (keys then live in the child)."""
        self.task_id, self.keys, self._key = task_id, keys, node_key
        self._isolate = isolate
        self._pool = (ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
                      if isolate is not None else None)
        self._queue: queue.Queue[ProofJob | None] = queue.Queue(maxsize=max_queue)
        self._jobs: OrderedDict[str, ProofJob] = OrderedDict()
        self._max_jobs = max_jobs
        self._lock = threading.Lock()
        self._worker = threading.Thread(target=self._run, name="fedledger-prover", daemon=True)
        self._worker.start()

    def submit(self, version: int, input_mode: str, data: list[float], request_id: str) -> str:
        """Queue a proof of one inference; returns the job id. OIPError(400 | 429) for a bad or unqueueable job."""
        if input_mode not in INPUT_MODES:
            raise OIPError(400, f"input_mode must be one of {list(INPUT_MODES)}")
        if not 1 <= len(data) <= MAX_INPUT or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                      and math.isfinite(v) for v in data):
            raise OIPError(400, f"data must be a flat list of 1-{MAX_INPUT} finite numbers")
        job = ProofJob(job_id=secrets.token_hex(16), task_id=self.task_id, version=version, input_mode=input_mode,
                       request_id=request_id, data=[float(v) for v in data])
        with self._lock:
            self._jobs[job.job_id] = job
            self._forget_old()
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            with self._lock:
                del self._jobs[job.job_id]
            raise OIPError(429, "the prover's queue is full; retry later") from None
        return job.job_id

    def poll(self, job_id: str) -> ProofJob | None:
        """The job, or None if it is unknown (or was forgotten)."""
        with self._lock:
            return self._jobs.get(job_id)

    def wait(self, job_id: str, timeout_s: float) -> ProofJob | None:
        """Poll until the job finishes or `timeout_s` passes (for tests and local callers)."""
        import time

        deadline = time.monotonic() + timeout_s
        while True:
            job = self.poll(job_id)
            if job is None or job.state in ("done", "failed") or time.monotonic() > deadline:
                return job
            time.sleep(0.05)

    def close(self) -> None:
        """Stop the worker after the job it is on (and the child process, if proving is isolated)."""
        self._queue.put(None)
        self._worker.join(timeout=60)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _forget_old(self) -> None:
        finished = [j for j, job in self._jobs.items() if job.state in ("done", "failed")]
        while len(self._jobs) > self._max_jobs and finished:
            del self._jobs[finished.pop(0)]

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            job.state = "running"
            try:
                if self._pool is not None and self._isolate is not None:
                    proof = self._pool.submit(_child_prove, self._isolate, job.version, job.input_mode,
                                              job.data).result()
                else:
                    setup = self.keys.get(job.version, job.input_mode)
                    proof = prove(setup, np.asarray(job.data, dtype=np.float32))
                body = signed_proof_body(self._key, proof, task_id=job.task_id, version=job.version,
                                         request_id=job.request_id, input_mode=job.input_mode)
                job.result = {"proof": proof.to_json(), "submission": body}
                job.state = "done"
            except ZkError as exc:
                job.reason, job.state = str(exc), "failed"
            except Exception as exc:  # noqa: BLE001 - a job fails with its reason; the worker keeps serving
                log.exception("proving job %s failed unexpectedly", job.job_id)
                job.reason, job.state = f"internal error: {type(exc).__name__}: {exc}", "failed"


def _error(status: int, message: str) -> Response:
    return Response(encode_error(message), status_code=status, media_type="application/json")


def install_prove_routes(app: FastAPI, scheduler: ProofScheduler, model_name: str) -> None:
    """POST /v2/models/{name}/versions/{v}/prove {id, input_mode, data} -> 202 {job_id}; GET /v2/prove/{job}."""

    @app.post("/v2/models/{name}/versions/{version}/prove")
    async def submit_prove(request: Request, name: str, version: str) -> Response:
        try:
            if name != model_name:
                raise OIPError(404, f"model {name!r} is not served here; this node serves {model_name!r}")
            if not version.isdigit() or not 1 <= len(version) <= 12 or int(version) < 1:
                raise OIPError(400, f"version must be a positive integer, got {version[:20]!r}")
            try:
                doc = await request.json()
            except ValueError:
                raise OIPError(400, "the body must be JSON: {\"id\", \"input_mode\", \"data\"}") from None
            if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
                raise OIPError(400, "the body must be an object with data: a flat list of numbers")
            rid = doc.get("id")
            if not isinstance(rid, str) or not 1 <= len(rid) <= 128:
                raise OIPError(400, "id (the request id the proof is filed under) must be 1-128 characters")
            job_id = scheduler.submit(int(version), str(doc.get("input_mode", "hashed")), doc["data"], rid)
        except OIPError as exc:
            return _error(exc.status, exc.message)
        return JSONResponse({"job_id": job_id, "state": "pending"}, status_code=202)

    @app.get("/v2/prove/{job_id}")
    async def poll_prove(job_id: str) -> Response:
        job = scheduler.poll(job_id)
        if job is None:
            return _error(404, f"no proving job {job_id[:40]!r} (unknown, or finished long ago and forgotten)")
        return JSONResponse(job.to_json())
