"""Central DP for plaintext rounds: clipping bounds each client's influence, the noise has std σC/n."""

from __future__ import annotations

import numpy as np

from fedledger.node.aggregation import WeightedUpdate
from fedledger.node.aggregation.central import central_dp_mean


def _updates(n: int, d: int) -> list[WeightedUpdate]:
    rng = np.random.default_rng(0)
    return [WeightedUpdate(f"t/1/{i:02d}", {"w": rng.normal(0, 5, d).astype(np.float32)}, 10 + i) for i in range(n)]


def test_noise_free_limit_is_the_mean_of_clipped_updates() -> None:
    ups = _updates(4, 50)
    out = central_dp_mean(ups, 1e-9, 1.0, seed=b"\x01" * 32)["w"]
    clipped = [u.tensors["w"] / max(1.0, float(np.linalg.norm(u.tensors["w"]))) for u in ups]
    assert np.allclose(out, np.mean(clipped, axis=0), atol=1e-6)
    assert float(np.linalg.norm(out)) <= 1.0 + 1e-6  # no client moves the mean by more than C/n each


def test_noise_std_is_sigma_clip_over_n_and_seeded_runs_repeat() -> None:
    ups = _updates(5, 20_000)
    a = central_dp_mean(ups, 2.0, 0.5, seed=b"\x02" * 32)["w"]
    b = central_dp_mean(ups, 2.0, 0.5, seed=b"\x02" * 32)["w"]
    assert a.tobytes() == b.tobytes()
    quiet = central_dp_mean(ups, 1e-9, 0.5, seed=b"\x02" * 32)["w"]
    std = float(np.std(a - quiet))
    assert abs(std - 2.0 * 0.5 / 5) < 0.03 * (2.0 * 0.5 / 5)  # 20k samples: ~0.5% sampling error
    fresh = central_dp_mean(ups, 2.0, 0.5)["w"]
    assert fresh.tobytes() != a.tobytes()  # production noise is fresh randomness


def test_next_clip_moves_toward_the_target_quantile() -> None:
    from fedledger.node.aggregation.central import next_clip

    ups = _updates(20, 50)  # norms ~ 5·√50 ≈ 35: every update is above a clip of 1
    adaptive = {"target_quantile": "0.5", "learning_rate": "0.2", "bit_noise": "0.000001"}
    grown = float(next_clip(ups, 1.0, adaptive, 20, seed=b"\x03" * 32))
    assert abs(grown - np.exp(0.2 * 0.5)) < 1e-3  # b̄ = 0: C·exp(−η(0 − ½))
    shrunk = float(next_clip(ups, 100.0, adaptive, 20, seed=b"\x03" * 32))
    assert abs(shrunk - 100 * np.exp(-0.2 * 0.5)) < 1e-2  # b̄ = 1: C·exp(−η(1 − ½))
    assert next_clip(ups, 1.0, adaptive, 20, seed=b"\x03" * 32) == f"{grown:.6f}"
