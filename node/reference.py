"""The round's reference direction: the base model's update on the defender's own clean root data.

FLTrust (Cao et al. 2021) trusts client updates by their direction relative to an update the
server computes itself on a small clean root set. Here the aggregator computes it for every
round from the round's base model, on the evaluators' canary data, and publishes it; trainers
project their clipped updates onto it (`fedledger.node.aggregation.screen`). It is built from
the defender's data and the base model only: nothing about any attack goes in.

torch is imported only inside the function (through fedledger.sdk.ml.train), as in probes.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.sdk.flat import flatten, layout_of
from fedledger.sdk.ml.data import ClientData

__all__ = ["root_update"]


def root_update(spec: str, base: Mapping[str, npt.NDArray[Any]], root: ClientData, *, lr: float,
                batch_size: int, seed: int, epochs: int = 1) -> npt.NDArray[np.float32]:
    """The flattened delta of `epochs` plain SGD passes of spec from base on the root data (deterministic)."""
    from fedledger.sdk.ml.train import train_local  # lazily: loads torch

    result = train_local(spec, dict(base), root, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
    return flatten(result.delta, layout_of(dict(base)))
