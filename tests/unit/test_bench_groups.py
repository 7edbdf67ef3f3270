"""bench groups: the SecAgg group-size trade-off is computed from real grouped rounds, not made up."""

from __future__ import annotations

from fedledger.bench.groups import bench_groups


def test_small_groups_resist_attackers_that_large_groups_let_through() -> None:
    result = bench_groups(n=30, d=60, byzantine_pct=20, sizes=(2, 15), seed=1)
    small, large = result["by_group_size"]
    assert (small["groups"], large["groups"]) == (15, 2)
    assert small["anonymity_set"] == 2 and large["anonymity_set"] == 15
    assert large["groups_with_attacker"] == 2  # 6 attackers over two groups of 15
    # groups of 2: the median across 15 group means; groups of 15: two means, averaged
    assert small["error_vs_honest_mean"] < 0.7 * result["fedavg_error_vs_honest_mean"]
    assert large["error_vs_honest_mean"] > 0.9 * result["fedavg_error_vs_honest_mean"]
    assert result["plain_robust_error_vs_honest_mean"] <= small["error_vs_honest_mean"]
