"""Registry of small torch models and conversion between torch weights and numpy tensors."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from fedledger.abci_app.errors import ConfigError
from fedledger.sdk.tensors import Tensors

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


class ModelError(ConfigError):
    """Unknown model spec, or weights that do not fit the model."""

    error_code = "MODEL_SPEC"


@dataclass(frozen=True)
class ModelSpec:
    """A small classifier: input size, hidden layer sizes (ReLU between), class count; optionally a conv body.

    Without `shape` the model is a plain MLP over the flat features. With `shape` (the input's
    layout, channels first: (C, L) for a 1-D series, (C, H, W) for an image; its product is
    input_dim) the flat input is first reshaped to it and passed through one block per entry of
    `conv`: a convolution to that many channels (kernel `kernel`, padded to keep the length), ReLU
    and a max-pool halving each spatial size; the result is flattened into the MLP head. Data stays
    flat (n, input_dim) everywhere else (shards, probes, the evaluator's size check).
    """

    name: str
    input_dim: int
    hidden: tuple[int, ...]
    num_classes: int
    description: str
    shape: tuple[int, ...] = ()
    conv: tuple[int, ...] = ()
    kernel: int = 3

    def __post_init__(self) -> None:
        if self.shape:
            if len(self.shape) not in (2, 3) or math.prod(self.shape) != self.input_dim:
                raise ModelError(f"spec {self.name!r}: shape {self.shape} must be (C, L) or (C, H, W) "
                                 f"with {self.input_dim} elements")
            if not self.conv or self.kernel < 1 or self.kernel % 2 == 0:
                raise ModelError(f"spec {self.name!r}: a shaped input needs conv channels and an odd kernel")
        elif self.conv:
            raise ModelError(f"spec {self.name!r}: conv layers need an input shape")

    def build(self) -> nn.Module:
        """Construct the (randomly initialised) torch module for this spec."""
        layers: list[nn.Module] = []
        width = self.input_dim
        if self.shape:
            # Built before the head, so the MLP-only specs draw their initial weights exactly as before.
            two_d = len(self.shape) == 3
            conv_cls: type[nn.Conv1d] | type[nn.Conv2d] = nn.Conv2d if two_d else nn.Conv1d
            pool_cls: type[nn.MaxPool1d] | type[nn.MaxPool2d] = nn.MaxPool2d if two_d else nn.MaxPool1d
            layers.append(nn.Unflatten(1, self.shape))
            channels, spatial = self.shape[0], list(self.shape[1:])
            for out in self.conv:
                layers += [conv_cls(channels, out, self.kernel, padding=self.kernel // 2), nn.ReLU(), pool_cls(2)]
                channels, spatial = out, [size // 2 for size in spatial]
            layers.append(nn.Flatten(1))
            width = channels * math.prod(spatial)
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
        # Over-parametrised on purpose: enough capacity to memorise small shards, the setting in which
        # membership inference on non-private FedAvg succeeds (the privacy experiments need one).
        ModelSpec("mlp-digits-wide", 64, (256, 256), 10,
                  "Linear(64,256)-ReLU-Linear(256,256)-ReLU-Linear(256,10) for 8x8 digits"),
        ModelSpec("mlp-breast-cancer", 30, (16,), 2, "Linear(30,16)-ReLU-Linear(16,2) for standardized breast cancer"),
        # Sized for CPU: a local epoch over a few hundred examples takes a fraction of a second. Kernel 3
        # rather than 5: under non-IID FedAvg at lr 0.3 the kernel-5 MNIST net collapsed to one class for
        # its first rounds, the kernel-3 one did not (and did as well centrally).
        ModelSpec("cnn-mnist", 784, (), 10, "Conv2d(1,8,3)-ReLU-MaxPool-Conv2d(8,16,3)-ReLU-MaxPool-Linear(784,10) "
                  "for 28x28 MNIST", shape=(1, 28, 28), conv=(8, 16), kernel=3),
        ModelSpec("mlp-mnist-wide", 784, (256, 256), 10,
                  "Linear(784,256)-ReLU-Linear(256,256)-ReLU-Linear(256,10) for 28x28 MNIST (MIA experiments)"),
        ModelSpec("cnn-basic-motions", 600, (), 4, "Conv1d(6,8,3)-ReLU-MaxPool-Conv1d(8,16,3)-ReLU-MaxPool-"
                  "Linear(400,4) for standardized BasicMotions (6 channels x 100 steps)",
                  shape=(6, 100), conv=(8, 16), kernel=3),
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
