"""Triton-style dynamic batching: concurrent requests stacked along a dynamic dim 0, run once, split back per request.

The batcher runs on the server's event loop and hands model runs to one worker thread of its own,
so the loop keeps parsing and answering requests while onnxruntime computes; only a lone request on
a model measured to run faster than that hand-off (`inline_below_ms`) runs on the loop. A batch takes
the holder's model when it starts: a hot swap applies to the next batch, and a batch already
running finishes on the model it started with (each result says which one that was).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from fedledger.abci_app.errors import ConfigError
from fedledger.node.inference.errors import InferenceRunError, OIPError
from fedledger.node.inference.holder import ModelHolder, ServedModel
from fedledger.node.inference.runtime import LoadedModel

__all__ = ["BatchResult", "BatcherStats", "DEFAULT_INLINE_BELOW_MS", "DEFAULT_MAX_BATCH", "DEFAULT_MAX_DELAY_MS",
           "DEFAULT_MAX_QUEUE", "DynamicBatcher"]

log = logging.getLogger("fedledger.inference")

DEFAULT_MAX_BATCH = 64  # rows per run; past a few dozen rows a CPU run gains little more from stacking
DEFAULT_MAX_DELAY_MS = 2.0  # how long a batch waits for company: small next to an HTTP round trip
DEFAULT_MAX_QUEUE = 1024  # requests waiting beyond this are refused with 503 rather than queued without end
# A lone request whose run is measured to take less than this runs on the event loop itself: handing it to
# the worker thread and back costs about 0.05-0.15 ms, more than such a run, and blocks the loop no shorter.
DEFAULT_INLINE_BELOW_MS = 0.1


@dataclass(frozen=True)
class BatchResult:
    """One request's outputs and the served model (with its version label) that computed them."""

    outputs: dict[str, np.ndarray]
    served: ServedModel


@dataclass
class BatcherStats:
    """Counters since start: requests answered, batches formed, the most requests one batch held."""

    requests: int = 0
    batches: int = 0
    largest_batch: int = 0
    inline: int = 0  # batches of one fast request run on the event loop rather than the worker thread


@dataclass
class _Pending:
    inputs: dict[str, np.ndarray]
    rows: int | None  # the shared dim 0 of every input; None when the request cannot be stacked with others
    key: tuple[tuple[str, str, tuple[int, ...]], ...]  # what must match to stack: names, dtypes, trailing dims
    future: asyncio.Future[BatchResult]


def _pending(inputs: Mapping[str, np.ndarray], future: asyncio.Future[BatchResult]) -> _Pending:
    values = dict(inputs)
    dims = {v.shape[0] if v.ndim else None for v in values.values()}
    rows = dims.pop() if len(dims) == 1 else None
    key = tuple(sorted((n, v.dtype.str, v.shape[1:]) for n, v in values.items()))
    return _Pending(values, rows if rows else None, key, future)


def _stacked(model: LoadedModel, group: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]] | None:
    """Each request's outputs from one run over the stacked inputs, or None when the outputs do not split by row."""
    rows = [next(iter(inputs.values())).shape[0] for inputs in group]
    total = sum(rows)
    batch = {name: np.concatenate([inputs[name] for inputs in group]) for name in group[0]}
    outputs = model.run(batch)
    # A graph whose dim 0 is dynamic but not a batch dim (a reduction over rows, say) cannot be split back.
    if any(value.ndim == 0 or value.shape[0] != total for value in outputs.values()):
        log.warning("model %s %s: outputs do not keep the batch's %d rows; running its requests one by one",
                    model.name, model.version, total)
        return None
    bounds = np.cumsum(rows)[:-1]
    pieces = {name: np.split(value, bounds) for name, value in outputs.items()}
    return [{name: pieces[name][i] for name in outputs} for i in range(len(group))]


