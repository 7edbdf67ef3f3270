"""`fedledger bench aggregation`: the aggregation engine against Flower, same process, same data.

Three parts, each documented in its module:
- robust aggregation at given (N, d) sizes: every FedLedger rule, and Flower's function for the
  five rules Flower has, on one seeded matrix (aggregation_robust);
- SecAgg+ rounds over N x d x dropout: client time, server time and bytes per client, FedLedger's
  protocol (aggregation_secagg) next to Flower's SecAgg+ primitives on the same round shape
  (aggregation_flower_secagg), plus single primitives side by side and one complete small Flower
  round that checks the Flower driver is exact;
- the issue's goals, each marked met, missed or not measured.

Flower is a bench-only extra (``pip install -e '.[bench]'``). Without it the FedLedger side still
runs and every Flower entry says "unavailable". Timing: best of `repeats` runs, one run when the
first exceeds 20 s (aggregation_support).
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fedledger.bench.aggregation_flower import flower_version
from fedledger.bench.aggregation_robust import bench_robust
from fedledger.bench.aggregation_secagg import bench_secagg, round_context
from fedledger.bench.aggregation_support import BenchError, dropout_set, ratio
from fedledger.sdk.secagg import Quantizer, setup_round

__all__ = [
    "DEFAULT_SEED",
    "FULL",
    "QUICK",
    "BenchConfig",
    "bench_aggregation",
    "format_text",
]

DEFAULT_SEED = bytes.fromhex("5eed" * 16)
INSTALL_HINT = "unavailable: flwr is not importable; pip install -e '.[bench]'"


@dataclass(frozen=True)
class BenchConfig:
    """The sizes a run covers: robust (N, d) pairs, and the SecAgg+ grid N x d x dropout fraction."""

    robust_sizes: tuple[tuple[int, int], ...]
    secagg_n: tuple[int, ...]
    secagg_d: tuple[int, ...]
    dropouts: tuple[float, ...]


FULL = BenchConfig(robust_sizes=((100, 10**6), (1000, 10**5)), secagg_n=(100, 500, 1000),
                   secagg_d=(10**5, 10**6), dropouts=(0.0, 0.1, 0.3))
QUICK = BenchConfig(robust_sizes=((20, 10**4),), secagg_n=(20,), secagg_d=(10**4,), dropouts=(0.0, 0.1))


def _machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
            "numpy": np.__version__, "load_avg_1_5_15": [round(v, 2) for v in load] if load else None}


def _secagg_pair(n: int, d: int, dropout: float, seed: bytes, repeats: int, flower: bool, flower_clients: int,
                 threshold: int | None, outputs: dict[str, Any] | None, cache: dict[Any, Any]) -> dict[str, Any]:
    ours = bench_secagg(n, d, dropout, seed, repeats, threshold=threshold, outputs=outputs)
    entry: dict[str, Any] = {"N": n, "d": d, "dropout": dropout, "fedledger": ours}
    if "status" in ours:
        entry["flower"] = {"status": "not run: the round is not recoverable"}
    elif not flower:
        entry["flower"] = {"status": "unavailable"}
    else:
        from fedledger.bench.aggregation_flower_secagg import flower_secagg

        quantizer = Quantizer.for_field(ours["clip"], n, 32)
        setup = setup_round(round_context(seed, n, dropout), range(n), d, quantizer.field_bits,
                            threshold=ours["threshold"])
        peer = flower_secagg(setup, quantizer, dropout_set(seed, n, dropout), seed, repeats, clients=flower_clients,
                             cache=cache)
        entry["flower"] = peer
        entry["ratio_client_flower_over_fedledger"] = ratio(peer["client_s"], ours["client_s"])
        entry["ratio_server_flower_over_fedledger"] = ratio(peer["server"]["best_s"], ours["server"]["best_s"])
    return entry


def _goal(name: str, measured: float | None, limit: float, *, at_least: bool = False) -> dict[str, Any]:
    if measured is None:
        return {"goal": name, "measured": None, "status": "not measured"}
    met = measured >= limit if at_least else measured <= limit
    return {"goal": name, "measured": measured, "status": "met" if met else "missed"}


def _goals(robust: list[dict[str, Any]], secagg: list[dict[str, Any]]) -> list[dict[str, Any]]:
    goals = []
    big = next((r for r in robust if (r["N"], r["d"]) == (100, 10**6)), None)
    for rule in ("median", "trimmed_mean", "krum", "multi_krum", "bulyan"):
        value = big["rules"][rule].get("ratio_flower_over_fedledger") if big else None
        goals.append(_goal(f"{rule} >= 5x faster than Flower at N=100, d=1e6 (ratio)", value, 5.0, at_least=True))
    for e in secagg:
        ours = e["fedledger"]
        if (e["N"], e["d"], e["dropout"]) == (100, 10**6, 0.1) and "server" in ours:
            goals.append(_goal("SecAgg+ server <= 2 s at N=100, d=1e6, 10% dropout (s)", ours["server"]["best_s"], 2.0))
            goals.append(_goal("SecAgg+ client <= 0.5 s at N=100, d=1e6, 10% dropout (s)", ours["client_s"], 0.5))
        if (e["N"], e["d"]) == (1000, 10**5) and "server" in ours:
            goals.append(_goal(f"SecAgg+ server <= 5 s at N=1000, d=1e5, {e['dropout']:.0%} dropout (s)",
                               ours["server"]["best_s"], 5.0))
    return goals


def bench_aggregation(
    config: BenchConfig = FULL,
    *,
    robust: bool = True,
    secagg: bool = True,
    repeats: int = 3,
    seed: bytes = DEFAULT_SEED,
    flower: bool = True,
    flower_bulyan: bool = True,
    flower_budget_s: float = 600.0,
    flower_clients: int = 3,
    secagg_threshold: int | None = None,
    log: Callable[[str], None] | None = None,
    outputs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the selected parts and return the JSON-ready report (see the module docstring).

    `outputs`, for tests, receives FedLedger's arrays: outputs["robust"][(N, d)] (rule -> aggregate,
    plus "x") and outputs["secagg"][(N, d, dropout)] (total, mean, quantizer, survivors).
    """
    if len(seed) != 32:
        raise BenchError(f"seed must be 32 bytes, got {len(seed)}")
    say = log or (lambda _m: None)
    version = flower_version() if flower else None
    use_flower = version is not None
    result: dict[str, Any] = {
        "benchmark": "aggregation",
        "machine": _machine(),
        "timing": f"best of {repeats} runs; one run when the first exceeds 20 s; client stage times are "
                  "medians over clients",
        "seed": seed.hex(),
        "flower": {"version": version, "status": "available" if use_flower else
                   ("disabled (--no-flower)" if not flower else INSTALL_HINT)},
    }
    robust_out: list[dict[str, Any]] = []
    if robust:
        for n, d in config.robust_sizes:
            say(f"robust N={n} d={d} ...")
            sink: dict[str, Any] | None = None
            if outputs is not None:
                sink = outputs.setdefault("robust", {}).setdefault((n, d), {})
            robust_out.append(bench_robust(n, d, seed, repeats, flower=use_flower, flower_bulyan=flower_bulyan,
                                           flower_budget_s=flower_budget_s, outputs=sink))
    result["robust"] = robust_out
    secagg_out: list[dict[str, Any]] = []
    primitives: list[dict[str, Any]] = []
    if secagg:
        seen: set[tuple[int, int, int, int]] = set()
        share_cache: dict[Any, Any] = {}  # Flower's share reconstruction, once per (N, dropout)
        for n in config.secagg_n:
            for d in config.secagg_d:
                for p in config.dropouts:
                    say(f"secagg N={n} d={d} dropout={p} ...")
                    sink = None
                    if outputs is not None:
                        sink = outputs.setdefault("secagg", {}).setdefault((n, d, p), {})
                    entry = _secagg_pair(n, d, p, seed, repeats, use_flower, flower_clients, secagg_threshold, sink,
                                         share_cache)
                    secagg_out.append(entry)
                    ours = entry["fedledger"]
                    key = (d, ours["k"], ours["threshold"], ours["field_bits"])
                    if use_flower and key not in seen:
                        from fedledger.bench.aggregation_flower_secagg import flower_primitives

                        seen.add(key)
                        primitives.append(flower_primitives(d, ours["k"], ours["threshold"], ours["field_bits"],
                                                            repeats))
        if use_flower:
            from fedledger.bench.aggregation_flower_secagg import flower_round_check

            result["flower_round_check"] = flower_round_check()
    result["secagg"] = secagg_out
    result["secagg_primitives"] = primitives if use_flower else {"status": result["flower"]["status"]}
    result["goals"] = _goals(robust_out, secagg_out)
    result["machine"]["load_avg_at_end"] = _machine()["load_avg_1_5_15"]
    return result


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1e3:.1f} ms" if value < 1 else f"{value:.2f} s"


