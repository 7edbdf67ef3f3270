"""Straightforward reference implementations of the robust rules, written with loops, for the tests.

They follow the papers' definitions and the library's documented conventions (ties, even N),
and share no code with fedledger.node.robust.
"""

from __future__ import annotations

import math

import numpy as np


def ref_median(x: np.ndarray) -> np.ndarray:
    n, d = x.shape
    out = np.empty(d, dtype=np.float32)
    for j in range(d):
        vals = sorted(float(v) for v in x[:, j])
        if n % 2:
            mid = vals[n // 2]
        else:
            mid = (vals[n // 2 - 1] + vals[n // 2]) / 2
        out[j] = mid + 0.0
    return out


def ref_trimmed_mean(x: np.ndarray, t: int) -> np.ndarray:
    n, d = x.shape
    out = np.empty(d, dtype=np.float32)
    for j in range(d):
        vals = sorted(float(v) for v in x[:, j])[t : n - t]
        out[j] = math.fsum(vals) / len(vals) + 0.0
    return out


def ref_outside_counts(x: np.ndarray, t: int) -> list[int]:
    """Per client: coordinates where its value lies strictly outside [t-th smallest, t-th largest]."""
    n, d = x.shape
    counts = [0] * n
    for j in range(d):
        vals = sorted(float(v) for v in x[:, j])
        lo, hi = vals[t], vals[n - 1 - t]
        for i in range(n):
            if float(x[i, j]) < lo or float(x[i, j]) > hi:
                counts[i] += 1
    return counts


def ref_sq_distances(x: np.ndarray) -> np.ndarray:
    n = x.shape[0]
    x64 = x.astype(np.float64)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            diff = x64[i] - x64[j]
            out[i, j] = math.fsum(diff * diff)
    return out


def ref_krum_scores(dist: np.ndarray, f: int, rows: list[int]) -> dict[int, float]:
    """Krum scores on the set `rows`: sum of the k = clamp(r - f - 2, 1, r - 1) smallest distances to others."""
    r = len(rows)
    k = min(max(r - f - 2, 1), r - 1)
    scores = {}
    for i in rows:
        near = sorted(float(dist[i, j]) for j in rows if j != i)
        scores[i] = math.fsum(near[:k])
    return scores


def ref_krum(x: np.ndarray, f: int) -> tuple[int, list[float]]:
    dist = ref_sq_distances(x)
    scores = ref_krum_scores(dist, f, list(range(x.shape[0])))
    best = min(scores, key=lambda i: (scores[i], i))
    return best, [scores[i] for i in range(x.shape[0])]


def ref_multi_krum(x: np.ndarray, f: int, m: int) -> tuple[list[int], np.ndarray]:
    dist = ref_sq_distances(x)
    scores = ref_krum_scores(dist, f, list(range(x.shape[0])))
    picked = sorted(sorted(scores, key=lambda i: (scores[i], i))[:m])
    mean = np.array([math.fsum(float(x[i, j]) for i in picked) / m for j in range(x.shape[1])], dtype=np.float32)
    return picked, mean


def ref_bulyan(x: np.ndarray, f: int) -> tuple[list[int], np.ndarray]:
    n, d = x.shape
    dist = ref_sq_distances(x)
    theta, beta = n - 2 * f, n - 4 * f
    remaining = list(range(n))
    picked = []
    for _ in range(theta):
        if len(remaining) == 1:
            best = remaining[0]
        else:
            scores = ref_krum_scores(dist, f, remaining)
            best = min(remaining, key=lambda i: (scores[i], i))
        picked.append(best)
        remaining.remove(best)
    picked.sort()
    out = np.empty(d, dtype=np.float32)
    for j in range(d):
        vals = sorted(float(x[i, j]) for i in picked)
        k = len(vals)
        m = (vals[(k - 1) // 2] + vals[k // 2]) / 2
        closest = sorted(vals, key=lambda v: (abs(v - m), v))[:beta]
        out[j] = math.fsum(closest) / beta + 0.0
    return picked, out


def ref_geomed(x: np.ndarray, iters: int, eps: float) -> np.ndarray:
    x64 = x.astype(np.float64)
    z = x64.mean(axis=0)
    for _ in range(iters):
        dist = np.sqrt(((x64 - z) ** 2).sum(axis=1))
        w = 1.0 / np.maximum(dist, eps)
        z = (w[:, None] * x64).sum(axis=0) / w.sum()
    return z


def ref_centered_clipping(x: np.ndarray, tau: float, iters: int, start: np.ndarray) -> np.ndarray:
    x64 = x.astype(np.float64)
    v = start.astype(np.float64)
    for _ in range(iters):
        diff = x64 - v
        norms = np.sqrt((diff**2).sum(axis=1))
        scale = np.array([1.0 if nrm <= tau else tau / nrm for nrm in norms])
        v = v + (diff * scale[:, None]).mean(axis=0)
    return v


def ref_fltrust(x: np.ndarray, g0: np.ndarray) -> tuple[np.ndarray, list[float]]:
    x64, g = x.astype(np.float64), g0.astype(np.float64)
    g_norm = math.sqrt(math.fsum(g * g))
    trust, scaled = [], []
    for row in x64:
        norm = math.sqrt(math.fsum(row * row))
        cos = math.fsum(row * g) / (norm * g_norm) if norm > 0 else 0.0
        trust.append(min(max(cos, 0.0), 1.0))
        scaled.append(row * (g_norm / norm) if norm > 0 else row * 0.0)
    total = math.fsum(trust)
    if total == 0:
        return np.zeros(x.shape[1]), trust
    return sum(t * s for t, s in zip(trust, scaled, strict=True)) / total, trust


def ref_cosines(x: np.ndarray, c: np.ndarray) -> list[float]:
    c64 = c.astype(np.float64)
    c_norm = math.sqrt(math.fsum(c64 * c64))
    out = []
    for row in x.astype(np.float64):
        norm = math.sqrt(math.fsum(row * row))
        out.append(math.fsum(row * c64) / (norm * c_norm) if norm > 0 and c_norm > 0 else 0.0)
    return out
