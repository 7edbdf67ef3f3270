"""A square-activation MLP as a chain of HE stages, and its plaintext reference.

Stage i is the i-th linear layer, followed by the square if one follows it in the model. Biases are
folded into the matrices: the client appends a constant 1 to its features, every stage's matrix
has one extra input row holding the bias, and every stage but the last has one extra output
column that carries the 1 forward (1*1 = 1 through the square). Why fold: TenSEAL's vector-matrix
product reads the input replicated across all slots, and adding a plain bias vector only adds it
to the first copy, which corrupts the next stage's product (measured: 0.06-0.4 max error); inside
the matrix the bias is replicated like everything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.sdk.he.errors import HEParamsError
from fedledger.sdk.ml.spec import get_spec

__all__ = ["PolyStage", "reference_forward", "split_stages", "stage_input"]


@dataclass(frozen=True, eq=False)
class PolyStage:
    """One stage: out = (in @ matrix), squared if square; in and out end in the constant 1 except the last out."""

    index: int
    matrix: npt.NDArray[np.float64]  # (in_dim, out_dim), float64
    square: bool
    last: bool

    @property
    def in_dim(self) -> int:
        """Slots the stage reads (the previous stage's outputs, or the features, plus the constant 1)."""
        return int(self.matrix.shape[0])

    @property
    def out_dim(self) -> int:
        """Slots the stage writes."""
        return int(self.matrix.shape[1])

    def forward(self, v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The stage in plaintext float64 (what the encrypted stage approximates)."""
        out = np.asarray(v, dtype=np.float64) @ self.matrix
        return out * out if self.square else out


def split_stages(spec_name: str, weights: Mapping[str, npt.NDArray[Any]]) -> tuple[PolyStage, ...]:
    """Cut a square-activation MLP spec with its weights into one PolyStage per linear layer."""
    spec = get_spec(spec_name)
    if spec.activation != "square" or spec.shape:
        raise HEParamsError(f"spec {spec_name!r} is not a square-activation MLP; HE inference needs one")
    plan = spec.layers()
    linears = [layer for layer in plan if layer.kind == "linear"]
    stages: list[PolyStage] = []
    for i, layer in enumerate(linears):
        try:
            w = np.asarray(weights[f"{layer.index}.weight"], dtype=np.float64)
            b = np.asarray(weights[f"{layer.index}.bias"], dtype=np.float64)
        except KeyError as exc:
            raise HEParamsError(f"weights lack {exc.args[0]!r} for spec {spec_name!r}") from None
        if w.shape != (layer.out_size, layer.in_size) or b.shape != (layer.out_size,):
            raise HEParamsError(f"layer {layer.index} weights {w.shape}/{b.shape} do not fit spec {spec_name!r}")
        if not (np.isfinite(w).all() and np.isfinite(b).all()):
            raise HEParamsError(f"layer {layer.index} has non-finite weights")
        last = i == len(linears) - 1
        square = layer.index + 1 < len(plan) and plan[layer.index + 1].kind == "square"
        matrix = np.zeros((layer.in_size + 1, layer.out_size + (0 if last else 1)))
        matrix[: layer.in_size, : layer.out_size] = w.T
        matrix[layer.in_size, : layer.out_size] = b
        if not last:
            matrix[layer.in_size, layer.out_size] = 1.0  # carry the constant 1 to the next stage
        stages.append(PolyStage(index=i, matrix=matrix, square=square, last=last))
    return tuple(stages)


def stage_input(features: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The first stage's input: the features as float64 with the constant 1 appended."""
    x = np.asarray(features, dtype=np.float64).reshape(-1)
    return np.concatenate([x, [1.0]])


def reference_forward(stages: tuple[PolyStage, ...], features: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The polynomial model in plaintext float64: the logits encrypted inference must reproduce."""
    v = stage_input(features)
    for stage in stages:
        if v.shape[0] != stage.in_dim:
            raise HEParamsError(f"stage {stage.index} reads {stage.in_dim} values, got {v.shape[0]}")
        v = stage.forward(v)
    return v
