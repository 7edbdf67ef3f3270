"""An inference node: it serves a task's last good version, verified against the chain, and signs every answer.

What it does, in order:
1. On start it loads the newest artifact in its cache whose bytes match the sha256 recorded with
   it (so a restart during a partition still serves), and starts the OIP v2 server.
2. It registers its endpoint on chain (`register_inference_node`); only an admitted member with
   the `inference` role may.
3. Its follower wakes on every new block (a websocket subscription to `tm.event='NewBlock'`: a
   promotion comes in a tx, a governance rollback at the end of a block) and at least every
   `poll` seconds, which also notices a chain that stopped answering. On a new height it reads
   the task's last good version. When that changes (a promotion, or a rollback) it fetches the version's ONNX artifact
   from the content store, checks its sha256 against the version record the proposer signed,
   loads it and swaps it in; the old model finishes its in-flight batch. A last good version
   without an artifact (version 0, or one proposed without the inference extra) is not served:
   the node unloads rather than keep serving a version the chain no longer calls good.
4. With `he_stages`, for a task whose model is a square-activation MLP, it also serves those
   encrypted (CKKS) stages of the served version, cut from the same verified artifact
   (he_stages.py) and mounted on the same app (he_server.py), so they swap with the version.
5. While the chain cannot be reached, the node keeps serving the last version it verified and
   marks every response stale, with the reason (seed 1: "continue inference on cached, signed
   checkpoints during network partitions").

Each answer carries a receipt the node signs with its key: task, version, request id, input hash,
output hash and the last height it saw.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fedledger.abci_app.errors import FedLedgerError, UnavailableError, VerificationError
from fedledger.abci_app.modules.fields import HEX64
from fedledger.abci_app.modules.inference.receipts import REQUEST_ID
from fedledger.node.inference.batcher import DynamicBatcher
from fedledger.node.inference.errors import OIPError
from fedledger.node.inference.faults import ModelTransform
from fedledger.node.inference.he_server import DEFAULT_MAX_HE_BODY_BYTES, HEStageSet, mount_he_routes
from fedledger.node.inference.he_stages import is_poly_spec, poly_stages_from_onnx, select_stages
from fedledger.node.inference.holder import ModelHolder, ServedModel
from fedledger.node.inference.prover import DiskSetupBuilder, KeyCache, ProofScheduler
from fedledger.node.inference.runtime import LoadedModel
from fedledger.node.inference.server import ModelEntry, Signer, create_app
from fedledger.node.inference.serving import ServerThread, serve_in_thread
from fedledger.sdk.chainview import ChainView
from fedledger.sdk.inference.receipts import ReceiptSigner, sign_receipt
from fedledger.sdk.inference.split import default_cuts, split_model
from fedledger.sdk.keys import Key
from fedledger.sdk.rpc import subscribe
from fedledger.sdk.zk.srs import SrsFile

__all__ = ["MAX_PARTS", "ArtifactMismatchError", "InferenceNode"]

MAX_PARTS = 8  # most parts a split may cut a graph into (the client's head plus up to 7 node stages)
# The names sdk/inference/split.stage_model_name builds.
_STAGE = re.compile(r"^([a-z0-9][a-z0-9_-]{0,63})\.stage-([0-9])-of-([0-9])$")


def _request_id(text: str) -> str:
    """The OIP request id as a receipt request id; a request without one gets a fresh one."""
    if text and REQUEST_ID.match(text):
        return text
    if text:
        raise OIPError(400, "request id must be 1-64 characters of [A-Za-z0-9._:-] (it goes into the signed receipt)")
    return secrets.token_hex(12)

log = logging.getLogger(__name__)

class ArtifactMismatchError(VerificationError):
    """The artifact the content store returned is not the one the chain records for the version."""

    error_code = "ARTIFACT_MISMATCH"


class InferenceNode:
    """One node serving one task (see the module docstring)."""

    def __init__(self, *, key: Key, task_id: str, view: ChainView, status: Callable[[], dict[str, Any]],
                 store: Any, cache_dir: Path, submitter: Any | None = None, host: str = "127.0.0.1",
                 port: int = 0, poll: float = 2.0, advertise: str | None = None,
                 transform: ModelTransform | None = None, max_batch: int = 64, max_delay_ms: float = 2.0,
                 events_url: str | None = None, he_stages: tuple[int, ...] | None = None,
                 he_max_body_bytes: int = DEFAULT_MAX_HE_BODY_BYTES, zk_srs: SrsFile | None = None) -> None:
        self.key, self.task_id, self.view, self._status, self.store = key, task_id, view, status, store
        self.cache = cache_dir / task_id
        self.submitter, self.host, self.port, self.poll, self.advertise = submitter, host, port, poll, advertise
        self.transform = transform
        self.holder = ModelHolder()
        self.signer = ReceiptSigner(key.private, task_id)
        self.height = 0
        self.version: int | None = None
        self.swaps: list[int] = []
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.events_url = events_url  # the CometBFT RPC URL to subscribe to; None: poll only
        self._events_loop: asyncio.AbstractEventLoop | None = None
        self._events_task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._server: ServerThread | None = None
        self._data: bytes | None = None  # the served version's artifact (split stages are cut from it)
        self._stages: dict[tuple[str, int, int], ModelEntry] = {}
        self._stages_lock = threading.Lock()
        self._max_batch, self._max_delay_ms = max_batch, max_delay_ms
        # With an SRS the node also proves its answers (zk, critical tier): keys are built per version from the
        # artifacts it verified and cached, under the cache folder, and kept (they are hundreds of MB).
        # ezkl holds the GIL while it proves, so proving runs in a child process (DiskSetupBuilder).
        self.prover: ProofScheduler | None = None
        if zk_srs is not None:
            builder = DiskSetupBuilder(task_id, self.cache, zk_srs, self.cache / "zk")
            self.prover = ProofScheduler(task_id, KeyCache(builder), key.private, isolate=builder)
        self._app = create_app(self.holder, model_name=task_id, sign=self._sign, max_batch=max_batch,
                               max_delay_ms=max_delay_ms, resolve=self._resolve, prover=self.prover)
        self.he_stages = tuple(sorted(set(he_stages))) if he_stages is not None else None
        self._he: HEStageSet | None = None  # the served version's HE stages; replaced whole on every swap
        self._spec: str | None = None  # the task's model spec (read once from the chain, kept in the cache)
        if self.he_stages is not None:
            mount_he_routes(self._app, lambda: self._he, key.private, max_body_bytes=he_max_body_bytes)

    @property
    def url(self) -> str:
        """Where the server listens (after start)."""
        if self._server is None:
            raise RuntimeError("the node is not started")
        return self._server.url

    @property
    def he_served(self) -> HEStageSet | None:
        """The encrypted stages served right now (None: HE off, no version, or a model CKKS cannot run)."""
        return self._he

    def _sign(self, label: str, request_id: str, inputs: dict[str, np.ndarray],
              outputs: dict[str, np.ndarray], parameters: Mapping[str, Any]) -> dict[str, Any]:
        return self.signer.sign(version=int(label), request_id=_request_id(request_id), inputs=inputs,
                                outputs=outputs, height=self.height).to_json()

    def _stage_sign(self, segment: str) -> Signer:
        def sign(label: str, request_id: str, inputs: dict[str, np.ndarray], outputs: dict[str, np.ndarray],
                 parameters: Mapping[str, Any]) -> dict[str, Any]:
            prev = parameters.get("fedledger_prev", "")
            if not isinstance(prev, str) or (prev and not HEX64.match(prev)):
                raise OIPError(400, "parameter fedledger_prev must be the sha256 hex of the previous hop's receipt")
            return sign_receipt(self.key.private, task_id=self.task_id, version=int(label),
                                request_id=_request_id(request_id), inputs=inputs, outputs=outputs,
                                height=self.height, segment=segment, prev=prev, did=self.signer.did,
                                check=False).to_json()
        return sign

    def _resolve(self, name: str) -> ModelEntry | None:
        """A split stage `TASK.stage-I-of-N` of the served version, cut and loaded on first use."""
        m = _STAGE.fullmatch(name)
        if m is None or m.group(1) != self.task_id:
            return None
        index, parts = int(m.group(2)), int(m.group(3))
        served, data = self.holder.current, self._data
        if not 2 <= parts <= MAX_PARTS or not 1 <= index <= parts or served is None or data is None:
            return None
        key = (served.version, index, parts)
        with self._stages_lock:
            if key not in self._stages:
                stage = split_model(data, default_cuts(data, parts))[index - 1]
                model = LoadedModel.from_bytes(stage, name=name, version=served.version)
                if self.transform is not None:
                    model = self.transform(int(served.version), model, None)
                holder = ModelHolder(ServedModel(model, served.version, dict(served.metadata)))
                stale, reason = self.holder.freshness()
                if stale:
                    holder.mark_stale(reason)
                batcher = DynamicBatcher(holder, max_batch=self._max_batch, max_delay_ms=self._max_delay_ms,
                                         name=name)
                # Only the served version's stages are kept: a swap makes the old ones unreachable.
                self._stages = {k: v for k, v in self._stages.items() if k[0] == served.version}
                self._stages[key] = ModelEntry(name, holder, batcher, self._stage_sign(f"{index}/{parts}"))
            return self._stages[key]

    # ------------------------------------------------------------------ lifecycle
    def start(self, *, register: bool = True) -> str:
        """Load the cache, serve, register the endpoint (when the chain answers) and start following."""
        self._load_cached()
        self._server = serve_in_thread(self._app, self.host, self.port)
        if register and self.submitter is not None:
            self.register()
        self.sync()
        self._thread = threading.Thread(target=self._follow, name=f"inference-follow-{self.task_id}", daemon=True)
        self._thread.start()
        if self.events_url is not None:
            threading.Thread(target=self._events, name=f"inference-events-{self.task_id}", daemon=True).start()
        return self.url

    def register(self) -> None:
        """Announce the endpoint on chain (a node that moved re-registers; the chain keeps one record per key)."""
        endpoint = self.advertise or self.url
        mine = self.view.get(f"/inference-node/{self.key.public_hex}") if self.view.exists(
            f"/inference-node/{self.key.public_hex}") else None
        if mine is None or mine["endpoint"] != endpoint.rstrip("/") or mine["tasks"] != [self.task_id]:
            assert self.submitter is not None
            self.submitter.send("register_inference_node", {"endpoint": endpoint, "tasks": [self.task_id]})

    def stop(self) -> None:
        """Stop following and serving."""
        self._stop.set()
        self._wake.set()
        loop, task = self._events_loop, self._events_task
        if loop is not None and task is not None and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)
        if self._thread is not None:
            self._thread.join(5)
        if self._server is not None:
            self._server.stop()
        if self.prover is not None:
            self.prover.close()

    # ------------------------------------------------------------------ following the chain
    def _follow(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll)
            self._wake.clear()
            if not self._stop.is_set():
                self.sync()

    def _events(self) -> None:
        """Wake the follower on each new block; resubscribe after a lost connection."""
        assert self.events_url is not None
        url, query = self.events_url, "tm.event='NewBlock'"

        async def run() -> None:
            while not self._stop.is_set():
                try:
                    async for _ in subscribe(url, query):
                        self._wake.set()
                except (FedLedgerError, OSError) as exc:
                    log.info("inference node %s: event subscription lost (%s); polling meanwhile", self.task_id, exc)
                    await asyncio.sleep(2)

        loop = asyncio.new_event_loop()
        self._events_loop = loop
        self._events_task = loop.create_task(run())
        try:
            loop.run_until_complete(self._events_task)
        except asyncio.CancelledError:
            pass
        finally:
            loop.close()

    def sync(self) -> None:
        """One follower step: read the chain, swap versions if needed; mark stale if the chain is unreachable."""
        try:
            height = int(self._status()["sync_info"]["latest_block_height"])
            if height != self.height or self.version is None:
                target = self.view.last_good(self.task_id)
                self.height = height
                if target != self.version:
                    self._serve_version(target)
            self._freshness(None)
        except UnavailableError as exc:
            reason = f"the chain is unreachable ({str(exc)[:120]}); serving the last verified version {self.version}"
            if not self.holder.stale:
                log.warning("%s", reason)
            self._freshness(reason)
        except FedLedgerError as exc:
            log.warning("inference node %s: could not follow the chain: %s", self.task_id, exc)

    def _freshness(self, stale_reason: str | None) -> None:
        with self._stages_lock:
            holders = [self.holder, *(e.holder for e in self._stages.values())]
        for holder in holders:
            if stale_reason is None:
                holder.mark_fresh()
            else:
                holder.mark_stale(stale_reason)

    def _serve_version(self, version: int) -> None:
        rec = self.view.version(self.task_id, version) if version > 0 else None
        artifact = rec.get("artifact") if rec is not None else None
        if rec is None or artifact is None:
            log.warning("task %s: last good version %d has no ONNX artifact; not serving", self.task_id, version)
            self.holder.unload()
            self._he = None
            self.version = version
            return
        data = self.store.get(artifact["cid"], artifact["sha256"])
        if hashlib.sha256(data).hexdigest() != artifact["sha256"]:
            raise ArtifactMismatchError(f"the artifact of version {version} does not match its recorded sha256")
        if self.he_stages is not None and self._spec is None:
            self._spec = str(self.view.task(self.task_id)["model_spec"])
        record = {**dict(rec), "model_spec": self._spec} if self._spec is not None else dict(rec)
        self._swap(version, data, record)
        self._write_cache(version, data, record)

    def _swap(self, version: int, data: bytes, record: dict[str, Any]) -> None:
        model = LoadedModel.from_bytes(data, name=self.task_id, version=str(version))
        if self.transform is not None:  # a lying node (faults.py): experiments and tests only
            current = self.holder.current
            model = self.transform(version, model, current.model if current is not None else None)
        self.holder.swap(ServedModel(model, str(version), {"artifact": record.get("artifact"),
                                                            "proposer": record.get("proposer")}))
        self._data = data
        self._he = self._he_stages_of(version, data, record)
        self.version = version
        self.swaps.append(version)
        log.info("task %s: now serving version %d", self.task_id, version)

    def _he_stages_of(self, version: int, data: bytes, record: Mapping[str, Any]) -> HEStageSet | None:
        """The HE stages this node holds of a version, or None (HE off, or a model CKKS cannot run)."""
        spec = record.get("model_spec")
        if self.he_stages is None or not isinstance(spec, str):
            return None
        if not is_poly_spec(spec):
            log.warning("task %s: model %s is not a square-activation MLP; no HE stages served", self.task_id, spec)
            return None
        try:
            stages = select_stages(poly_stages_from_onnx(data, spec), self.he_stages)
        except FedLedgerError as exc:
            log.warning("task %s: version %d's HE stages cannot be served: %s", self.task_id, version, exc)
            return None
        return HEStageSet(model=self.task_id, version=version, stages=stages)

    # ------------------------------------------------------------------ the partition cache
    def _write_cache(self, version: int, data: bytes, record: dict[str, Any]) -> None:
        self.cache.mkdir(parents=True, exist_ok=True)
        (self.cache / f"v{version:08d}.onnx").write_bytes(data)
        (self.cache / f"v{version:08d}.json").write_text(json.dumps(record, sort_keys=True))
        (self.cache / "current").write_text(str(version))

    def _load_cached(self) -> None:
        current = self.cache / "current"
        if not current.exists():
            return
        version = int(current.read_text().strip() or 0)
        onnx_path, rec_path = self.cache / f"v{version:08d}.onnx", self.cache / f"v{version:08d}.json"
        try:
            record = json.loads(rec_path.read_text())
            data = onnx_path.read_bytes()
        except (OSError, ValueError) as exc:
            log.warning("ignoring the inference cache in %s: %s", self.cache, exc)
            return
        if hashlib.sha256(data).hexdigest() != (record.get("artifact") or {}).get("sha256"):
            log.warning("ignoring cached version %d: its bytes do not match the recorded sha256", version)
            return
        self._swap(version, data, record)
        self.holder.mark_stale(f"serving cached version {version}; not yet confirmed against the chain")
