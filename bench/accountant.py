"""Micro-benchmark of one privacy debit (rdp + compose + ε) against Opacus' RDPAccountant in the same run.

Opacus is a bench-only peer, never a dependency: it is timed when importable. It needs torch,
which the ``train`` extra already installs, so ``pip install --target DIR --no-deps opacus`` and
``PYTHONPATH=DIR`` are enough to make it importable next to FedLedger.
"""

from __future__ import annotations

import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from fedledger.abci_app.accountant import ORDERS, ZERO_RDP, Mechanism, charge, epsilon

__all__ = ["bench_accountant"]

_DELTA = "1e-5"
_RATES = ("0.001", "0.004", "0.01", "0.05", "0.2")
_STEPS = (50, 100, 500, 1000)
# The participant's history before each measured debit: one earlier contribution.
_HISTORY = Mechanism(Decimal("1.3"), Decimal("0.02"), 500)


def _workload(n: int) -> list[Mechanism]:
    """``n`` distinct mechanisms (σ differs in every one, so none hits the A_α cache when run cold)."""
    return [Mechanism(Decimal("0.7") + Decimal(i) / 1000, Decimal(_RATES[i % len(_RATES)]),
                      _STEPS[i % len(_STEPS)]) for i in range(n)]


def _stats(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "mean_ms": round(statistics.fmean(ordered) * 1e3, 4),
        "median_ms": round(ordered[len(ordered) // 2] * 1e3, 4),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1e3, 4),
    }


def _time_each(items: list[Mechanism], run: Callable[[Mechanism], object]) -> list[float]:
    out = []
    for mech in items:
        start = time.perf_counter()
        run(mech)
        out.append(time.perf_counter() - start)
    return out


def _opacus(items: list[Mechanism], stored: tuple[Decimal, ...]) -> dict[str, Any] | None:
    """Opacus' RDPAccountant on the same debits and orders, or None when Opacus is not importable."""
    try:
        import opacus
        from opacus.accountants import RDPAccountant
    except ImportError:
        return None
    alphas = [float(a) for a in ORDERS]
    old = (float(_HISTORY.noise_multiplier), float(_HISTORY.sample_rate), _HISTORY.steps)

    def with_history(mech: Mechanism) -> tuple[float, float]:
        # Opacus keeps a history of mechanisms, not an RDP vector: an ε after a debit recomputes both.
        acc = RDPAccountant()
        acc.history = [old, (float(mech.noise_multiplier), float(mech.sample_rate), mech.steps)]
        eps, order = acc.get_privacy_spent(delta=float(_DELTA), alphas=alphas)
        return float(eps), float(order)

    def single(mech: Mechanism) -> object:
        acc = RDPAccountant()
        acc.history = [(float(mech.noise_multiplier), float(mech.sample_rate), mech.steps)]
        return acc.get_privacy_spent(delta=float(_DELTA), alphas=alphas)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "optimal order is the largest alpha" for some rows
        with_history(items[0])
        times = _time_each(items, with_history)
        single_times = _time_each(items, single)
        worst = 0.0
        for mech in items:
            ref = with_history(mech)[0]
            ours = float(epsilon(charge(stored, mech, _DELTA).rdp, _DELTA)[0])
            worst = max(worst, abs(ours - ref) / ref)
    return {
        "version": opacus.__version__,
        "debit": _stats(times),
        "single_mechanism": _stats(single_times),
        "max_rel_diff_epsilon": worst,
    }


def bench_accountant(debits: int = 200) -> dict[str, Any]:
    """Time ``debits`` ε debits (cold and warm A_α cache) and, if importable, Opacus' RDPAccountant on the same.

    A debit is what the chain runs per contribution: ``charge(stored, mech, δ)`` = per-order RDP of
    the mechanism, composed with the participant's stored vector, rounded up, converted to ε.
    "cold" clears the per-(σ, q) cache before every debit (each mechanism is new); "warm" repeats a
    mechanism already seen (a client contributing with the same settings every round).
    """
    from fedledger.abci_app.accountant.rdp import _per_step

    if debits < 1:
        raise ValueError("debits must be at least 1")
    items = _workload(debits)
    stored = charge(ZERO_RDP, _HISTORY, _DELTA).rdp
    charge(stored, items[0], _DELTA)  # builds the one-time tables (binomials, ln reduction)

    def cold(mech: Mechanism) -> object:
        _per_step.cache_clear()
        return charge(stored, mech, _DELTA)

    def warm(mech: Mechanism) -> object:
        return charge(stored, mech, _DELTA)

    cold_times = _time_each(items, cold)
    warm_times = []
    for mech in items:
        warm(mech)  # untimed: puts this mechanism's A_α in the cache
        warm_times += _time_each([mech], warm)
    result: dict[str, Any] = {
        "debits": debits,
        "orders": len(ORDERS),
        "delta": _DELTA,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "fedledger": {"cold": _stats(cold_times), "warm": _stats(warm_times)},
        "target_ms": 5.0,
        "opacus": _opacus(items, stored),
    }
    peer = result["opacus"]
    if peer is not None:
        ref = peer["debit"]["median_ms"]
        result["ratio_cold_vs_opacus"] = round(result["fedledger"]["cold"]["median_ms"] / ref, 3)
        result["ratio_warm_vs_opacus"] = round(result["fedledger"]["warm"]["median_ms"] / ref, 3)
    return result
