"""`fedledger bench round`: wall time per round, FedLedger's fast mode vs Flower's Ray simulation, same run.

FedLedger's side is the experiment harness (`fast.run_one`, method "fedledger", no attack): DP-SGD
clients, SecAgg+ groups, the task's robust rule, selection and the version lifecycle, on the
in-process chain. Its figure is the harness's own per-round mean (`RunResult.round_s`: the rounds,
without the per-round test evaluation). The config is `FEDLEDGER_CONFIG`, one dict, validated by
`parse_config`. When it refuses a key (e.g. a key of a harness version this checkout lacks), the
bench reports the refusal and still times Flower when the data loads.

Flower's side is flwr 1.41's simulation runtime (`run_simulation`, Ray backend, one CPU per
client actor). Its strategy is plain FedAvg (the `FedAvg` strategy, no DP, no SecAgg, no
robustness). It runs the same model (`mlp-digits`) on the same shards, with the same clients,
round size, rounds, epochs, lr and batch size, and the same training function (`train_local`,
seeded per round and client as the harness seeds it). A round runs from the strategy's
configure_fit to the end of its aggregate_fit. The first round also waits for Ray's actors to
start, so the bench reports the steady rounds (2 onwards) beside the mean of all rounds, and the
whole run_simulation call (Ray's start, timed apart, not included).

Memory: the process's and its waited-for children's max RSS (getrusage), and the peak summed RSS
of the live process tree (this process and every descendant, Ray's raylet and workers included),
sampled every 0.2 s.
"""

from __future__ import annotations

import functools
import logging
import os
import resource
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = ["FEDLEDGER_CONFIG", "bench_round", "flower_available", "ratio", "round_figures", "summarize"]

# The FedLedger run this bench times: the paper's main digits setting (FedLedger's defaults: SecAgg,
# distributed DP, the input screen; 100 of 1,000 emulated clients), for a few rounds.
FEDLEDGER_CONFIG: dict[str, Any] = {
    "name": "bench-round", "dataset": "digits", "clients": 1000, "round_size": 100, "rounds": 3,
    "client_examples": 16, "seeds": [1], "alpha": 0.3, "methods": ["fedledger"], "attacks": ["none"],
    "local_epochs": 3, "lr": 0.3, "batch_size": 16, "dp_mode": "distributed", "noise_multiplier": "2.5",
    "clip_norm": "0.5", "epsilon_budget": "5", "group_size": 100, "secagg_clip": "2.0", "noise_quorum_pct": 70,
    "rule": "fedavg", "byzantine": 20, "screen": True, "screen_min_cosine": 0.0, "max_regression": 0.1,
}
_MIB = 1024 * 1024
_SAMPLE_S = 0.2


def ratio(fedledger_s: float | None, flower_s: float | None) -> float | None:
    """FedLedger's time over Flower's (< 1: FedLedger is faster); None when either is missing or zero."""
    if fedledger_s is None or flower_s is None or flower_s <= 0 or not np.isfinite(fedledger_s):
        return None
    return round(fedledger_s / flower_s, 3)


def round_figures(starts: list[float], ends: list[float]) -> dict[str, Any]:
    """Per-round seconds from each round's start and end stamps; the mean, and the mean from round 2 on."""
    if len(starts) != len(ends):
        raise ValueError(f"{len(starts)} round starts but {len(ends)} ends")
    rounds = [round(e - s, 4) for s, e in zip(starts, ends, strict=True)]
    return {"round_s": rounds,
            "mean_round_s": round(float(np.mean(rounds)), 4) if rounds else None,
            # Round 1 waits for Ray's actors to start; the steady figure leaves it out when it can.
            "steady_round_s": round(float(np.mean(rounds[1:] if len(rounds) > 1 else rounds)), 4) if rounds else None}


def summarize(config: dict[str, Any], fedledger: dict[str, Any], flower: dict[str, Any],
              memory: dict[str, Any]) -> dict[str, Any]:
    """The bench's JSON: both sides, the ratio of their per-round times (Flower's steady rounds), memory."""
    flower_round = flower.get("steady_round_s")
    return {"benchmark": "round", "config": config, "fedledger": fedledger, "flower": flower,
            "ratio_fedledger_over_flower": ratio(fedledger.get("mean_round_s"), flower_round),
            "ratio_basis": "FedLedger's mean round vs Flower's steady rounds (2 onwards; round 1 if only one)",
            "memory": memory}


def flower_available() -> str | None:
    """flwr's version if it and its simulation runtime (Ray) import, else None."""
    try:
        import flwr
        import flwr.simulation  # noqa: F401
        import ray  # noqa: F401
    except ImportError:
        return None
    return str(flwr.__version__)


