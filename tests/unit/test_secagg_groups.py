"""Group-wise secure aggregation: the seeded partition and one exact mean per group."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from fedledger.sdk.secagg import (
    SecAggError,
    group_context,
    group_means,
    partition,
    simulate_grouped_round,
)
from fedledger.sdk.secagg.quantize import Quantizer

SEED = hashlib.sha256(b"block 7").digest()


@pytest.mark.parametrize(("n", "g"), [(1, 1), (5, 10), (10, 5), (11, 5), (14, 5), (100, 7), (101, 10), (1000, 32)])
def test_partition_sizes_cover_and_determinism(n: int, g: int) -> None:
    members = [2 * i + 3 for i in range(n)]
    groups = partition(members, SEED, g)
    assert len(groups) == max(1, n // g)
    flat = [m for grp in groups for m in grp]
    assert sorted(flat) == members  # every member exactly once
    sizes = [len(grp) for grp in groups]
    assert max(sizes) - min(sizes) <= 1
    if n >= g:
        assert min(sizes) >= g and max(sizes) < 2 * g
    assert all(list(grp) == sorted(grp) for grp in groups)
    assert partition(list(reversed(members)), SEED, g) == groups
    if n >= 2 * g:
        assert partition(members, hashlib.sha256(b"other").digest(), g) != groups


def test_partition_bad_input() -> None:
    with pytest.raises(SecAggError, match="group size must be a positive integer"):
        partition([1, 2], SEED, 0)
    with pytest.raises(SecAggError, match="listed twice"):
        partition([1, 1], SEED, 1)


def test_grouped_round_gives_each_groups_exact_mean() -> None:
    rng = np.random.default_rng(0)
    n, d, g = 23, 40, 5
    x = rng.uniform(-1.5, 1.5, (n, d)).astype(np.float32)
    dropped = {4, 9}
    res = simulate_grouped_round(x, 1.0, SEED, g, dropped)
    assert res.groups == partition(list(range(n)), SEED, g)
    assert res.means.shape == (len(res.groups), d) and res.means.dtype == np.float32
    for j, grp in enumerate(res.groups):
        alive = [u for u in grp if u not in dropped]
        assert res.counts[j] == len(alive)
        quant = Quantizer.for_field(1.0, len(grp), 32)
        total = sum(quant.quantize(x[u]).astype(np.uint64) for u in alive)
        assert np.array_equal(res.results[j].aggregate.total.astype(np.uint64), total)
        want = (total.astype(np.float64) / quant.scale - len(alive) * 1.0) / len(alive)
        assert np.array_equal(res.means[j], want.astype(np.float32))
        assert res.results[j].setup.context == group_context(SEED, j)
    # Same seed, same bytes.
    again = simulate_grouped_round(x, 1.0, SEED, g, dropped)
    assert again.means.tobytes() == res.means.tobytes()


def test_group_means_checks() -> None:
    res = simulate_grouped_round(np.zeros((6, 3), dtype=np.float32), 1.0, SEED, 3)
    aggs = [r.aggregate for r in res.results]
    quants = [r.quantizer for r in res.results]
    means, counts = group_means(aggs, quants)
    assert counts.tolist() == [3, 3] and np.allclose(means, 0.0, atol=1e-6)
    with pytest.raises(SecAggError, match="one quantizer per group"):
        group_means(aggs, quants[:1])
