"""The evaluator service: follows a task, evaluates every proposed version on its canary set and trigger probe, attests.

It keeps no memory that matters between steps: which versions still need its attestation is read
from the chain (versions with status "proposed" that carry no attestation of this evaluator's
DID), so a restarted evaluator resumes exactly where the chain is.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fedledger.abci_app.errors import Code
from fedledger.abci_app.modules.federation.records import VersionRecord
from fedledger.ipfs import ContentStore, StoreError
from fedledger.node.follow import follow_task
from fedledger.node.probes import PPM, ProbeError, TriggerProbe, attack_success_rate, canary_accuracy
from fedledger.sdk.chainview import ChainView, NotFoundOnChain
from fedledger.sdk.errors import ClientError, TxRejectedError
from fedledger.sdk.ml.data import ClientData
from fedledger.sdk.steps import Action, Step
from fedledger.sdk.submit import Submitter
from fedledger.sdk.tensors import PayloadError, decode_tensors

__all__ = ["Evaluation", "Evaluator", "metrics_bytes"]

log = logging.getLogger("fedledger.evaluator")
# Rejections that no retry can fix; the evaluator stops on them instead of looping.
# Rejections that mean "nothing left to do for this version" (decided meanwhile, or attested already).
_MOOT = frozenset({Code.VERSION_DECIDED, Code.ALREADY_EXISTS})


@dataclass(frozen=True)
class Evaluation:
    """One version's measurements, the metrics JSON they come from, and where that JSON is stored."""

    version: int
    model_sha256: str
    canary_accuracy_ppm: int
    backdoor_asr_ppm: int
    metrics: dict[str, Any]
    metrics_sha256: str
    metrics_cid: str

    def body(self, task_id: str) -> dict[str, Any]:
        """The attest_version tx body."""
        return {"task_id": task_id, "version": self.version, "canary_accuracy_ppm": self.canary_accuracy_ppm,
                "backdoor_asr_ppm": self.backdoor_asr_ppm, "metrics_sha256": self.metrics_sha256}