def _tree_rss() -> int:
    """Summed RSS in bytes of this process and all its live descendants (Ray's raylet and workers)."""
    import psutil

    me = psutil.Process()
    total = 0
    for proc in [me, *me.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.Error:  # exited between the listing and the read
            continue
    return total


@contextmanager
def _peak_tree_rss() -> Iterator[dict[str, int]]:
    """Yields a dict whose "peak" is the largest _tree_rss seen while the block runs (sampled)."""
    peak = {"peak": _tree_rss()}
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(_SAMPLE_S):
            peak["peak"] = max(peak["peak"], _tree_rss())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()
        peak["peak"] = max(peak["peak"], _tree_rss())


def _maxrss_mib(who: int) -> float:
    # Linux reports ru_maxrss in KiB.
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)


@functools.cache
def _data(dataset: str, clients: int, alpha: float, seed: int, client_examples: int) -> Any:
    """The run's FederatedData, built as the harness builds it (cached: Flower's actors load it once each)."""
    from fedledger.apps.experiment.datasets import load_federated

    return load_federated(dataset, clients, alpha, seed, client_examples)


def _fedledger_side(raw: dict[str, Any], log: Callable[[str], None]) -> tuple[dict[str, Any], Any, Any]:
    """Time FedLedger's rounds; returns (figures or the error, the validated config or None, the data or None)."""
    from fedledger.apps.experiment.config import ExperimentConfigError, parse_config
    from fedledger.apps.experiment.datasets import DatasetError
    from fedledger.apps.experiment.fast import run_one

    try:
        cfg = parse_config(raw)
    except ExperimentConfigError as exc:
        return {"error": f"parse_config refused FEDLEDGER_CONFIG: {exc}"}, None, None
    seed = cfg.seeds[0]
    try:
        data = _data(cfg.dataset, cfg.clients, cfg.alpha, seed, cfg.client_examples)
    except DatasetError as exc:
        return {"error": f"cannot build the clients' data: {exc}"}, cfg, None
    log(f"fedledger: {cfg.rounds} rounds, {cfg.round_size} of {cfg.clients} clients, SecAgg groups of "
        f"{cfg.group_size}, input screen {cfg.screen}, {cfg.dp_mode} DP σ={cfg.noise_multiplier}")
    started = time.perf_counter()
    result = run_one(cfg, data, "fedledger", "none", seed)
    total = time.perf_counter() - started
    return {"mean_round_s": round(result.round_s, 4), "run_one_s": round(total, 2),
            "successful_rounds": result.successful_rounds, "accuracy": round(result.accuracy, 4),
            "epsilon": result.epsilon, "max_rss_self_mib": _maxrss_mib(resource.RUSAGE_SELF)}, cfg, data


