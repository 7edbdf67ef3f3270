"""Robust rules under 20% Byzantine clients: each stays near the honest mean where the plain mean does not.

Honest updates are mu + N(0, sigma^2) per coordinate with sigma small against |mu|, so "near" is
measured in units of sigma: the error's RMS per coordinate, |aggregate - honest mean| / sqrt(d).
The bound is 2 sigma. Every attack moves the plain mean well past it (sign flip ~4 sigma,
scaling ~18 sigma, ALIE with z = 20 exactly 4 sigma); each robust rule must stay under it.
"""

from __future__ import annotations

import numpy as np
import pytest

from fedledger.node.robust import ROBUST_RULES, RobustParams

N, F, D, SIGMA = 50, 10, 400, 0.1
BOUND = 2.0  # in sigma units


def _honest(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mu = rng.standard_normal(D)
    honest = mu + SIGMA * rng.standard_normal((N - F, D))
    root = mu + SIGMA * rng.standard_normal(D)  # FLTrust: the server's own honest update
    return honest, root


def _attack(kind: str, honest: np.ndarray, seed: int, spread: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    # What the attackers would have sent honestly (their own noise: spread * sigma).
    own = honest.mean(axis=0) + spread * SIGMA * rng.standard_normal((F, D))
    if kind == "sign_flip":
        return -own
    if kind == "scaling":
        return 10.0 * own
    if kind == "alie":
        # "A little is enough" (Baruch et al. 2019): every attacker sends mean - z * std per coordinate.
        z = 20.0
        return np.repeat((honest.mean(axis=0) - z * honest.std(axis=0))[None, :], F, axis=0)
    raise AssertionError(kind)


def _error(aggregate: np.ndarray, honest_mean: np.ndarray) -> float:
    return float(np.linalg.norm(aggregate.astype(np.float64) - honest_mean) / np.sqrt(D) / SIGMA)


@pytest.mark.parametrize("kind", ["sign_flip", "scaling", "alie"])
@pytest.mark.parametrize("seed", [1, 2])
def test_robust_rules_resist_twenty_percent_attackers(kind: str, seed: int) -> None:
    honest, root = _honest(seed)
    bad = _attack(kind, honest, seed)
    # Attackers sit among the honest rows, not at the front, so no rule profits from row order.
    order = np.random.default_rng(seed + 2).permutation(N)
    rows = np.concatenate([bad, honest])[order].astype(np.float32)
    honest_mean = honest.mean(axis=0)

    plain = _error(rows.astype(np.float64).mean(axis=0), honest_mean)
    assert plain > BOUND, f"plain mean error {plain:.2f} sigma should exceed {BOUND}"

    params = RobustParams(f=F, root_update=root.astype(np.float32))
    for name, rule in ROBUST_RULES.items():
        result = rule(rows, params)
        error = _error(result.aggregate, honest_mean)
        assert error < BOUND, f"{name} under {kind}: error {error:.2f} sigma (plain mean {plain:.2f})"


@pytest.mark.parametrize("kind", ["sign_flip", "scaling"])
def test_selection_rules_flag_the_attackers(kind: str) -> None:
    # Bulyan re-runs Krum on ever fewer clients with k = r - f - 2 neighbours; its last picks compare
    # f-client clusters, so attackers as tight as the honest clients could win one of them. Attackers
    # whose own noise is 3x wider keep every verdict unambiguous.
    honest, root = _honest(7)
    bad = _attack(kind, honest, 7, spread=3.0)
    rows = np.concatenate([bad, honest]).astype(np.float32)
    params = RobustParams(f=F, root_update=root.astype(np.float32))
    for name in ("krum", "multi_krum", "bulyan"):
        verdicts = ROBUST_RULES[name](rows, params).verdicts
        assert all(v == "flagged" for v in verdicts[:F]), name
    for name in ("trimmed_mean", "median"):
        verdicts = ROBUST_RULES[name](rows, params).verdicts
        assert verdicts[:F] == ("trimmed",) * F, name
    geomed = ROBUST_RULES["geomed"](rows, params).verdicts
    assert geomed[:F] == ("flagged",) * F
    clipped = ROBUST_RULES["centered_clipping"](rows, params).verdicts
    assert clipped[:F] == ("trimmed",) * F
    if kind == "sign_flip":
        assert ROBUST_RULES["fltrust"](rows, params).verdicts[:F] == ("flagged",) * F
