"""Shadow-model membership inference (Shokri et al. 2017) against a run's final model.

The attacker holds data from the target's distribution that the target never trained on: here one
half of the run's test set (a seeded split); the other half is the target's non-members at
evaluation, and an equal-sized seeded sample of the pooled training data its members. The
attacker trains `shadows` models of the same spec, each on a random half of its pool ("in") with
the other half held out ("out"), with plain SGD at the run's learning rate and batch size for as
many epochs as the target's training took. For every in/out example it takes the shadow model's
output (sorted softmax probabilities, top 3, and the cross-entropy on the true label) as features,
and fits one logistic-regression attack model on them (Shokri et al. train one per class; a
single model with the label-aware loss as a feature is the common simplification, e.g. Salem et
al. 2019). The attack model then scores the target's members and non-members; the result is the
ROC AUC (`metrics.auc`), 0.5 being a guess.

The shadows train without DP even when the target used DP-SGD: the attacker imitates the task's
model and data, not its privacy mechanism, so a DP target that leaks less scores lower. Every
draw is seeded from the run's seed; the same inputs give the same AUC.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.apps.experiment.datasets import FederatedData
from fedledger.apps.experiment.metrics import auc, logits
from fedledger.node.aggregation.fedavg import apply_delta
from fedledger.sdk.ml.data import ClientData
from fedledger.sdk.ml.model import initial_weights
from fedledger.sdk.ml.train import train_local

__all__ = ["TOP_K", "attack_features", "shadow_mia_auc"]

TOP_K = 3  # sorted softmax probabilities kept as features (fewer when the task has fewer classes)


def attack_features(spec: str, weights: Mapping[str, npt.NDArray[Any]], data: ClientData) -> npt.NDArray[np.float64]:
    """Per example: the model's softmax probabilities sorted high to low (top 3), then the loss on the true label."""
    z = logits(spec, weights, data.X)
    z = z - z.max(axis=1, keepdims=True)  # stable softmax and log-sum-exp
    lse = np.log(np.exp(z).sum(axis=1))
    probs = np.exp(z - lse[:, None])
    top = -np.sort(-probs, axis=1)[:, :min(TOP_K, probs.shape[1])]
    loss = lse - z[np.arange(len(data)), data.y]
    return np.column_stack([top, loss])


def _subset(data: ClientData, idx: npt.NDArray[np.int64]) -> ClientData:
    return ClientData(X=np.ascontiguousarray(data.X[idx]), y=np.ascontiguousarray(data.y[idx]))


def shadow_mia_auc(spec: str, weights: Mapping[str, npt.NDArray[Any]], data: FederatedData, seed: int, *,
                   epochs: int, lr: float, batch_size: int, shadows: int = 3) -> float:
    """The shadow-model attack's ROC AUC separating the target's members from non-members (see the module doc).

    `epochs`, `lr` and `batch_size` are the shadows' training, chosen to match the target's (the
    harness passes rounds × local epochs). Raises ValueError when the test set is too small to
    split into an attacker pool and non-members, or `shadows` is not positive.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if isinstance(shadows, bool) or not isinstance(shadows, int) or shadows < 1:
        raise ValueError(f"shadows must be a positive integer, got {shadows!r}")
    if len(data.test) < 8:
        raise ValueError(f"the test set has {len(data.test)} examples; the shadow attack needs at least 8")
    rng = np.random.default_rng([seed, 13])
    order = rng.permutation(len(data.test))
    half = len(order) // 2
    non_pool, attacker = order[:half], order[half:]
    n = min(len(non_pool), len(data.pooled))
    non_members = _subset(data.test, np.sort(rng.permutation(non_pool)[:n]))
    members = _subset(data.pooled, np.sort(rng.permutation(len(data.pooled))[:n]))
    pool = _subset(data.test, np.sort(attacker))

    feats, labels = [], []
    for k in range(shadows):
        split = np.random.default_rng([seed, 14, k]).permutation(len(pool))
        inside, outside = split[:len(split) // 2], split[len(split) // 2:]
        base = initial_weights(spec, int(np.random.default_rng([seed, 15, k]).integers(0, 2**31 - 1)))
        res = train_local(spec, base, _subset(pool, inside), epochs=epochs, lr=lr, batch_size=batch_size,
                          seed=int(np.random.default_rng([seed, 16, k]).integers(0, 2**31 - 1)))
        shadow = apply_delta(base, res.delta)
        for idx, label in ((inside, 1), (outside, 0)):
            feats.append(attack_features(spec, shadow, _subset(pool, idx)))
            labels.append(np.full(len(idx), label, dtype=np.int64))
    # lbfgs on standardized features is deterministic: no random_state is consumed.
    attack = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    attack.fit(np.concatenate(feats), np.concatenate(labels))
    score_m = attack.predict_proba(attack_features(spec, weights, members))[:, 1]
    score_n = attack.predict_proba(attack_features(spec, weights, non_members))[:, 1]
    return auc(np.asarray(score_m, dtype=np.float64), np.asarray(score_n, dtype=np.float64))
