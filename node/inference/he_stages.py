"""The HE stages of a served version, read back from its verified ONNX artifact.

The node already holds the version's artifact (its sha256 checked against the version record),
so the stage matrices come from the same bytes the plaintext model runs: the exporter writes the
state_dict's tensors as initializers under their own names ("0.weight", "0.bias", ...), which
split_stages folds into one PolyStage per linear layer of the task's square-activation spec.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
import onnx
from onnx import numpy_helper

from fedledger.sdk.he.errors import HEParamsError
from fedledger.sdk.he.poly import PolyStage, split_stages
from fedledger.sdk.ml.spec import ModelError, get_spec

__all__ = ["is_poly_spec", "poly_stages_from_onnx", "select_stages"]


def is_poly_spec(spec_name: str) -> bool:
    """Whether spec_name is a square-activation MLP, the only kind a node can serve under CKKS."""
    try:
        spec = get_spec(spec_name)
    except ModelError:
        return False
    return spec.activation == "square" and not spec.shape


def poly_stages_from_onnx(data: bytes, spec_name: str) -> tuple[PolyStage, ...]:
    """Every PolyStage of the model in the ONNX bytes, whose architecture is spec_name."""
    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf raises DecodeError and others on bad bytes
        raise HEParamsError(f"the artifact is not an ONNX model: {type(exc).__name__}") from None
    weights: dict[str, npt.NDArray[np.float64]] = {
        init.name: np.asarray(numpy_helper.to_array(init), dtype=np.float64) for init in model.graph.initializer}
    return split_stages(spec_name, weights)


def select_stages(stages: tuple[PolyStage, ...], wanted: Iterable[int]) -> dict[int, PolyStage]:
    """The stages a node holds, by index; HEParamsError for an index the model does not have."""
    chosen: dict[int, PolyStage] = {}
    for index in sorted(set(wanted)):
        if not 0 <= index < len(stages):
            raise HEParamsError(f"stage {index} does not exist: the model has stages 0..{len(stages) - 1}")
        chosen[index] = stages[index]
    return chosen
