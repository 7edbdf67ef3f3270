"""`fedledger bench aggregation` at tiny sizes: report structure, Flower reported unavailable, exact results.

Flower is forced unavailable (CI does not install the bench extra), so these tests run the same
everywhere. FedLedger's aggregates are checked against short float64 reference implementations
written here from the rules' definitions; no timing is asserted.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from fedledger.bench.aggregation import DEFAULT_SEED, BenchConfig, bench_aggregation
from fedledger.bench.aggregation_flower import flower_version, trim_fraction
from fedledger.bench.aggregation_robust import RULES, bench_robust, default_f
from fedledger.bench.aggregation_support import BenchError, client_row, dropout_set, make_updates, measure
from fedledger.bench.cli import bench

N, D = 7, 50
TINY = BenchConfig(robust_sizes=((N, D),), secagg_n=(N,), secagg_d=(D,), dropouts=(0.0, 0.3))


@pytest.fixture
def no_flower(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry makes `import flwr` raise ImportError, as on a machine without the extra.
    monkeypatch.setitem(sys.modules, "flwr", None)


@pytest.fixture
def run(no_flower: None) -> tuple[dict[str, Any], dict[str, Any]]:
    outputs: dict[str, Any] = {}
    result = bench_aggregation(TINY, repeats=2, outputs=outputs)
    return result, outputs


# --- reference implementations (float64, from the definitions) -------------------------------------

def sq_dist(x: np.ndarray) -> np.ndarray:
    x64 = x.astype(np.float64)
    return np.array([[float(np.sum((a - b) ** 2)) for b in x64] for a in x64])


def krum_scores(dist: np.ndarray, rows: list[int], f: int) -> dict[int, float]:
    r = len(rows)
    k = min(max(r - f - 2, 1), r - 1)
    return {i: sum(sorted(dist[i, j] for j in rows if j != i)[:k]) for i in rows}


def ref_bulyan(x: np.ndarray, f: int) -> np.ndarray:
    dist = sq_dist(x)
    remaining = list(range(x.shape[0]))
    picked = []
    for _ in range(x.shape[0] - 2 * f):
        scores = krum_scores(dist, remaining, f) if len(remaining) > 1 else {remaining[0]: 0.0}
        best = min(remaining, key=lambda i: (scores[i], i))
        picked.append(best)
        remaining.remove(best)
    beta = len(picked) - 2 * f
    sel = x[sorted(picked)].astype(np.float64)
    med = np.median(sel, axis=0)
    out = np.empty(x.shape[1])
    for j in range(x.shape[1]):
        m = float(med[j])
        closest = sorted((abs(float(v) - m), float(v)) for v in sel[:, j])[:beta]
        out[j] = sum(v for _, v in closest) / beta
    return out


def ref_geomed_objective(x: np.ndarray, z: np.ndarray) -> float:
    return float(np.linalg.norm(x.astype(np.float64) - z, axis=1).sum())


def ref_weiszfeld(x: np.ndarray) -> np.ndarray:
    x64 = x.astype(np.float64)
    z = x64.mean(axis=0)
    for _ in range(2000):
        w = 1.0 / np.maximum(np.linalg.norm(x64 - z, axis=1), 1e-12)
        z = (w[:, None] * x64).sum(axis=0) / w.sum()
    return np.asarray(z, dtype=np.float64)


def ref_centered_clipping(x: np.ndarray) -> np.ndarray:
    x64 = x.astype(np.float64)
    v = np.median(x64, axis=0)
    tau = float(np.median(np.linalg.norm(x64 - v, axis=1)))
    for _ in range(3):
        u = x64 - v
        norms = np.linalg.norm(u, axis=1)
        scale = np.minimum(1.0, tau / np.maximum(norms, 1e-300))
        v = v + (u * scale[:, None]).mean(axis=0)
    return v


def ref_fltrust(x: np.ndarray, g0: np.ndarray) -> np.ndarray:
    x64, g = x.astype(np.float64), g0.astype(np.float64)
    norms = np.linalg.norm(x64, axis=1)
    trust = np.clip(x64 @ g / (norms * np.linalg.norm(g)), 0.0, 1.0)
    rescaled = x64 * (np.linalg.norm(g) / norms)[:, None]
    return np.asarray((trust[:, None] * rescaled).sum(axis=0) / trust.sum(), dtype=np.float64)


# --- tests -----------------------------------------------------------------------------------------

def test_report_structure_without_flower(run: tuple[dict[str, Any], dict[str, Any]]) -> None:
    result, _ = run
    assert result["benchmark"] == "aggregation"
    assert result["flower"]["version"] is None
    assert result["flower"]["status"].startswith("unavailable")
    assert "pip install -e '.[bench]'" in result["flower"]["status"]
    json.dumps(result)  # JSON-ready: no arrays, no tuples as keys
    [size] = result["robust"]
    assert (size["N"], size["d"], size["f"], size["m"]) == (N, D, 1, N - 1)
    assert set(size["rules"]) == set(RULES)
    for name, entry in size["rules"].items():
        assert len(entry["fedledger"]["runs_s"]) == 2
        assert entry["fedledger"]["best_s"] == min(entry["fedledger"]["runs_s"])
        assert sum(entry["verdicts"].values()) == N
        expected = "unavailable" if name in ("median", "trimmed_mean", "krum", "multi_krum", "bulyan") \
            else "no equivalent in flwr.server.strategy.aggregate"
        assert entry["flower"] == {"status": expected}
        assert "ratio_flower_over_fedledger" not in entry
    assert [e["dropout"] for e in result["secagg"]] == [0.0, 0.3]
    for e in result["secagg"]:
        assert e["flower"] == {"status": "unavailable"}
        assert e["fedledger"]["exact"] is True
    assert result["secagg_primitives"]["status"].startswith("unavailable")
    assert "flower_round_check" not in result
    # The goals name sizes this run did not cover.
    assert {g["status"] for g in result["goals"]} == {"not measured"}
    assert len(result["goals"]) == 5


def test_robust_aggregates_match_references(run: tuple[dict[str, Any], dict[str, Any]]) -> None:
    _, outputs = run
    out = outputs["robust"][(N, D)]
    x = out["x"]
    f = 1
    np.testing.assert_array_equal(x, make_updates(N, D, f, DEFAULT_SEED))
    x64 = x.astype(np.float64)
    np.testing.assert_array_equal(out["median"], np.median(x64, axis=0).astype(np.float32))
    np.testing.assert_allclose(out["trimmed_mean"], np.sort(x64, axis=0)[f:N - f].mean(axis=0), rtol=1e-6)
    dist = sq_dist(x)
    scores = krum_scores(dist, list(range(N)), f)
    best = min(range(N), key=lambda i: (scores[i], i))
    np.testing.assert_array_equal(out["krum"], x[best])
    kept = sorted(range(N), key=lambda i: (scores[i], i))[: N - f]
    np.testing.assert_allclose(out["multi_krum"], x64[kept].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(out["bulyan"], ref_bulyan(x, f), rtol=1e-6)
    ref_z = ref_weiszfeld(x)
    assert ref_geomed_objective(x, out["geomed"]) <= ref_geomed_objective(x, ref_z) * (1 + 1e-6)
    # Near the optimum the objective is flat: Weiszfeld stopped at tol 1e-7 (relative) sits ~1e-4 away.
    np.testing.assert_allclose(out["geomed"], ref_z, atol=2e-3)
    np.testing.assert_allclose(out["centered_clipping"], ref_centered_clipping(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["fltrust"], ref_fltrust(x, out["root_update"]), rtol=1e-5, atol=1e-6)


def test_secagg_totals_are_the_exact_quantized_sums(run: tuple[dict[str, Any], dict[str, Any]]) -> None:
    result, outputs = run
    for entry in result["secagg"]:
        p = entry["dropout"]
        ours = entry["fedledger"]
        out = outputs["secagg"][(N, D, p)]
        gone = dropout_set(DEFAULT_SEED, N, p)
        assert ours["dropped"] == len(gone) == round(p * N)
        survivors = [u for u in range(N) if u not in gone]
        assert list(out["survivors"]) == survivors
        q = out["quantizer"]
        levels = (1 << q.value_bits) - 1
        rows = np.stack([client_row(DEFAULT_SEED, N, D, u) for u in survivors]).astype(np.float64)
        quantized = np.rint((np.clip(rows, -1.0, 1.0) + 1.0) * (levels / 2.0)).astype(np.uint64)
        expected = quantized.sum(axis=0) % (1 << ours["field_bits"])
        np.testing.assert_array_equal(out["total"].astype(np.uint64), expected)
        # Rounding moves each input by at most half a step; the float32 mean adds its own rounding.
        np.testing.assert_allclose(out["mean"], rows.mean(axis=0), rtol=1e-6, atol=1.0 / levels)
        stages = ours["bytes_per_stage"]
        assert set(stages) == {"advertise", "share_keys", "masked_input", "unmask"}
        assert ours["bytes_per_client"] == round(sum(stages.values()))
        assert stages["masked_input"] > 4 * D  # the uint32 vector plus its header
        assert ours["client_s"] == pytest.approx(sum(ours["client_stage_median_s"].values()), abs=1e-5)
        assert ours["k"] == N - 1 and ours["threshold"] == ours["default_threshold"] == (N - 1) // 2 + 1


def test_cli_json_without_flower(no_flower: None) -> None:
    args = ["aggregation", "--robust-size", "7x50", "--secagg-n", "7", "--secagg-d", "50", "--dropout", "0.1",
            "--repeats", "1", "--json"]
    res = CliRunner().invoke(bench, args)
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["flower"]["status"].startswith("unavailable")
    assert [(r["N"], r["d"]) for r in report["robust"]] == [(7, 50)]
    assert [(e["N"], e["d"], e["dropout"]) for e in report["secagg"]] == [(7, 50, 0.1)]
    bad = CliRunner().invoke(bench, ["aggregation", "--robust-size", "7by50"])
    assert bad.exit_code != 0 and "expected NxD" in bad.output


def test_no_flower_flag_is_reported_as_disabled() -> None:
    result = bench_aggregation(TINY, secagg=False, repeats=1, flower=False)
    assert result["flower"] == {"version": None, "status": "disabled (--no-flower)"}
    assert result["secagg"] == []


def test_flower_version_none_when_not_importable(no_flower: None) -> None:
    assert flower_version() is None


def test_trim_fraction_truncates_to_the_trim_count() -> None:
    for n in range(1, 301):
        for trim in range(0, (n + 1) // 2):
            assert int(trim_fraction(trim, n) * n) == trim, (trim, n)


def test_measure_repeats_unless_the_first_run_is_slow() -> None:
    calls: list[int] = []

    def count() -> int:
        calls.append(1)
        return len(calls)

    many = measure(count, 4, single_over_s=1e9)
    assert len(many.runs) == 4 and many.result == 4 and many.best == min(many.runs)
    one = measure(count, 4, single_over_s=-1.0)
    assert len(one.runs) == 1 and one.result == 5
    with pytest.raises(BenchError, match="repeats must be a positive integer"):
        measure(lambda: None, 0)


def test_sizes_too_small_for_bulyan_are_refused() -> None:
    assert default_f(7) == 1 and default_f(100) == 10 and default_f(1000) == 100
    with pytest.raises(BenchError, match="N >= 7"):
        bench_robust(6, 10, DEFAULT_SEED, 1, flower=False)
    with pytest.raises(BenchError, match="seed must be 32 bytes"):
        bench_aggregation(TINY, seed=b"short")
