"""Where emulated clients train: the seam between the harness and its simulation engine.

The harness hands a round's local training to a `TrainPool` as a list of `TrainJob`s and gets the
results back in the same order. Every job carries its own seed, so a result depends only on the
job, never on which worker ran it or in what order: every engine gives the same bytes, and the
chain's rules and the aggregation downstream do not know which engine ran.

`InlinePool` trains in this process, one job after another. `fedledger.apps.experiment.raypool`
runs the same jobs as Ray tasks, on a local Ray instance or an existing cluster (`--ray-address`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from fedledger.sdk.ml.data import ClientData
from fedledger.sdk.ml.dpsgd import DPConfig
from fedledger.sdk.ml.train import TrainResult, train_local
from fedledger.sdk.tensors import Tensors

__all__ = ["InlinePool", "TrainJob", "TrainPool", "run_job"]


@dataclass(frozen=True, eq=False)
class TrainJob:
    """One client's local training in one round: train_local's arguments, seed included."""

    spec: str
    base: Tensors
    data: ClientData
    epochs: int
    lr: float
    batch_size: int
    seed: int
    dp: DPConfig | None = None


def run_job(job: TrainJob) -> TrainResult:
    """Run one job with train_local (what every engine's worker calls)."""
    return train_local(job.spec, job.base, job.data, epochs=job.epochs, lr=job.lr, batch_size=job.batch_size,
                       seed=job.seed, dp=job.dp)


class TrainPool(Protocol):
    """Runs a round's training jobs; returns one result per job, in the jobs' order."""

    def run(self, jobs: Sequence[TrainJob]) -> list[TrainResult]:
        """Train every job; results in the order of `jobs`."""

    def close(self) -> None:
        """Release the engine's workers (a no-op where there are none)."""


class InlinePool:
    """Trains every job in this process, in order."""

    def run(self, jobs: Sequence[TrainJob]) -> list[TrainResult]:
        """Train every job here, one after another."""
        return [run_job(job) for job in jobs]

    def close(self) -> None:
        """Nothing to release."""
