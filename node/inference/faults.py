"""Lying nodes, for experiments and tests: a node that computes something other than the version it claims.

Each fault wraps the loaded model, so the node signs exactly what it returns and only the vote can
catch it (a node returning outputs other than the ones it signs is caught earlier, by the client's
receipt check). The kinds, as issue #15 names them:
- random:  outputs replaced by seeded noise of the same shape;
- perturb: a subtly perturbed model, logits scaled by 1.05 and shifted by 0.02 (a few
  quantization steps, far below what would change most argmaxes);
- stale:   the previous version's model served under the new version's label.
Never used by `fedledger inference serve` unless `--fault` is given, which says so in its log.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from fedledger.abci_app.errors import ConfigError
from fedledger.node.inference.runtime import LoadedModel

__all__ = ["FAULTS", "FaultError", "ModelTransform", "make_fault"]

FAULTS = ("random", "perturb", "stale")

# (version, newly loaded model, the model served before or None) -> the model to serve.
ModelTransform = Callable[[int, LoadedModel, LoadedModel | None], LoadedModel]


class FaultError(ConfigError):
    """An unknown fault kind."""

    error_code = "INFERENCE_FAULT"


class _Faulty(LoadedModel):
    """A LoadedModel sharing another's session and metadata, whose outputs pass through `fault`."""

    def __init__(self, base: LoadedModel, fault: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]],
                 version: str) -> None:
        self.__dict__.update(base.__dict__)
        self.version = version
        self._fault = fault

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The wrapped model's outputs, then the fault."""
        return self._fault(super().run(inputs))


def make_fault(kind: str, seed: int = 0) -> ModelTransform:
    """The transform for one of FAULTS."""
    if kind not in FAULTS:
        raise FaultError(f"unknown fault {kind!r}; one of {list(FAULTS)}")
    rng = np.random.default_rng(seed)

    def noise(out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: rng.normal(size=v.shape).astype(v.dtype) for k, v in out.items()}

    def skew(out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: (v * 1.05 + 0.02).astype(v.dtype) if np.issubdtype(v.dtype, np.floating) else v
                for k, v in out.items()}

    def transform(version: int, model: LoadedModel, previous: LoadedModel | None) -> LoadedModel:
        if kind == "stale":
            base: Any = previous if previous is not None else model
            return _Faulty(base, lambda out: out, str(version))
        return _Faulty(model, noise if kind == "random" else skew, str(version))

    return transform
