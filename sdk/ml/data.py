"""The digits data set, split non-IID across simulated clients, and .npz shards for one client."""

from __future__ import annotations

import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from fedledger.abci_app.errors import ConfigError

__all__ = [
    "ClientData",
    "DataError",
    "dirichlet_split",
    "load_client_data",
    "load_digits_federated",
    "save_client_data",
]

_TEST_FRACTION = 0.2
# Retrying the Dirichlet draw keeps the label skew genuine; the repair step only runs if retries fail.
_MAX_DRAWS = 50


class DataError(ConfigError):
    """Client data is missing, malformed, or cannot be split as requested."""

    error_code = "DATA"


# eq=False: field-wise == on numpy arrays is ambiguous, so identity equality is the honest choice.
@dataclass(frozen=True, eq=False)
class ClientData:
    """One client's examples: features X (n, d) float32 and integer labels y (n,) int64."""

    X: npt.NDArray[np.float32]
    y: npt.NDArray[np.int64]

    def __post_init__(self) -> None:
        if not isinstance(self.X, np.ndarray) or self.X.dtype != np.float32 or self.X.ndim != 2:
            raise DataError(f"X must be a 2-D float32 array, got {_describe(self.X)}")
        if not isinstance(self.y, np.ndarray) or self.y.dtype != np.int64 or self.y.ndim != 1:
            raise DataError(f"y must be a 1-D int64 array, got {_describe(self.y)}")
        if self.X.shape[0] != self.y.shape[0]:
            raise DataError(f"X has {self.X.shape[0]} rows but y has {self.y.shape[0]} labels")
        if not np.isfinite(self.X).all():
            raise DataError("X contains NaN or infinite values")
        if self.y.size and int(self.y.min()) < 0:
            raise DataError("y contains negative labels")

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def num_examples(self) -> int:
        """Number of examples in this shard."""
        return len(self)


def _describe(value: object) -> str:
    """Short description of an array-ish value for error messages."""
    if isinstance(value, np.ndarray):
        return f"array dtype={value.dtype} shape={value.shape}"
    return type(value).__name__


def dirichlet_split(
    labels: npt.NDArray[np.int64],
    num_clients: int,
    alpha: float = 0.5,
    seed: int = 0,
    min_examples: int = 10,
) -> list[npt.NDArray[np.int64]]:
    """Partition indices 0..len(labels)-1 across clients with per-class Dirichlet(alpha) proportions.

    Every index lands in exactly one client; each client gets at least min_examples indices.
    Smaller alpha means more label skew. Deterministic for a given seed.
    """
    if num_clients < 1:
        raise DataError(f"num_clients must be >= 1, got {num_clients}")
    if not alpha > 0 or not np.isfinite(alpha):
        raise DataError(f"alpha must be a positive finite number, got {alpha}")
    if min_examples < 0:
        raise DataError(f"min_examples must be >= 0, got {min_examples}")
    n = int(labels.shape[0])
    if num_clients * min_examples > n:
        raise DataError(
            f"cannot give {num_clients} clients at least {min_examples} examples each from {n} examples"
        )
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    parts: list[list[int]] = []
    for _ in range(_MAX_DRAWS):
        parts = [[] for _ in range(num_clients)]
        for cls in classes:
            idx = rng.permutation(np.flatnonzero(labels == cls))
            props = rng.dirichlet(np.full(num_clients, alpha))
            cuts = (np.cumsum(props)[:-1] * len(idx)).astype(np.int64)
            for client, chunk in enumerate(np.split(idx, cuts)):
                parts[client].extend(int(i) for i in chunk)
        if min(len(p) for p in parts) >= min_examples:
            break
    else:
        # Rare (many clients, tiny alpha): top up the smallest clients from the largest one.
        while True:
            sizes = [len(p) for p in parts]
            small = int(np.argmin(sizes))
            if sizes[small] >= min_examples:
                break
            large = int(np.argmax(sizes))
            take = int(rng.integers(len(parts[large])))
            parts[small].append(parts[large].pop(take))
    return [rng.permutation(np.asarray(sorted(p), dtype=np.int64)) for p in parts]


def load_digits_federated(
    num_clients: int, alpha: float = 0.5, seed: int = 0, min_examples: int = 10
) -> tuple[list[ClientData], ClientData]:
    """Load sklearn's digits (offline), scale to [0, 1], hold out a stratified 20% test split,
    and split the rest non-IID across num_clients with Dirichlet(alpha) label proportions.

    Returns (one ClientData per client, the shared test set). Deterministic for a given seed.
    """
    from sklearn.datasets import load_digits  # imported lazily: the chain side never needs sklearn
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X = (np.asarray(digits.data, dtype=np.float64) / 16.0).astype(np.float32)
    y = np.asarray(digits.target, dtype=np.int64)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=_TEST_FRACTION, stratify=y, random_state=seed
    )
    shards = dirichlet_split(y_train, num_clients, alpha=alpha, seed=seed, min_examples=min_examples)
    clients = [
        ClientData(X=np.ascontiguousarray(X_train[s]), y=np.ascontiguousarray(y_train[s])) for s in shards
    ]
    return clients, ClientData(X=np.ascontiguousarray(X_test), y=np.ascontiguousarray(y_test))


def save_client_data(path: str | os.PathLike[str], data: ClientData) -> None:
    """Write one client's shard to path as an .npz archive with arrays X and y (no pickles)."""
    target = Path(path)
    # Writing through a file object stops numpy from appending ".npz" to the caller's path.
    with target.open("wb") as fh:
        np.savez_compressed(fh, X=data.X, y=data.y)


def load_client_data(path: str | os.PathLike[str]) -> ClientData:
    """Read a shard written by save_client_data; raise DataError if the file is missing or malformed."""
    source = Path(path)
    if not source.is_file():
        raise DataError(f"client data file not found: {source}")
    try:
        loaded = np.load(source, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        # numpy reports any unrecognised file as possibly pickled data; say what we expected instead.
        raise DataError(f"{source}: not a .npz client data file with arrays X and y "
                        f"(write one with `fedledger data split`)") from exc
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DataError(f"{source}: holds a single .npy array, expected an .npz archive with X and y")
    try:
        with loaded as archive:
            keys = set(archive.files)
            if not {"X", "y"} <= keys:
                raise DataError(f"{source}: expected arrays 'X' and 'y' in the .npz, found {sorted(keys)}")
            X = archive["X"]
            y = archive["y"]
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"{source}: corrupt .npz client data file ({exc})") from exc
    if X.dtype.kind not in "fiu" or y.dtype.kind not in "iu":
        raise DataError(f"{source}: X must be numeric and y integer, got X {X.dtype}, y {y.dtype}")
    try:
        return ClientData(
            X=np.ascontiguousarray(X, dtype=np.float32), y=np.ascontiguousarray(y, dtype=np.int64)
        )
    except DataError as exc:
        raise DataError(f"{source}: {exc}") from exc
