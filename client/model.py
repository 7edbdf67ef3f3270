"""Registry of small torch models and conversion between torch weights and numpy tensors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from fedledger.node.tensors import Tensors

__all__ = [
    "MODEL_SPECS",
    "ModelError",
    "ModelSpec",
    "build_model",
    "get_spec",
    "get_weights",
    "initial_weights",
    "set_weights",
]


class ModelError(ValueError):
    """Unknown model spec, or weights that do not fit the model."""


@dataclass(frozen=True)
class ModelSpec:
    """A small feed-forward classifier: input size, hidden layer sizes (ReLU between), class count."""

    name: str
    input_dim: int
    hidden: tuple[int, ...]
    num_classes: int
    description: str

    def build(self) -> nn.Module:
        """Construct the (randomly initialised) torch module for this spec."""
        layers: list[nn.Module] = []
        width = self.input_dim
        for size in self.hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, self.num_classes))
        return nn.Sequential(*layers)


MODEL_SPECS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("mlp-digits", 64, (64,), 10, "Linear(64,64)-ReLU-Linear(64,10) for 8x8 digits"),
        ModelSpec("linear-digits", 64, (), 10, "logistic regression Linear(64,10) for 8x8 digits"),
        ModelSpec("mlp-breast-cancer", 30, (16,), 2, "Linear(30,16)-ReLU-Linear(16,2) for standardized breast cancer"),
    )
}


def get_spec(spec: str) -> ModelSpec:
    """Return the registered spec called spec, or raise ModelError listing the known names."""
    try:
        return MODEL_SPECS[spec]
    except (KeyError, TypeError):
        known = ", ".join(sorted(MODEL_SPECS))
        raise ModelError(f"unknown model spec {spec!r}; known specs: {known}") from None


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