def format_text(result: dict[str, Any]) -> str:
    """A short human-readable summary of a bench_aggregation report."""
    lines = [f"flower: {result['flower']['status']} ({result['flower']['version']})",
             f"load average: {result['machine']['load_avg_1_5_15']} -> {result['machine'].get('load_avg_at_end')}"]
    for size in result["robust"]:
        one_pass = _fmt(size["one_pass_sum"]["best_s"])
        lines.append(f"robust N={size['N']} d={size['d']} f={size['f']}: one pass {one_pass}")
        for name, e in size["rules"].items():
            peer = e["flower"].get("best_s")
            shown = _fmt(peer) if peer is not None else e["flower"].get("status", "-")
            lines.append(f"  {name:18s} fedledger {_fmt(e['fedledger']['best_s']):>10s}  flower {shown:>10s}  "
                         f"ratio {e.get('ratio_flower_over_fedledger', '-')}")
    for e in result["secagg"]:
        ours = e["fedledger"]
        head = f"secagg N={e['N']} d={e['d']} dropout={e['dropout']:.0%}"
        if "server" not in ours:
            lines.append(f"{head}: {ours.get('status')}")
            continue
        peer = e["flower"]
        lines.append(f"{head} k={ours['k']} t={ours['threshold']}: client {_fmt(ours['client_s'])} server "
                     f"{_fmt(ours['server']['best_s'])} bytes {ours['bytes_per_client']} exact {ours['exact']} | "
                     f"flower client {_fmt(peer.get('client_s'))} server "
                     f"{_fmt(peer.get('server', {}).get('best_s'))} bytes {peer.get('bytes_per_client', '-')}")
    for g in result["goals"]:
        lines.append(f"goal: {g['goal']}: {g['measured']} -> {g['status']}")
    return "\n".join(lines)