def _compute(model: LoadedModel, group: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray] | Exception]:
    """Run a batch on the worker thread; each request gets its outputs or its own error."""
    results: list[dict[str, np.ndarray] | Exception | None] = [None] * len(group)
    runnable: list[int] = []
    for i, inputs in enumerate(group):
        try:
            model.check(inputs)  # a request parsed against the previous model may not fit a swapped-in one
            runnable.append(i)
        except InferenceRunError as exc:
            results[i] = exc
    stacked = None
    if len(runnable) > 1:
        try:
            stacked = _stacked(model, [group[i] for i in runnable])
        except InferenceRunError as exc:
            # One request's bad values (an index out of range, say) must not fail its neighbours: rerun alone.
            log.info("model %s %s: a batch of %d failed (%s); running its requests one by one",
                     model.name, model.version, len(runnable), exc)
    if stacked is not None:
        for i, outputs in zip(runnable, stacked, strict=True):
            results[i] = outputs
    else:
        for i in runnable:
            try:
                results[i] = model.run(group[i])
            except Exception as exc:  # noqa: BLE001 - the error belongs to this request; the worker goes on
                results[i] = exc
    return [r if r is not None else InferenceRunError("request was not run") for r in results]


def _timed_compute(model: LoadedModel, group: list[dict[str, np.ndarray]]
                   ) -> tuple[list[dict[str, np.ndarray] | Exception], float]:
    start = time.perf_counter()
    results = _compute(model, group)
    return results, time.perf_counter() - start


