"""The in-process `fedledger bench …` subcommands at toy size, through the real CLI, against docs/BENCHMARKS.md.

accountant, groups and `evm --no-localnet` need no localnet; each runs here in well under a second
through click's CliRunner with --json, and the test asserts what the docs claim of its output: the
fields and targets, the gas of the policy calls, the group-size table's attacker counts. Never a
speed: those are measurements, not invariants. The localnet subcommands are in
tests/integration/test_bench_localnet.py.
"""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner

from fedledger.bench.cli import bench


def invoke(*args: str) -> Any:
    """Run `fedledger bench <args> --json` in process; the parsed report."""
    res = CliRunner().invoke(bench, [*args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_accountant_reports_cold_and_warm_debits_and_the_target() -> None:
    out = invoke("accountant", "--debits", "12")
    assert out["debits"] == 12 and out["orders"] == 65 and out["delta"] == "1e-5"
    assert out["target_ms"] == 5.0  # the governance goal: ≤ 5 ms per ε debit
    for phase in ("cold", "warm"):
        stats = out["fedledger"][phase]
        assert 0 < stats["median_ms"] <= stats["p95_ms"]
        assert stats["mean_ms"] > 0
    try:
        import opacus  # noqa: F401
    except ImportError:
        assert out["opacus"] is None  # the docs: without Opacus, `"opacus": null`
    else:
        assert out["opacus"]["median_ms"] > 0


def test_groups_table_attacker_counts_and_the_robustness_ordering() -> None:
    # d does not change who sits in which group (the seeded shuffle), so the docs' 100-client table's
    # "groups holding an attacker" column holds at d = 50.
    out = invoke("groups", "--clients", "100", "--dim", "50", "--sizes", "2,5,10,20,50")
    assert out["byzantine"] == 20 and out["rule"] == "median"
    rows = out["by_group_size"]
    assert [(r["group_size"], r["groups"], r["anonymity_set"]) for r in rows] == \
        [(2, 50, 2), (5, 20, 5), (10, 10, 10), (20, 5, 20), (50, 2, 50)]
    assert [r["groups_with_attacker"] for r in rows] == [17, 14, 7, 5, 2]
    errors = [r["error_vs_honest_mean"] for r in rows]
    plain, fedavg = out["plain_robust_error_vs_honest_mean"], out["fedavg_error_vs_honest_mean"]
    # The docs' reading: no SecAgg is most robust, g = 2 keeps most of it, large groups fall back to FedAvg.
    assert plain < errors[0] < errors[1] < fedavg
    assert errors[-1] == fedavg  # two group means: the median of two is their mean, i.e. FedAvg
    assert all(r["secagg_round_s"] > 0 for r in rows)


def test_evm_policy_calls_gas_and_goal_fields() -> None:
    out = invoke("evm", "--no-localnet", "--samples", "4")
    assert out["benchmark"] == "evm" and "localnet" not in out
    calls = out["policy_calls"]
    # docs/BENCHMARKS.md "Embedded EVM": gas 5,842 (admission) / 4,612 (promotion) for the default policies
    assert calls["admission_policy"]["gas"] == 5842
    assert calls["promotion_policy"]["gas"] == 4612
    for name in ("admission_policy", "promotion_policy"):
        assert calls[name]["n"] == 4 and 0 < calls[name]["p50_ms"] <= calls[name]["max_ms"]
    admit = calls["admit_tx_ms"]
    assert admit["with_policy"] > 0 and admit["without_policy"] > 0
    assert calls["goal_ms"] == 5
    assert calls["goal_met"] == (max(calls["admission_policy"]["p50_ms"], calls["promotion_policy"]["p50_ms"]) <= 5)
