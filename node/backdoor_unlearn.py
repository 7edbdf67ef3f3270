"""Unlearning a suspected backdoor with the defender's root data (Neural Cleanse's mitigation, Wang et al. 2019).

When the trigger-agnostic scan (`backdoor_scan.py`) finds a label that a small stamp reaches
from every other class, it hands back that reverse-engineered stamp (mask and pattern). The
defender then trains the candidate model briefly on its own clean root images, half of them
carrying that stamp *with their true labels*, so the shortcut no longer pays. Nothing here
knows the attacker's trigger: only the candidate model, the root data and the stamp the scan
recovered. Deterministic for a given seed; torch loads only inside the function.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.node.aggregation.fedavg import apply_delta
from fedledger.sdk.ml.data import ClientData
from fedledger.sdk.tensors import Tensors

__all__ = ["unlearn"]


def unlearn(spec: str, weights: Mapping[str, npt.NDArray[Any]], root: ClientData, mask: Sequence[float],
            pattern: Sequence[float], *, lr: float, epochs: int, batch_size: int, seed: int,
            fraction: float = 0.5) -> Tensors:
    """The candidate after `epochs` SGD passes over the root data plus stamped, truly labelled copies of a fraction."""
    from fedledger.sdk.ml.train import train_local  # lazily: loads torch

    m = np.asarray(mask, dtype=np.float32).reshape(1, -1)
    p = np.asarray(pattern, dtype=np.float32).reshape(1, -1)
    if m.shape[1] != root.X.shape[1] or p.shape != m.shape:
        raise ValueError(f"the stamp has {m.shape[1]} features, the root data {root.X.shape[1]}")
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(root))[: max(1, int(round(fraction * len(root))))]
    stamped = (1.0 - m) * root.X[pick] + m * p
    data = ClientData(X=np.ascontiguousarray(np.concatenate([root.X, stamped]), dtype=np.float32),
                      y=np.ascontiguousarray(np.concatenate([root.y, root.y[pick]])))
    result = train_local(spec, dict(weights), data, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
    return apply_delta(dict(weights), result.delta)