class DynamicBatcher:
    """Queues requests for the holder's model and runs them in batches on one worker thread."""

    def __init__(self, holder: ModelHolder, *, max_batch: int = DEFAULT_MAX_BATCH,
                 max_delay_ms: float = DEFAULT_MAX_DELAY_MS, max_queue: int = DEFAULT_MAX_QUEUE,
                 inline_below_ms: float = DEFAULT_INLINE_BELOW_MS, name: str = "model") -> None:
        if max_batch < 1 or max_queue < 1 or max_delay_ms < 0 or inline_below_ms < 0:
            raise ConfigError(f"batching: max_batch ({max_batch}) and max_queue ({max_queue}) must be at least 1, "
                              f"max_delay_ms ({max_delay_ms}) and inline_below_ms ({inline_below_ms}) not negative")
        self._holder = holder
        self._max_batch = max_batch
        self._max_delay = max_delay_ms / 1000.0
        self._max_queue = max_queue
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"fedledger-infer-{name}")
        self._queue: deque[_Pending] = deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_batch = 1
        self._inline_below = inline_below_ms / 1000.0
        self._cost: tuple[LoadedModel | None, float] = (None, 0.0)  # seconds per row (moving average) of a model
        self._running: list[_Pending] = []  # the batch on the worker now, failed if the batcher is stopped mid-run
        self._closed = False
        self.stats = BatcherStats()

    async def submit(self, inputs: Mapping[str, np.ndarray]) -> BatchResult:
        """The outputs for one request's inputs, computed in some batch; raises that batch's error for it."""
        if self._closed:
            raise OIPError(503, "the inference server is shutting down")
        loop = asyncio.get_running_loop()
        self._ensure_running(loop)
        if len(self._queue) >= self._max_queue:
            raise OIPError(503, f"the node is overloaded ({len(self._queue)} requests queued); retry shortly")
        future: asyncio.Future[BatchResult] = loop.create_future()
        self._queue.append(_pending(inputs, future))
        assert self._wakeup is not None
        self._wakeup.set()
        return await future

    def _ensure_running(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._task is not None and not self._task.done() and self._loop is loop:
            return
        # A new event loop (a test client's, or a restarted server's): requests queued on the old one are lost,
        # and the old loop's task must stop, or two loops would drain one queue.
        old_task, old_loop = self._task, self._loop
        if old_task is not None and old_loop is not None and old_loop is not loop and not old_loop.is_closed():
            old_loop.call_soon_threadsafe(old_task.cancel)
        self._fail_queued(OIPError(503, "the inference server restarted; resend the request"))
        self._loop = loop
        self._wakeup = asyncio.Event()
        self._task = loop.create_task(self._run(), name="fedledger-inference-batcher")

    def _fail_queued(self, error: Exception) -> None:
        while self._queue:
            future = self._queue.popleft().future
            if not future.done() and not future.get_loop().is_closed():
                future.get_loop().call_soon_threadsafe(_settle, future, error)

    async def _run(self) -> None:
        while True:
            try:
                self._running = await self._collect()
                await self._execute(self._running)
                self._running = []
            except asyncio.CancelledError:
                for p in self._running:
                    _settle(p.future, OIPError(503, "the inference server is shutting down"))
                raise
            except Exception as exc:  # the loop must outlive any one batch: answer its requests, take the next
                log.exception("inference batcher: a batch failed outside the model run")
                for p in self._running:
                    _settle(p.future, exc)

    def _should_wait(self, batch: list[_Pending]) -> bool:
        # A lone request after a lone request is a sequential client: nobody is coming, waiting only adds latency.
        return self._max_delay > 0 and (len(batch) > 1 or self._last_batch > 1)

    async def _collect(self) -> list[_Pending]:
        assert self._wakeup is not None
        while True:
            while not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            first = self._queue.popleft()
            if not first.future.done():  # a client that went away while queued
                break
        batch = [first]
        served = self._holder.current
        if served is None or not served.model.batchable or first.rows is None or self._max_batch == 1:
            return batch
        loop = asyncio.get_running_loop()
        rows, deadline = first.rows, loop.time() + self._max_delay
        while rows < self._max_batch:
            if self._queue:
                head = self._queue[0]
                if head.future.done():
                    self._queue.popleft()
                    continue
                if head.rows is None or head.key != first.key or rows + head.rows > self._max_batch:
                    break  # it leads the next batch, keeping arrival order
                batch.append(self._queue.popleft())
                rows += head.rows
                continue
            remaining = deadline - loop.time()
            if remaining <= 0 or not self._should_wait(batch):
                break
            self._wakeup.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._wakeup.wait()
            except TimeoutError:
                break
        return batch

    async def _execute(self, batch: list[_Pending]) -> None:
        # The model is taken now, not when the requests arrived: a swap applies from the next batch on.
        served = self._holder.current
        sequential = len(batch) == 1 and self._last_batch == 1 and not self._queue
        self._last_batch = len(batch)
        if served is None:
            for p in batch:
                _settle(p.future, OIPError(503, "no model is loaded yet"))
            return
        model, group = served.model, [p.inputs for p in batch]
        rows = sum(p.rows or 1 for p in batch)
        cost_model, cost = self._cost
        try:
            if (cost_model is model and cost * rows <= self._inline_below) or (sequential and self._inline_below > 0):
                # A batch that runs faster than a hand-off to the worker thread would take (a tiny model), or
                # a lone request of a sequential client with nothing queued behind it: running it here costs
                # less than the hop, and nobody is kept waiting (a burst arriving meanwhile batches next).
                results, seconds = _timed_compute(model, group)
                self.stats.inline += 1
            else:
                results, seconds = await asyncio.get_running_loop().run_in_executor(
                    self._executor, _timed_compute, model, group)
        except Exception as exc:  # noqa: BLE001 - an unexpected failure goes to every request of the batch
            log.exception("inference batch of %d failed", len(batch))
            results, seconds = [exc] * len(batch), 0.0
        if seconds > 0:
            per_row = seconds / rows
            self._cost = (model, per_row if cost_model is not model else 0.8 * cost + 0.2 * per_row)
        self.stats.requests += len(batch)
        self.stats.batches += 1
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        for p, result in zip(batch, results, strict=True):
            _settle(p.future, result if isinstance(result, Exception) else BatchResult(result, served))

    async def aclose(self) -> None:
        """Stop taking requests, fail those still queued, and let the worker thread go."""
        self._closed = True
        self._fail_queued(OIPError(503, "the inference server is shutting down"))
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await self._task
        self._executor.shutdown(wait=False, cancel_futures=True)


def _settle(future: asyncio.Future[BatchResult], result: BatchResult | Exception) -> None:
    if future.done():  # cancelled: its client disconnected
        return
    if isinstance(result, Exception):
        future.set_exception(result)
    else:
        future.set_result(result)
