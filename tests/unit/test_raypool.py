import socket
import sys
import time
from collections.abc import Iterator

import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytest.importorskip("ray")

from fedledger.apps.experiment.datasets import load_federated  # noqa: E402
from fedledger.apps.experiment.pool import InlinePool, TrainJob  # noqa: E402
from fedledger.apps.experiment.raypool import TASKS_PER_CPU, PoolError, RayPool, batch_bounds  # noqa: E402
from fedledger.sdk.ml.dpsgd import DPConfig  # noqa: E402
from fedledger.sdk.ml.model import initial_weights  # noqa: E402
from fedledger.sdk.tensors import encode_tensors  # noqa: E402


@pytest.fixture(scope="module")
def pool() -> Iterator[RayPool]:
    # One local Ray start for the whole module: it is most of the module's time.
    p = RayPool(num_cpus=2)
    try:
        yield p
    finally:
        p.close()


def _jobs() -> list[TrainJob]:
    data = load_federated("digits", 10, 0.3, 1)
    base = initial_weights(data.spec, 1)
    dp = DPConfig(noise_multiplier="1.0", sample_rate="0.1", clip_norm="1.0", steps=5)
    # Plain and DP-SGD jobs mixed, each with its own seed, and a second base: one put per distinct base.
    other = initial_weights(data.spec, 2)
    return [TrainJob(data.spec, other if i == 9 else base, d, 1, 0.1, 16, 1000 + i, dp if i % 2 else None)
            for i, d in enumerate(data.clients)]


def test_ray_deltas_are_inline_bytes(pool: RayPool) -> None:
    jobs = _jobs()
    inline = InlinePool().run(jobs)
    ray = pool.run(jobs)
    assert len(ray) == len(jobs)
    for a, b in zip(inline, ray, strict=True):
        assert encode_tensors(a.delta) == encode_tensors(b.delta)
        assert (a.num_examples, a.loss, a.mechanism, a.clip_norm) == (b.num_examples, b.loss, b.mechanism, b.clip_norm)
        assert all(v.flags.writeable for v in b.delta.values())
    assert pool.run([]) == []


def test_job_error_reaches_the_caller_as_itself(pool: RayPool) -> None:
    from fedledger.sdk.ml.train import TrainingError

    job = _jobs()[0]
    with pytest.raises(TrainingError):
        pool.run([TrainJob(job.spec, job.base, job.data, 1, -1.0, 16, 1)])  # a negative lr is refused


def test_batches_cover_jobs_in_order() -> None:
    assert batch_bounds(0, 2) == []
    assert batch_bounds(3, 2) == [(0, 1), (1, 2), (2, 3)]
    bounds = batch_bounds(100, 2)
    assert len(bounds) == 2 * TASKS_PER_CPU
    assert bounds[0][0] == 0 and bounds[-1][1] == 100
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
    assert max(b - a for a, b in bounds) - min(b - a for a, b in bounds) <= 1


def test_bad_address_is_a_quick_pool_error() -> None:
    with socket.socket() as s:  # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        started = time.perf_counter()
        with pytest.raises(PoolError, match="ray start --head"):
            RayPool(address=f"127.0.0.1:{port}")
    assert time.perf_counter() - started < 10
    with pytest.raises(PoolError, match="host:port"):
        RayPool(address="nowhere")


def test_missing_ray_is_a_pool_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` raise ImportError
    with pytest.raises(PoolError, match="pip install"):
        RayPool()


def test_closed_pool_refuses_work() -> None:
    p = RayPool.__new__(RayPool)  # a closed pool never touches Ray: no second start needed
    p._closed = True
    with pytest.raises(PoolError, match="closed"):
        p.run(_jobs())
