"""Prometheus metrics of the off-chain processes: trainers, aggregators, evaluators, inference nodes.

The metric families live in prometheus_client's process-wide registry, so every library call
records into it (a few dict updates, nothing else); a process serves them only when asked
(`serve_metrics`, or `--metrics-port` / `$FEDLEDGER_METRICS_PORT` on the node commands):

* `fedledger_tx_latency_seconds{type,result}`: broadcast to committed (or refused), per tx type;
  `result` is the tx code's name ("OK" when committed) or "TIMEOUT";
* `fedledger_store_fetch_seconds{result}`: one content-store `get` (with its sha256 check),
  "ok" or the error's class name;
* `fedledger_node_steps_total{service,action}`: every step of an aggregator's or evaluator's loop
  by its action (opened_round, closed_round, proposed_version, attested, …);
* `fedledger_node_round_seconds{service}`: from a round's first step to the step that finished
  it on this node (the aggregator: its first step of the round to proposed_version or
  failed_round; the evaluator: to attested);
* `fedledger_inference_requests_total{model,status}` and `fedledger_inference_seconds{model}`:
  each Open Inference Protocol request of an inference node.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from prometheus_client import REGISTRY, Counter, Histogram, start_http_server

from fedledger.abci_app.errors import Code, ConfigError, Family
from fedledger.ipfs.base import ContentStore
from fedledger.sdk.errors import ClientError
from fedledger.sdk.steps import Action, Step

__all__ = ["ENV_PORT", "INFERENCE_REQUESTS", "INFERENCE_SECONDS", "NODE_ROUND_SECONDS", "NODE_STEPS",
           "STORE_FETCH_SECONDS", "TX_LATENCY_SECONDS", "MetricsConfigError", "RoundClock", "TimedStore",
           "metrics_port_from_env", "observe_step", "observe_tx", "serve_metrics", "timed"]

T = TypeVar("T")


class MetricsConfigError(ClientError, ConfigError):
    """The metrics endpoint cannot be served: a bad port number, or the port is taken."""

    family = Family.CONFIG
    error_code = "METRICS_CONFIG"


ENV_PORT = "FEDLEDGER_METRICS_PORT"

_LATENCY = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)
_FETCH = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 5, 30)
_ROUND = (1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

TX_LATENCY_SECONDS = Histogram("fedledger_tx_latency_seconds", "Tx broadcast to committed (or refused)",
                               ["type", "result"], buckets=_LATENCY)
STORE_FETCH_SECONDS = Histogram("fedledger_store_fetch_seconds", "Content-store fetch with its hash check",
                                ["result"], buckets=_FETCH)
NODE_STEPS = Counter("fedledger_node_steps", "Steps of a node's loop, by service and action", ["service", "action"])
NODE_ROUND_SECONDS = Histogram("fedledger_node_round_seconds", "A round's first step to the step that finished it "
                               "on this node", ["service"], buckets=_ROUND)
INFERENCE_REQUESTS = Counter("fedledger_inference_requests", "Inference requests, by model and HTTP status",
                             ["model", "status"])
INFERENCE_SECONDS = Histogram("fedledger_inference_seconds", "Inference request latency", ["model"],
                              buckets=_FETCH)

# The step that finishes a round on each kind of node (its round's duration ends there).
_FINISHES = {Action.PROPOSED_VERSION, Action.FAILED_ROUND, Action.ATTESTED, Action.COMMITTED_INPUT}


def _code_name(code: int) -> str:
    try:
        return Code(code).name
    except ValueError:
        return f"CODE_{code}"


def observe_tx(tx_type: str, started: float, code: int | None) -> None:
    """Record one tx's latency since `started` (time.monotonic); code 0: committed, None: timed out."""
    result = "TIMEOUT" if code is None else ("OK" if code == 0 else _code_name(code))
    TX_LATENCY_SECONDS.labels(tx_type, result).observe(max(0.0, time.monotonic() - started))


def timed(histogram: Histogram, fn: Callable[[], T], **labels: str) -> T:
    """Run `fn`, observing its duration in `histogram` with `labels` plus result="ok" or the error's class."""
    started = time.monotonic()
    try:
        value = fn()
    except Exception as exc:
        histogram.labels(**labels, result=type(exc).__name__).observe(time.monotonic() - started)
        raise
    histogram.labels(**labels, result="ok").observe(time.monotonic() - started)
    return value


class TimedStore(ContentStore):
    """A content store whose `get` is timed into fedledger_store_fetch_seconds; everything else passes through."""

    def __init__(self, store: ContentStore) -> None:
        self._store = store

    def get(self, cid: str, sha256_hex: str) -> bytes:
        """The store's get (with its sha256 check), timed."""
        return timed(STORE_FETCH_SECONDS, lambda: self._store.get(cid, sha256_hex))

    def put(self, data: bytes) -> str:
        """The store's put."""
        return self._store.put(data)

    def has(self, cid: str) -> bool:
        """The store's has."""
        return self._store.has(cid)

    def pin(self, cid: str) -> None:
        """The store's pin."""
        self._store.pin(cid)

    def describe(self) -> str:
        """The store's description."""
        return self._store.describe()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)  # backend extras (close, api_url, …) stay reachable


class RoundClock:
    """Times rounds from the steps of one node's loop (monotonic clock; off-chain, so that is fine here)."""

    def __init__(self, service: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.service = service
        self.clock = clock
        self._started: dict[int, float] = {}

    def step(self, did: Step) -> None:
        """Count the step; start a round's clock at its first step, stop it at the step that finishes it."""
        NODE_STEPS.labels(self.service, did.action.value).inc()
        if did.round is None:
            return
        now = self.clock()
        start = self._started.setdefault(did.round, now)
        if did.action in _FINISHES:
            NODE_ROUND_SECONDS.labels(self.service).observe(now - start)
            del self._started[did.round]
        while len(self._started) > 1000:  # rounds this node never finished: forget the oldest
            self._started.pop(min(self._started))


def observe_step(clock: RoundClock, on_step: Callable[[Step], None] | None = None) -> Callable[[Step], None]:
    """An on_step callback that records `clock`'s metrics, then calls `on_step`."""
    def both(did: Step) -> None:
        clock.step(did)
        if on_step is not None:
            on_step(did)
    return both


def metrics_port_from_env(env: dict[str, str] | None = None) -> int | None:
    """$FEDLEDGER_METRICS_PORT as a port number, or None when unset; MetricsConfigError when it is not one."""
    text = (os.environ if env is None else env).get(ENV_PORT, "").strip()
    if not text:
        return None
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise MetricsConfigError(f"${ENV_PORT} must be a port number in 1..65535, got {text!r}")
    return int(text)


def serve_metrics(port: int, addr: str = "127.0.0.1") -> None:
    """Serve this process's metrics at http://addr:port/metrics (a daemon thread); MetricsConfigError if taken."""
    try:
        start_http_server(port, addr=addr, registry=REGISTRY)
    except OSError as exc:
        raise MetricsConfigError(f"cannot serve metrics on {addr}:{port}: {exc.strerror or exc}") from exc