def _flower_side(cfg: Any, cpus: int | None, log: Callable[[str], None]) -> dict[str, Any]:
    """Run Flower's FedAvg on the same clients in its Ray simulation; per-round stamps from the strategy."""
    version = flower_available()
    if version is None:
        return {"error": "flwr or ray is not importable: pip install -e '.[bench]' (flwr[simulation]==1.41.0)"}
    # Flower warns (twice: its handler and the root's) that run_simulation is deprecated in favour of
    # `flwr run`; that is the point of the comparison, not news to the reader.
    for name in ("flwr", "ray"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import ray
    from flwr.client import ClientApp, NumPyClient
    from flwr.common import Context, FitIns, Parameters, ndarrays_to_parameters
    from flwr.server import ServerApp, ServerAppComponents, ServerConfig
    from flwr.server.strategy import FedAvg
    from flwr.simulation import run_simulation

    from fedledger.apps.experiment.common import derive_int
    from fedledger.node.aggregation.fedavg import apply_delta
    from fedledger.sdk.ml.model import initial_weights
    from fedledger.sdk.ml.train import train_local

    seed = cfg.seeds[0]
    key = (cfg.dataset, cfg.clients, cfg.alpha, seed, cfg.client_examples)
    spec = _data(*key).spec
    init = initial_weights(spec, seed)
    names = list(init)
    epochs, lr, batch = cfg.local_epochs, cfg.lr, cfg.batch_size
    starts: list[float] = []
    ends: list[float] = []

    # Without flwr installed (the bench extra), mypy sees its classes as Any; with it, as real types.
    class Client(NumPyClient):  # type: ignore[misc, unused-ignore]
        def __init__(self, partition: int) -> None:
            self.partition = partition

        def fit(self, parameters: list[np.ndarray],
                config: dict[str, Any]) -> tuple[list[np.ndarray], int, dict[str, Any]]:
            base = dict(zip(names, parameters, strict=True))
            shard = _data(*key).clients[self.partition]  # loaded once per actor process, then cached
            res = train_local(spec, base, shard, epochs=epochs, lr=lr, batch_size=batch,
                              seed=derive_int(seed, "train", int(config["round"]), self.partition))
            new = apply_delta(base, res.delta)
            return [new[n] for n in names], res.num_examples, {}

    def client_fn(context: Context) -> Any:
        return Client(int(context.node_config["partition-id"])).to_client()

    class TimedFedAvg(FedAvg):  # type: ignore[misc, unused-ignore]
        def configure_fit(self, server_round: int, parameters: Parameters, client_manager: Any) -> list[
                tuple[Any, FitIns]]:
            starts.append(time.perf_counter())
            return super().configure_fit(server_round, parameters, client_manager)  # type: ignore[no-any-return, unused-ignore]

        def aggregate_fit(self, server_round: int, results: list[Any], failures: list[Any]) -> Any:
            out = super().aggregate_fit(server_round, results, failures)
            ends.append(time.perf_counter())
            if failures:
                log(f"flower: round {server_round}: {len(failures)} failed clients")
            return out

    strategy = TimedFedAvg(fraction_fit=cfg.round_size / cfg.clients, min_fit_clients=cfg.round_size,
                           min_available_clients=cfg.clients, fraction_evaluate=0.0, min_evaluate_clients=0,
                           initial_parameters=ndarrays_to_parameters([init[n] for n in names]),
                           on_fit_config_fn=lambda rnd: {"round": rnd})

    def server_fn(context: Context) -> Any:
        return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=cfg.rounds))

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    init_args: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR,
                                 "object_store_memory": 512 * _MIB}
    if cpus is not None:
        init_args["num_cpus"] = cpus
    backend: dict[str, Any] = {"client_resources": {"num_cpus": 1, "num_gpus": 0.0}}
    log(f"flower {version}: FedAvg, {cfg.rounds} rounds, {cfg.round_size} of {cfg.clients} clients, Ray simulation")
    started = time.perf_counter()
    with _peak_tree_rss() as peak:
        # Started here, so Ray's own start-up is timed apart (Flower's backend uses a Ray already up); round 1
        # still includes the client actors' start-up, which steady_round_s leaves out.
        owned = not ray.is_initialized()
        if owned:
            ray.init(**init_args)
        cluster: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
        actors = int(cluster.get("CPU", 0))  # one CPU per client actor
        sim_started = time.perf_counter()
        ray_init_s = sim_started - started
        run_simulation(server_app=ServerApp(server_fn=server_fn), client_app=ClientApp(client_fn=client_fn),
                       num_supernodes=cfg.clients, backend_config=backend)
        total = time.perf_counter() - sim_started
    if owned and ray.is_initialized():  # run_simulation leaves Ray up; only the Ray started here is ours to stop
        ray.shutdown()
    if len(ends) != cfg.rounds:
        return {"version": version, "error": f"Flower finished {len(ends)} of {cfg.rounds} rounds"}
    return {"version": version, **round_figures(starts, ends), "total_s": round(total, 2),
            "ray_init_s": round(ray_init_s, 2), "actors": actors,
            "tree_peak_rss_mib": round(peak["peak"] / _MIB, 1)}


def bench_round(overrides: dict[str, Any] | None = None, flower: bool = True, cpus: int | None = None,
                log: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Both sides on FEDLEDGER_CONFIG updated by overrides (an override of None removes the key), then the ratio."""
    raw = {k: v for k, v in {**FEDLEDGER_CONFIG, **(overrides or {})}.items() if v is not None}
    fedledger, cfg, data = _fedledger_side(raw, log)
    if not flower:
        theirs: dict[str, Any] = {"skipped": "--no-flower"}
    elif cfg is None or data is None:
        theirs = {"error": "not run: it needs FedLedger's validated config and data (see fedledger.error)"}
    else:
        theirs = _flower_side(cfg, cpus, log)
    memory = {"self_max_rss_mib": _maxrss_mib(resource.RUSAGE_SELF),
              "children_max_rss_mib": _maxrss_mib(resource.RUSAGE_CHILDREN),
              "ray_tree_peak_rss_mib": theirs.get("tree_peak_rss_mib"),
              "note": "children: the largest waited-for child; ray_tree: peak summed RSS of this process and "
                      "every live descendant (raylet, GCS, workers) during Flower's simulation"}
    return summarize(raw, fedledger, theirs, memory)
