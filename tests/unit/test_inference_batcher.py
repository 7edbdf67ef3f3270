"""Dynamic batching: concurrent requests share runs, get their own rows back, and a swap applies to the next batch."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
import pytest

from fedledger.abci_app.errors import ConfigError
from fedledger.node.inference.batcher import DynamicBatcher
from fedledger.node.inference.errors import InferenceRunError, OIPError
from fedledger.node.inference.holder import ModelHolder, ServedModel
from fedledger.node.inference.runtime import LoadedModel
from tests.inference_node_support import (
    batch_gather_model,
    direct,
    doubled_rows_model,
    gather_model,
    gemm_relu_model,
)


def _load(model_bytes: bytes, version: str = "1") -> LoadedModel:
    return LoadedModel.from_bytes(model_bytes, name="m", version=version)


async def _all(batcher: DynamicBatcher, requests: list[dict[str, np.ndarray]]) -> list[Any]:
    try:
        return await asyncio.gather(*(batcher.submit(r) for r in requests), return_exceptions=True)
    finally:
        await batcher.aclose()


def _rows(n: int, seed: int) -> dict[str, np.ndarray]:
    return {"input": np.random.default_rng(seed).standard_normal((n, 4)).astype(np.float32)}


def test_concurrent_requests_share_runs_and_get_their_own_rows() -> None:
    model = _load(gemm_relu_model())
    batcher = DynamicBatcher(ModelHolder(model), max_batch=64, max_delay_ms=5)
    requests = [_rows(1 + i % 3, i) for i in range(32)]
    results = asyncio.run(_all(batcher, requests))
    assert model.runs < len(requests) and batcher.stats.largest_batch > 1 and batcher.stats.requests == 32
    for request, result in zip(requests, results, strict=True):
        assert result.served.version == "1"
        np.testing.assert_array_equal(result.outputs["logits"], direct(gemm_relu_model(), request)["logits"])


def test_max_batch_caps_the_rows_of_a_run() -> None:
    model = _load(gemm_relu_model())
    seen: list[int] = []
    run = model.run
    model.run = lambda inputs: (seen.append(inputs["input"].shape[0]), run(inputs))[1]  # type: ignore[method-assign]
    batcher = DynamicBatcher(ModelHolder(model), max_batch=8, max_delay_ms=5)
    results = asyncio.run(_all(batcher, [_rows(3, i) for i in range(12)]))
    assert all(not isinstance(r, Exception) for r in results)
    assert max(seen) <= 8 and sum(seen) == 36


def test_a_model_without_a_batch_dim_runs_one_request_at_a_time() -> None:
    model = _load(gather_model())
    batcher = DynamicBatcher(ModelHolder(model), max_delay_ms=5)
    requests = [{"ids": np.full((2, 3), i, np.int64), "shift": np.zeros(2, np.float32)} for i in range(6)]
    results = asyncio.run(_all(batcher, requests))
    assert model.runs == 6 and batcher.stats.largest_batch == 1
    for i, result in enumerate(results):
        assert result.outputs["emb"][0, 0, 0] == 2 * i


def test_a_bad_request_in_a_batch_fails_alone() -> None:
    model = _load(batch_gather_model())
    batcher = DynamicBatcher(ModelHolder(model), max_delay_ms=5)
    requests = [{"ids": np.array([[i, i]], np.int64)} for i in range(5)] + [{"ids": np.array([[99, 0]], np.int64)}]
    results = asyncio.run(_all(batcher, requests))
    assert isinstance(results[-1], InferenceRunError) and "failed to run" in str(results[-1])
    for i, result in enumerate(results[:-1]):
        np.testing.assert_array_equal(result.outputs["out"], [[[2 * i, 2 * i + 1]] * 2])


def test_outputs_that_do_not_keep_the_rows_fall_back_to_single_runs() -> None:
    model = _load(doubled_rows_model())
    assert model.batchable  # by declaration; only the run shows its dim 0 is no batch
    batcher = DynamicBatcher(ModelHolder(model), max_delay_ms=5)
    requests = [{"x": np.full((1, 2), i, np.float32)} for i in range(4)]
    results = asyncio.run(_all(batcher, requests))
    assert batcher.stats.largest_batch == 4 and model.runs == 5  # the stacked run, then each request alone
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result.outputs["m"], np.full((2, 2), i, np.float32))


def test_a_swap_applies_to_the_next_batch_and_in_flight_ones_finish_on_the_old_model() -> None:
    old, new = _load(gemm_relu_model(0), "1"), _load(gemm_relu_model(1), "2")
    holder = ModelHolder(old)
    started, release = threading.Event(), threading.Event()
    run = old.run

    def slow_run(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        started.set()
        release.wait(5)
        return run(inputs)

    old.run = slow_run  # type: ignore[method-assign]
    batcher = DynamicBatcher(holder, max_delay_ms=0)
    x = _rows(2, 7)

    async def scenario() -> tuple[Any, Any]:
        try:
            first = asyncio.ensure_future(batcher.submit(x))
            await asyncio.to_thread(started.wait, 5)
            holder.swap(ServedModel(new, "v2", {}))  # while the old model is still computing
            release.set()
            return await first, await batcher.submit(x)
        finally:
            await batcher.aclose()

    before, after = asyncio.run(scenario())
    assert before.served.version == "1" and after.served.version == "v2"
    np.testing.assert_array_equal(before.outputs["logits"], direct(gemm_relu_model(0), x)["logits"])
    np.testing.assert_array_equal(after.outputs["logits"], direct(gemm_relu_model(1), x)["logits"])


def test_no_model_overload_and_shutdown_are_503() -> None:
    async def scenario() -> None:
        empty = DynamicBatcher(ModelHolder())
        with pytest.raises(OIPError) as info:
            await empty.submit(_rows(1, 0))
        assert info.value.status == 503
        await empty.aclose()
        with pytest.raises(OIPError, match="shutting down"):
            await empty.submit(_rows(1, 0))
        tiny = DynamicBatcher(ModelHolder(_load(gemm_relu_model())), max_queue=1, max_delay_ms=50)
        outcomes = await asyncio.gather(*(tiny.submit(_rows(1, i)) for i in range(4)), return_exceptions=True)
        assert any(isinstance(o, OIPError) and o.status == 503 and "overloaded" in o.message for o in outcomes)
        assert any(not isinstance(o, Exception) for o in outcomes)
        await tiny.aclose()

    asyncio.run(scenario())


def test_a_request_that_no_longer_fits_after_a_swap_gets_its_own_error() -> None:
    holder = ModelHolder(_load(gather_model()))
    batcher = DynamicBatcher(holder)
    results = asyncio.run(_all(batcher, [_rows(1, 0)]))  # gemm-shaped inputs against the gather model
    assert isinstance(results[0], InferenceRunError) and "takes inputs" in str(results[0])


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="max_batch"):
        DynamicBatcher(ModelHolder(), max_batch=0)


def test_a_sequential_client_waits_for_no_window_and_fast_lone_runs_skip_the_thread() -> None:
    model = _load(gemm_relu_model())

    async def sequential(batcher: DynamicBatcher, n: int) -> float:
        start = asyncio.get_running_loop().time()
        try:
            for i in range(n):
                result = await batcher.submit(_rows(1, i))
                assert result.outputs["logits"].shape == (1, 3)
            return asyncio.get_running_loop().time() - start
        finally:
            await batcher.aclose()

    patient = DynamicBatcher(ModelHolder(model), max_delay_ms=200, inline_below_ms=1000)
    assert asyncio.run(sequential(patient, 40)) < 2.0  # 40 windows of 200 ms would take 8 s
    assert patient.stats.inline >= 30  # once measured, the tiny model's lone runs stay on the loop
    threaded = DynamicBatcher(ModelHolder(model), inline_below_ms=0)
    asyncio.run(sequential(threaded, 5))
    assert threaded.stats.inline == 0 and threaded.stats.batches == 5
