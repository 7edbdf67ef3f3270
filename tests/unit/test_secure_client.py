"""The trainer-side pieces of a secure round that need no chain: the public plan and distributed DP."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedledger.client.secure_client import distributed_dp_update
from fedledger.sdk.secure_plan import plan_round

KEYS = [f"{i:064x}" for i in range(1, 8)]
TASK = {"aggregation": {"rule": "median", "byzantine": 1, "secure": {
    "group_size": 2, "clip": "0.5", "threshold_pct": 60, "stage_blocks": 5, "noise_multiplier": "1.2"}}}
RND = {"round": 1, "selected": KEYS, "secagg": {"seed": "ab" * 32}}


@dataclass
class _Trained:
    delta: dict[str, np.ndarray]
    num_examples: int


def test_every_party_derives_the_same_plan_from_the_records() -> None:
    a, b = plan_round(TASK, RND, 10), plan_round(TASK, RND, 10)
    assert [g.members for g in a.groups] == [g.members for g in b.groups]
    assert sorted(i for g in a.groups for i in g.members) == list(range(7))
    assert [len(g.members) for g in a.groups] == [3, 2, 2] or sorted(len(g.members) for g in a.groups) == [2, 2, 3]
    other = plan_round(TASK, {**RND, "secagg": {"seed": "cd" * 32}}, 10)
    assert [g.members for g in other.groups] != [g.members for g in a.groups]
    assert a.group_of(a.index_of(KEYS[3])).setup.dim == 10


def test_distributed_dp_update_clips_adds_a_group_share_of_noise_and_declares_it() -> None:
    delta = {"w": np.full(2000, 1.0, dtype=np.float32)}  # norm ~44.7, far above the clip of 0.5
    up = distributed_dp_update(TASK, RND, KEYS[0], lambda: _Trained(delta, 40))
    plan = plan_round(TASK, RND, 2000)
    g = len(plan.group_of(0).members)
    noise = up.delta["w"] - np.float32(0.5 / np.sqrt(2000))
    # the share's std is σ·C/√g; 2000 samples put the estimate within ~5% of it
    assert abs(float(noise.std()) - 1.2 * 0.5 / np.sqrt(g)) < 0.05 * 1.2 * 0.5 / np.sqrt(g)
    assert up.num_examples == 40
    assert up.dp == {"noise_multiplier": "1.2", "sample_rate": "1", "steps": 1, "clip_norm": "0.5"}


def test_sparse_plan_sends_the_same_shared_coordinates_for_everyone() -> None:
    secure = {**TASK["aggregation"]["secure"], "sparse_ppm": 100_000}
    sparse = {"aggregation": {**TASK["aggregation"], "secure": secure}}
    a, b = plan_round(sparse, RND, 1000), plan_round(sparse, RND, 1000)
    assert a.coords is not None and b.coords is not None and np.array_equal(a.coords, b.coords)
    assert len(a.coords) == 100 and all(g.setup.dim == 100 for g in a.groups)
    x = np.arange(1000, dtype=np.float32)
    back = a.from_wire(a.to_wire(x))
    assert np.array_equal(back[a.coords], x[a.coords]) and np.count_nonzero(back) <= 100
    dense = plan_round(TASK, RND, 1000)
    assert dense.coords is None and dense.to_wire(x) is x
