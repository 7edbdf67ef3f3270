"""The registry of model specs (architectures by name), importable without torch."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from fedledger.abci_app.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["MODEL_SPECS", "Activation", "LayerKind", "ModelError", "ModelSpec", "SpecLayer", "get_spec"]

LayerKind = Literal["unflatten", "conv", "relu", "square", "maxpool", "flatten", "linear"]
# The hidden layers' activation: ReLU, or x*x (a polynomial that CKKS evaluates exactly, for encrypted inference).
Activation = Literal["relu", "square"]


class ModelError(ConfigError):
    """Unknown model spec, or weights that do not fit the model."""

    error_code = "MODEL_SPEC"


@dataclass(frozen=True)
class SpecLayer:
    """One entry of the nn.Sequential a spec builds, described without torch.

    index is its position in the Sequential (so its parameters are "<index>.weight" and
    "<index>.bias"); in_size/out_size are channels for a conv and features for a linear layer;
    spatial is 1 or 2 for conv and max-pool layers; shape is the target layout of an unflatten.
    """

    index: int
    kind: LayerKind
    in_size: int = 0
    out_size: int = 0
    spatial: int = 0
    kernel: int = 0
    shape: tuple[int, ...] = ()

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        """The state_dict entries this layer owns, name -> shape (empty for parameter-free layers)."""
        if self.kind == "conv":
            weight = (self.out_size, self.in_size) + (self.kernel,) * self.spatial
        elif self.kind == "linear":
            weight = (self.out_size, self.in_size)
        else:
            return {}
        return {f"{self.index}.weight": weight, f"{self.index}.bias": (self.out_size,)}


@dataclass(frozen=True)
class ModelSpec:
    """A small classifier: input size, hidden layer sizes (ReLU between), class count; optionally a conv body.

    Without `shape` the model is a plain MLP over the flat features. With `shape` (the input's
    layout, channels first: (C, L) for a 1-D series, (C, H, W) for an image; its product is
    input_dim) the flat input is first reshaped to it and passed through one block per entry of
    `conv`: a convolution to that many channels (kernel `kernel`, padded to keep the length), ReLU
    and a max-pool halving each spatial size; the result is flattened into the MLP head. Data stays
    flat (n, input_dim) everywhere else (shards, probes, the evaluator's size check).
    activation "square" replaces the head's ReLUs by x*x (a polynomial model, see fedledger.sdk.he).
    """

    name: str
    input_dim: int
    hidden: tuple[int, ...]
    num_classes: int
    description: str
    shape: tuple[int, ...] = ()
    conv: tuple[int, ...] = ()
    kernel: int = 3
    activation: Activation = "relu"

    def __post_init__(self) -> None:
        if self.activation not in ("relu", "square"):
            raise ModelError(f"spec {self.name!r}: unknown activation {self.activation!r}")
        if self.shape:
            if len(self.shape) not in (2, 3) or math.prod(self.shape) != self.input_dim:
                raise ModelError(f"spec {self.name!r}: shape {self.shape} must be (C, L) or (C, H, W) "
                                 f"with {self.input_dim} elements")
            if not self.conv or self.kernel < 1 or self.kernel % 2 == 0:
                raise ModelError(f"spec {self.name!r}: a shaped input needs conv channels and an odd kernel")
        elif self.conv:
            raise ModelError(f"spec {self.name!r}: conv layers need an input shape")

    def layers(self) -> tuple[SpecLayer, ...]:
        """The Sequential's layers in order: the one plan both `build` and the ONNX exporter follow."""
        plan: list[SpecLayer] = []
        width = self.input_dim
        if self.shape:
            spatial_dims = len(self.shape) - 1
            plan.append(SpecLayer(len(plan), "unflatten", shape=self.shape))
            channels, spatial = self.shape[0], list(self.shape[1:])
            for out in self.conv:
                plan.append(SpecLayer(len(plan), "conv", in_size=channels, out_size=out, spatial=spatial_dims,
                                      kernel=self.kernel))
                plan.append(SpecLayer(len(plan), "relu"))
                plan.append(SpecLayer(len(plan), "maxpool", spatial=spatial_dims))
                channels, spatial = out, [size // 2 for size in spatial]
            plan.append(SpecLayer(len(plan), "flatten"))
            width = channels * math.prod(spatial)
        for size in self.hidden:
            plan.append(SpecLayer(len(plan), "linear", in_size=width, out_size=size))
            plan.append(SpecLayer(len(plan), self.activation))
            width = size
        plan.append(SpecLayer(len(plan), "linear", in_size=width, out_size=self.num_classes))
        return tuple(plan)

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every state_dict entry of the built model, name -> shape, sorted by name."""
        shapes: dict[str, tuple[int, ...]] = {}
        for layer in self.layers():
            shapes.update(layer.tensor_shapes())
        return dict(sorted(shapes.items()))

    def num_parameters(self) -> int:
        """The model's parameter count."""
        return sum(math.prod(shape) for shape in self.tensor_shapes().values())

    def build(self) -> nn.Module:
        """Construct the (randomly initialised) torch module for this spec."""
        # torch is imported here, not at module level, so that the registry (and everything that only
        # needs names and shapes, such as the ONNX exporter) stays importable without torch.
        from torch import nn

        modules: list[nn.Module] = []
        # Constructed in plan order, which is the order the original builder drew its initial weights
        # in (conv body first, then the head), so every spec's initial weights are unchanged.
        for layer in self.layers():
            if layer.kind == "unflatten":
                modules.append(nn.Unflatten(1, layer.shape))
            elif layer.kind == "conv":
                conv_cls: type[nn.Conv1d] | type[nn.Conv2d] = nn.Conv2d if layer.spatial == 2 else nn.Conv1d
                modules.append(conv_cls(layer.in_size, layer.out_size, layer.kernel, padding=layer.kernel // 2))
            elif layer.kind == "relu":
                modules.append(nn.ReLU())
            elif layer.kind == "square":
                from fedledger.sdk.ml.layers import Square  # lazily, like torch: the registry stays torch-free

                modules.append(Square())
            elif layer.kind == "maxpool":
                modules.append(nn.MaxPool2d(2) if layer.spatial == 2 else nn.MaxPool1d(2))
            elif layer.kind == "flatten":
                modules.append(nn.Flatten(1))
            else:
                modules.append(nn.Linear(layer.in_size, layer.out_size))
        return nn.Sequential(*modules)


MODEL_SPECS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("mlp-digits", 64, (64,), 10, "Linear(64,64)-ReLU-Linear(64,10) for 8x8 digits"),
        # The encrypted-inference variant of mlp-digits (fedledger.sdk.he): a square activation, which CKKS
        # computes exactly at one multiplicative level, and 32 hidden units, which keep stage 1 (its cost
        # grows with the matrix) and the ciphertexts small.
        ModelSpec("mlp-digits-poly", 64, (32,), 10, "Linear(64,32)-Square-Linear(32,10) for 8x8 digits "
                  "(CKKS-friendly)", activation="square"),
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
        # About 1.2M parameters (most in Linear(3136,384)): large enough that inference cost, and what
        # splitting a model across nodes saves, shows up in the inference benchmark.
        ModelSpec("cnn-mnist-1m", 784, (384,), 10,
                  "Conv2d(1,32,3)-ReLU-MaxPool-Conv2d(32,64,3)-ReLU-MaxPool-Linear(3136,384)-ReLU-"
                  "Linear(384,10) for 28x28 MNIST (inference benchmark)",
                  shape=(1, 28, 28), conv=(32, 64), kernel=3),
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
