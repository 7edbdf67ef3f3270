"""Message bodies of the lifecycle tx types and their stateless validation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.fields import HEX64, ID_RE, int_field
from fedledger.abci_app.modules.lifecycle.params import PPM

__all__ = ["PARSERS", "AttestVersion"]

_FIELDS = frozenset({"task_id", "version", "canary_accuracy_ppm", "backdoor_asr_ppm", "metrics_sha256"})





@dataclass(frozen=True)
class AttestVersion:
    """An evaluator's measurements of a proposed version on its own canary set and trigger probe."""

    task_id: str
    version: int
    canary_accuracy_ppm: int  # accuracy on the evaluator's canary set, in millionths
    backdoor_asr_ppm: int  # share of triggered non-target canaries classified as the target, in millionths
    metrics_sha256: str  # sha256 of the evaluator's full metrics JSON (kept off chain)

    @staticmethod
    def parse(body: dict[str, Any]) -> AttestVersion:
        """Validate an attest_version body."""
        if set(body) != _FIELDS:
            missing, extra = sorted(_FIELDS - set(body)), sorted(set(body) - _FIELDS)
            raise TxError(Code.INVALID_BODY, f"body fields wrong: missing {missing}, unexpected {extra}")
        task_id, digest = body["task_id"], body["metrics_sha256"]
        if not isinstance(task_id, str) or not ID_RE.match(task_id):
            raise TxError(Code.INVALID_BODY, "task_id must be a task id")
        if not isinstance(digest, str) or not HEX64.match(digest):
            raise TxError(Code.INVALID_BODY, "metrics_sha256 must be 64 lower-case hex digits")
        return AttestVersion(
            task_id=task_id,
            version=int_field(body, "version", 0, 2**40),
            canary_accuracy_ppm=int_field(body, "canary_accuracy_ppm", 0, PPM),
            backdoor_asr_ppm=int_field(body, "backdoor_asr_ppm", 0, PPM),
            metrics_sha256=digest,
        )


PARSERS: dict[str, Callable[[dict[str, Any]], object]] = {"attest_version": AttestVersion.parse}
