"""A `TrainPool` on Ray: a round's training jobs run as Ray tasks, locally or on an existing cluster.

Each job trains for milliseconds, so one Ray task per job would cost more in scheduling than in
training. `RayPool.run` cuts the round into a few contiguous batches per CPU, ships each distinct
base model to the object store once (`ray.put`) rather than once per job, and concatenates the
batches' results back in job order. Every job carries its own seed and the worker trains on one
torch thread, as the harness does in-process, so the deltas are the bytes `InlinePool` gives (on
workers with the same CPU and the same torch build).

Ray is imported only when a `RayPool` is made: `PoolError` and this module load without it.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from fedledger.abci_app.errors import FedLedgerError
from fedledger.apps.experiment.pool import TrainJob, run_job
from fedledger.sdk.ml.train import TrainResult
from fedledger.sdk.tensors import Tensors

__all__ = ["TASKS_PER_CPU", "PoolError", "RayPool", "batch_bounds"]

# Enough batches per CPU that a slow batch does not leave the other CPUs idle at the end of a round,
# few enough that the per-task overhead (a few ms) stays small next to the batch's training.
TASKS_PER_CPU = 4
# A local instance holds one round's base model and results at a time: a small store is plenty and
# keeps Ray from reserving a third of a small machine's memory (its default).
_LOCAL_OBJECT_STORE_BYTES = 512 * 1024 * 1024
_CONNECT_TIMEOUT_S = 3.0
_INSTALL_HINT = "install it with `pip install 'ray==2.55.1'` (or `make install`, which installs the train extra)"


class PoolError(FedLedgerError, RuntimeError):
    """The training engine cannot start or has failed; the message says what to do."""

    error_code = "RAY_POOL"


def batch_bounds(jobs: int, cpus: int) -> list[tuple[int, int]]:
    """Contiguous [start, end) slices covering `jobs` jobs: up to TASKS_PER_CPU per CPU, sizes differing by ≤ 1."""
    if jobs <= 0:
        return []
    tasks = max(1, min(jobs, max(1, cpus) * TASKS_PER_CPU))
    size, extra = divmod(jobs, tasks)
    bounds, start = [], 0
    for t in range(tasks):
        end = start + size + (1 if t < extra else 0)
        bounds.append((start, end))
        start = end
    return bounds


def _train_batch(jobs: list[tuple[int, TrainJob]], *bases: Tensors) -> list[TrainResult]:
    """Ray task body: train each (base index, job without its base) pair on bases[index].

    Ray resolves the base ObjectRefs because they are top-level arguments, and shares one copy per
    worker among the batch's jobs.
    """
    import torch

    # The harness trains on one thread too (train._prepare); several workers share the machine.
    torch.set_num_threads(1)
    return [run_job(replace(job, base=bases[i])) for i, job in jobs]


def _writable(result: TrainResult) -> TrainResult:
    """The result with its delta copied out of Ray's read-only object buffers (callers may update in place)."""
    delta: Tensors = {name: np.array(value) for name, value in result.delta.items()}
    return replace(result, delta=delta)


def _check_reachable(address: str) -> None:
    """Fail fast on a host:port nobody listens on (ray.init would retry for a long while)."""
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise PoolError(f"Ray address {address!r} is not host:port (e.g. 127.0.0.1:6379, as `ray start --head` "
                        "prints it), ray://host:port or auto")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=_CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise PoolError(f"no Ray cluster answers at {address} ({exc.strerror or exc}): start one with "
                        f"`ray start --head --port {port}`, or leave --ray-address out to run Ray locally") from None


class RayPool:
    """Runs a round's jobs as Ray tasks: on a local Ray instance (address None) or the cluster at `address`.

    num_cpus caps a local instance's CPUs (default: all); a cluster's size is its own. A Ray that
    was already initialized in this process is used as it is. close() shuts Ray down only if this
    pool started it.
    """

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise PoolError(f"Ray is not installed: {_INSTALL_HINT}") from None
        self._ray: Any = ray
        self._owned = False
        self._closed = False
        if address is not None and address != "auto":
            _check_reachable(address)
        if not ray.is_initialized():
            # Ray otherwise prints a usage-statistics notice and a FutureWarning about GPU env vars (we
            # ask for no GPUs); a harness run should print neither.
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
            quiet: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.ERROR,
                                     "log_to_driver": False, "configure_logging": True}
            try:
                if address is None:
                    ray.init(num_cpus=num_cpus, object_store_memory=_LOCAL_OBJECT_STORE_BYTES, **quiet)
                else:
                    quiet.pop("include_dashboard")  # a cluster's dashboard is its head's to choose
                    ray.init(address=address, **quiet)
            except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
                where = "a local Ray instance" if address is None else f"the Ray cluster at {address}"
                raise PoolError(f"cannot start {where}: {exc} (check `ray status`"
                                f"{'' if address is None else ' on the head node'}; `ray stop` clears a stale "
                                "local instance)") from None
            self._owned = True
        self._remote: Any = ray.remote(num_cpus=1, max_retries=0)(_train_batch)

    @property
    def cpus(self) -> int:
        """The CPUs Ray reports for the cluster (at least 1)."""
        return max(1, int(self._ray.cluster_resources().get("CPU", 1)))

    def run(self, jobs: Sequence[TrainJob]) -> list[TrainResult]:
        """Train every job on Ray; results in the order of `jobs`, the bytes InlinePool would give."""
        if self._closed:
            raise PoolError("this RayPool is closed: make a new one")
        if not jobs:
            return []
        ray = self._ray
        # One object per distinct base (a round has one); jobs name theirs by index, so no job carries weights.
        index: dict[int, int] = {}
        refs: list[Any] = []
        light: list[tuple[int, TrainJob]] = []
        for job in jobs:
            key = id(job.base)
            if key not in index:
                index[key] = len(refs)
                refs.append(ray.put(job.base))
            light.append((index[key], replace(job, base={})))
        futures = [self._remote.remote(light[a:b], *refs) for a, b in batch_bounds(len(light), self.cpus)]
        try:
            batches = ray.get(futures)
        except ray.exceptions.RayTaskError as exc:
            # The job's own error (TrainingError, DPError, …) is the cause; let the harness see it as usual.
            cause = exc.as_instanceof_cause()
            raise cause from None
        except ray.exceptions.RayError as exc:
            raise PoolError(f"a Ray worker failed: {exc} (check `ray status`; a worker killed for memory "
                            "needs a larger machine or fewer CPUs)") from None
        return [_writable(result) for batch in batches for result in batch]

    def close(self) -> None:
        """Shut Ray down if this pool started it; later run() calls raise PoolError."""
        if self._closed:
            return
        self._closed = True
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()

    def __enter__(self) -> RayPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