def metrics_bytes(metrics: dict[str, Any]) -> bytes:
    """The one byte encoding of a metrics JSON (sorted keys, no whitespace) whose sha256 goes on chain."""
    return json.dumps(metrics, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


class Evaluator:
    """Attests each proposed version of one task: canary accuracy and backdoor ASR, posted as attest_version.

    Without a probe (a task whose data has no image trigger, such as tabular data) the ASR is 0,
    unless `scan` runs the trigger-agnostic backdoor scan, whose reverse-engineered trigger's ASR
    then counts.
    """

    def __init__(self, submitter: Submitter, store: ContentStore, task_id: str, canary: ClientData,
                 probe: TriggerProbe | None, scan: bool = False) -> None:
        if len(canary) == 0:
            raise ClientError("the evaluator's canary set is empty")
        if probe is not None:
            probe.victims(canary)  # fail now, not at the first version, if the canary cannot run the probe
        self.submitter = submitter
        self.view = ChainView(submitter.rpc)
        self.store = store
        self.task_id = task_id
        self.canary = canary
        self.probe = probe
        # The trigger-agnostic scan (node/backdoor_scan.py): it needs no trigger, so it also catches
        # backdoors no probe was built for. The attested ASR is the larger of the two.
        self.scan = scan
        self.evaluations: list[Evaluation] = []  # what this process attested, in order
        self._did: str | None = None
        # (version, model sha256) -> evaluation, so a broadcast that failed transiently is retried
        # without evaluating again; losing it on restart only costs one evaluation.
        self._cache: dict[tuple[int, str], Evaluation] = {}

    # ----- identity -----
    def did(self) -> str:
        """This key's DID on chain; ClientError unless it is an active member with role 'evaluator'."""
        if self._did is None:
            me = self.submitter.key.public_hex
            try:
                member = self.view.get(f"/whois/{me}")
            except NotFoundOnChain as exc:
                raise ClientError(f"key {self.submitter.key.name} ({me[:16]}…) is not an enrolled member; "
                                  "admit it with an evaluator credential first") from exc
            if member.get("role") != "evaluator":
                raise ClientError(f"key {self.submitter.key.name} ({me[:16]}…) is enrolled as "
                                  f"{member.get('role')!r}, not as an evaluator")
            self._did = str(member["did"])
        return self._did

    def check_role(self) -> None:
        """Refuse to start unless this key is an enrolled evaluator and the task exists."""
        self.did()
        self.view.task(self.task_id)

    # ----- what to do -----
    def pending(self) -> list[VersionRecord]:
        """Version records of the task that are "proposed" and not yet attested by this evaluator, ascending."""
        did = self.did()
        versions = self.view.versions(self.task_id)
        todo = []
        for rec in sorted(versions, key=lambda r: int(r["version"])):
            if rec["status"] != "proposed":
                continue
            atts = self.view.get(f"/attestations/{self.task_id}/{rec['version']}")
            if not any(a["evaluator"] == did for a in atts):
                todo.append(rec)
        return todo

    def evaluate(self, spec: str, version: VersionRecord) -> Evaluation:
        """Fetch a version's model (hash-checked), measure it, and store the metrics JSON.

        A payload that is not a model of `spec` gets the worst measurements (0 accuracy, ASR 1) with
        the reason in its metrics: a version nobody can run must not be promoted. A store that cannot
        deliver the bytes raises StoreError instead (transient: retried, never attested).
        """
        self._check_spec(spec)
        number, sha = int(version["version"]), str(version["sha256"])
        data = self.store.get(version["cid"], sha)
        metrics: dict[str, Any] = {"task_id": self.task_id, "version": number, "model_spec": spec,
                                   "model_cid": version["cid"], "model_sha256": sha, "evaluator": self.did(),
                                   "probe": None if self.probe is None else self.probe.describe()}
        try:
            if len(data) != version["size"]:
                raise PayloadError(f"payload is {len(data)} bytes, the version record says {version['size']}")
            weights = decode_tensors(data)
            canary = canary_accuracy(spec, weights, self.canary)
            # No trigger for the task's data (tabular sets): nothing to probe, ASR 0.
            probe = None if self.probe is None else attack_success_rate(spec, weights, self.canary, self.probe)
        except (PayloadError, ValueError) as exc:  # PayloadError, ModelError and TrainingError are ValueErrors
            log.warning("version %d is not a usable %s model: %s", number, spec, exc)
            accuracy_ppm, asr_ppm = 0, PPM
            metrics["error"] = str(exc)[:500]
        else:
            accuracy_ppm, asr_ppm = canary.accuracy_ppm, 0 if probe is None else probe.asr_ppm
            if self.scan:
                from fedledger.node.backdoor_scan import scan_model

                found = scan_model(spec, weights, self.canary)
                metrics["scan"] = found.describe()
                asr_ppm = max(asr_ppm, found.asr_ppm)
            metrics["canary"] = {"n": canary.n, "correct": canary.correct, "accuracy_ppm": canary.accuracy_ppm,
                                 "loss": round(canary.loss, 6) if math.isfinite(canary.loss) else None}
            metrics["backdoor"] = None if probe is None else {
                "victims": probe.n, "hits": probe.hits, "asr_ppm": probe.asr_ppm, "base_hits": probe.base_hits,
                "base_rate_ppm": probe.base_rate_ppm}
        metrics["canary_accuracy_ppm"], metrics["backdoor_asr_ppm"] = accuracy_ppm, asr_ppm
        raw = metrics_bytes(metrics)
        cid = self.store.put(raw)
        self.store.pin(cid)
        return Evaluation(version=number, model_sha256=sha, canary_accuracy_ppm=accuracy_ppm,
                          backdoor_asr_ppm=asr_ppm, metrics=metrics, metrics_sha256=hashlib.sha256(raw).hexdigest(),
                          metrics_cid=cid)

    def _check_spec(self, spec: str) -> None:
        """ClientError if this evaluator cannot run spec on its canary (its own misconfiguration, not the model's)."""
        from fedledger.sdk.ml.model import ModelError, get_spec  # lazily: loads torch

        try:
            model_spec = get_spec(spec)
        except ModelError as exc:
            raise ClientError(f"task {self.task_id!r} uses a model this evaluator does not know: {exc}") from exc
        if self.canary.X.shape[1] != model_spec.input_dim or int(self.canary.y.max()) >= model_spec.num_classes:
            raise ClientError(f"the canary set ({self.canary.X.shape[1]} features, labels up to "
                              f"{int(self.canary.y.max())}) does not fit model {spec!r}")
        if self.probe is not None and self.probe.target_label >= model_spec.num_classes:
            raise ClientError(f"probe target {self.probe.target_label} is not a class of model {spec!r}")

    def step(self) -> Step:
        """Attest at most one pending version (the oldest); returns what it did."""
        pending = self.pending()
        if not pending:
            return Step(Action.IDLE, "idle")
        version = pending[0]
        number = int(version["version"])
        spec = str(self.view.task(self.task_id)["model_spec"])
        key = (number, str(version["sha256"]))
        evaluation = self._cache.get(key)
        if evaluation is None:
            try:
                evaluation = self.evaluate(spec, version)
            except (StoreError, ProbeError) as exc:
                return Step(Action.EVALUATION_FAILED, f"error: cannot evaluate version {number}: {exc}", version=number)
            self._cache[key] = evaluation
        try:
            self.submitter.send("attest_version", evaluation.body(self.task_id))
        except TxRejectedError as exc:
            if exc.code in _MOOT:
                self._cache.pop(key, None)
                log.info("version %d: %s", number, exc.log)
                return Step(Action.SKIPPED, f"skipped version {number}: {exc.log}", version=number)
            raise
        self._cache.pop(key, None)
        self.evaluations.append(evaluation)
        log.info("attested version %d: canary accuracy %d ppm, backdoor ASR %d ppm (metrics %s)", number,
                 evaluation.canary_accuracy_ppm, evaluation.backdoor_asr_ppm, evaluation.metrics_cid)
        return Step(Action.ATTESTED, f"attested version {number}: accuracy {evaluation.canary_accuracy_ppm} ppm, "
                    f"ASR {evaluation.backdoor_asr_ppm} ppm", version=number)

    async def run(self, poll_s: float = 1.0, on_step: Callable[[Step], None] | None = None,
                  until: Callable[[], bool] | None = None) -> None:
        """Follow the task's events over the websocket and step on each one (and at least every poll_s).

        Runs until `until()` (checked between steps) returns True, or forever; stops with the error
        on a rejection that no retry can fix (e.g. this key lost its evaluator rights).
        """
        await asyncio.to_thread(self.check_role)
        await follow_task(self.submitter.rpc.url, self.task_id, self.step, until or (lambda: False),
                          poll_s=poll_s, on_step=on_step)
