"""Offline data sets for experiments: load, hold out test and canary sets, split non-IID across clients.

Every split is drawn from a seeded numpy Generator, so the same (dataset, clients, alpha, seed)
gives the same shards. Features are scaled once from the training pool only (digits: pixels / 16;
breast cancer: z-scores with the pool's mean and std), so no test statistic leaks into training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedledger.client.data import ClientData, dirichlet_split
from fedledger.node.probes import TriggerProbe

__all__ = ["DATASET_SPECS", "DatasetError", "FederatedData", "backdoor_probe", "load_federated"]

# dataset -> (model spec, number of classes)
DATASET_SPECS: dict[str, tuple[str, int]] = {"digits": ("mlp-digits", 10), "breast_cancer": ("mlp-breast-cancer", 2)}
_TEST_FRACTION = 0.2
_CANARY_FRACTION = 0.1


class DatasetError(ValueError):
    """An unknown data set, or a split that cannot be made (too many clients for the examples)."""


@dataclass(frozen=True, eq=False)
class FederatedData:
    """The shards of one run: per-client training data, the pooled training data, a test and a canary set."""

    spec: str
    num_classes: int
    clients: tuple[ClientData, ...]
    pooled: ClientData
    test: ClientData
    canary: ClientData  # the evaluators' own held-out set (never trained on, never the reported test set)


def _raw(name: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer, load_digits

    if name == "digits":
        bunch = load_digits()
    elif name == "breast_cancer":
        bunch = load_breast_cancer()
    else:
        raise DatasetError(f"unknown dataset {name!r}; known: {sorted(DATASET_SPECS)}")
    return np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64)


def _take(X: np.ndarray, y: np.ndarray, idx: np.ndarray) -> ClientData:
    return ClientData(X=np.ascontiguousarray(X[idx], dtype=np.float32), y=np.ascontiguousarray(y[idx]))


def load_federated(name: str, clients: int, alpha: float, seed: int) -> FederatedData:
    """Load `name`, hold out 20% test and 10% canary, and split the rest over `clients` with Dirichlet(alpha)."""
    if name not in DATASET_SPECS:
        raise DatasetError(f"unknown dataset {name!r}; known: {sorted(DATASET_SPECS)}")
    X, y = _raw(name)
    rng = np.random.default_rng([seed, 7])
    order = rng.permutation(len(y))
    n_test = int(round(_TEST_FRACTION * len(y)))
    n_canary = int(round(_CANARY_FRACTION * len(y)))
    test_idx, canary_idx, pool_idx = order[:n_test], order[n_test:n_test + n_canary], order[n_test + n_canary:]
    if name == "digits":
        X = X / 16.0
    else:
        mean, std = X[pool_idx].mean(axis=0), X[pool_idx].std(axis=0)
        X = (X - mean) / np.where(std > 0, std, 1.0)
    min_examples = 10
    if clients * min_examples > len(pool_idx):
        raise DatasetError(f"{clients} clients need at least {clients * min_examples} training examples; "
                           f"{name} has {len(pool_idx)} after the test and canary hold-outs")
    parts = dirichlet_split(y[pool_idx], clients, alpha=alpha, seed=seed, min_examples=min_examples)
    spec, num_classes = DATASET_SPECS[name]
    return FederatedData(spec=spec, num_classes=num_classes,
                         clients=tuple(_take(X, y, pool_idx[p]) for p in parts),
                         pooled=_take(X, y, pool_idx), test=_take(X, y, test_idx), canary=_take(X, y, canary_idx))


def backdoor_probe(name: str, target: int) -> TriggerProbe | None:
    """The pixel-pattern trigger for image data sets (the evaluators' probe, fedledger.node.probes); None otherwise."""
    if name != "digits":
        return None
    return TriggerProbe(target_label=target)
