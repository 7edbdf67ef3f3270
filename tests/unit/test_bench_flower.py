"""`fedledger bench aggregation` with Flower installed: the equivalence claims of docs/BENCHMARKS.md run.

test_bench_aggregation.py forces flwr missing so that the fallback is covered; here flwr (the
bench extra, installed by `make test`) is imported for real. The claims backed:
- FedLedger's median and Krum equal Flower's exactly, trimmed mean / Multi-Krum / Bulyan within
  8e-7 (FedLedger sums in float64, Flower in float32), checked both from the bench's own
  `max_abs_diff` and independently, by calling flwr's functions here on the bench's input matrix;
- one complete Flower SecAgg+ round through the bench's driver unmasks the exact sum
  (`flower_round_check`), and the FedLedger SecAgg+ rows are exact, with and without dropouts;
- every Flower ratio field is present and positive.
No timing is asserted.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from fedledger.bench.aggregation import BenchConfig, bench_aggregation
from fedledger.bench.aggregation_flower import FLOWER_RULES, flower_version
from fedledger.bench.aggregation_flower_secagg import flower_round_check
from fedledger.bench.cli import bench

flwr = pytest.importorskip("flwr")  # installed by `make test` (the bench extra); FEDLEDGER_NO_SKIP fails a skip

N, D = 20, 200
MEAN_TOLERANCE = 8e-7  # docs/BENCHMARKS.md, "Aggregation engine": the means' float32-vs-float64 gap


@pytest.fixture(scope="module")
def run() -> tuple[dict[str, Any], dict[str, Any]]:
    outputs: dict[str, Any] = {}
    config = BenchConfig(robust_sizes=((N, D),), secagg_n=(10,), secagg_d=(50,), dropouts=(0.0, 0.3))
    result = bench_aggregation(config, repeats=1, outputs=outputs, flower_clients=2)
    return result, outputs


def test_flower_is_the_pinned_release() -> None:
    assert flower_version() == "1.41.0" == flwr.__version__


def test_robust_rules_equal_flowers_within_the_stated_tolerance(run: tuple[dict[str, Any], dict[str, Any]]) -> None:
    result, _ = run
    assert result["flower"] == {"version": "1.41.0", "status": "available"}
    [size] = result["robust"]
    for name in FLOWER_RULES:
        entry = size["rules"][name]
        assert "best_s" in entry["flower"], (name, entry["flower"])
        assert entry["ratio_flower_over_fedledger"] > 0
        if name in ("median", "krum"):
            assert entry["max_abs_diff"] == 0.0, name  # the same values / the same row picked
        else:
            assert 0.0 <= entry["max_abs_diff"] <= MEAN_TOLERANCE, name
    assert size["rules"]["bulyan"]["flower"]["params"]["num_malicious"] == size["f"]


def test_aggregates_match_flower_called_directly(run: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """Independent of the bench's own comparison: flwr's functions on the very matrix FedLedger aggregated."""
    from flwr.server.strategy import aggregate as agg

    result, outputs = run
    out = outputs["robust"][(N, D)]
    x = out["x"]
    f, m = result["robust"][0]["f"], result["robust"][0]["m"]
    results = [([x[i]], 1) for i in range(N)]
    np.testing.assert_array_equal(out["median"], agg.aggregate_median(results)[0])
    np.testing.assert_array_equal(out["krum"], agg.aggregate_krum(results, f, 0)[0])
    np.testing.assert_allclose(out["trimmed_mean"], agg.aggregate_trimmed_avg(results, f / N)[0],
                               rtol=0, atol=MEAN_TOLERANCE)
    np.testing.assert_allclose(out["multi_krum"], agg.aggregate_krum(results, f, m)[0], rtol=0, atol=MEAN_TOLERANCE)
    bulyan = agg.aggregate_bulyan(list(results), f, agg.aggregate_krum, to_keep=0)[0]
    np.testing.assert_allclose(out["bulyan"], bulyan, rtol=0, atol=MEAN_TOLERANCE)


def test_secagg_rows_carry_flower_figures_and_are_exact(run: tuple[dict[str, Any], dict[str, Any]]) -> None:
    result, _ = run
    assert [e["dropout"] for e in result["secagg"]] == [0.0, 0.3]
    for e in result["secagg"]:
        assert e["fedledger"]["exact"] is True
        peer = e["flower"]
        assert peer["clients_timed"] == 2 and peer["client_s"] > 0 and peer["server"]["best_s"] > 0
        assert peer["num_shares"] == e["fedledger"]["k"] + 1  # Flower shares to k neighbours + itself
        assert peer["bytes_per_client"] > 0
        assert e["ratio_client_flower_over_fedledger"] > 0 and e["ratio_server_flower_over_fedledger"] > 0
    for prim in result["secagg_primitives"]:
        for op in ("mask_expand", "key_agreement", "shamir_split", "shamir_combine"):
            assert prim[op]["ratio_flower_over_fedledger"] > 0
    assert result["flower_round_check"] == {"N": 10, "d": 1000, "dropped": 1, "exact": True}


def test_a_complete_flower_secagg_round_is_exact_at_another_size() -> None:
    assert flower_round_check(n=6, d=64, seed=bytes(range(32))) == {"N": 6, "d": 64, "dropped": 1, "exact": True}


def test_cli_json_with_flower() -> None:
    args = ["aggregation", "--robust-size", "7x50", "--secagg-n", "7", "--secagg-d", "50", "--dropout", "0",
            "--flower-clients", "2", "--repeats", "1", "--json"]
    res = CliRunner().invoke(bench, args)
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["flower"]["status"] == "available"
    rules = report["robust"][0]["rules"]
    assert rules["median"]["max_abs_diff"] == 0.0 and rules["krum"]["max_abs_diff"] == 0.0
    assert all(rules[r]["max_abs_diff"] <= MEAN_TOLERANCE for r in FLOWER_RULES)
    assert report["flower_round_check"]["exact"] is True
    assert report["secagg"][0]["fedledger"]["exact"] is True and report["secagg"][0]["flower"]["client_s"] > 0
