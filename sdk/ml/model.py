"""Building the registered torch models and converting between torch weights and numpy tensors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

# The registry lives in the torch-free spec module; it is re-exported here so that every importer of
# fedledger.sdk.ml.model keeps working unchanged.
from fedledger.sdk.ml.layers import Square
from fedledger.sdk.ml.spec import MODEL_SPECS, ModelError, ModelSpec, get_spec
from fedledger.sdk.tensors import Tensors

__all__ = [
    "MODEL_SPECS",
    "ModelError",
    "ModelSpec",
    "Square",
    "build_model",
    "get_spec",
    "get_weights",
    "initial_weights",
    "set_weights",
]


def build_model(spec: str, seed: int) -> nn.Module:
    """Build the model for spec with a deterministic initialisation derived from seed.

    The global torch RNG is forked so that building a model does not disturb the caller's random state.
    """
    model_spec = get_spec(spec)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_spec.build()
    return model.to(dtype=torch.float32)


def get_weights(model: nn.Module) -> Tensors:
    """Return copies of the model's parameters and buffers as named float32 numpy arrays."""
    return {
        name: value.detach().cpu().to(torch.float32).numpy().copy()
        for name, value in sorted(model.state_dict().items())
    }


def set_weights(model: nn.Module, tensors: Mapping[str, npt.NDArray[Any]]) -> None:
    """Load named arrays into the model in place; names and shapes must match the model exactly."""
    state = model.state_dict()
    if sorted(state) != sorted(tensors):
        missing = sorted(set(state) - set(tensors))
        extra = sorted(set(tensors) - set(state))
        raise ModelError(f"weights do not fit the model (missing {missing}, unexpected {extra})")
    with torch.no_grad():
        for name, target in state.items():
            arr = np.asarray(tensors[name], dtype=np.float32)
            if tuple(arr.shape) != tuple(target.shape):
                raise ModelError(
                    f"weight {name!r} has shape {tuple(arr.shape)}, the model expects {tuple(target.shape)}"
                )
            target.copy_(torch.from_numpy(np.ascontiguousarray(arr)))


def initial_weights(spec: str, seed: int) -> Tensors:
    """Return the deterministic initial weights of spec for seed (what a task's genesis model holds)."""
    return get_weights(build_model(spec, seed))
