"""Deterministic ONNX artifacts of registered model specs, built from their weights without torch."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from fedledger.sdk.ml.spec import ModelError, ModelSpec, SpecLayer, get_spec

__all__ = [
    "INPUT_NAME",
    "IR_VERSION",
    "OPSET",
    "OUTPUT_NAME",
    "PRODUCER_NAME",
    "PRODUCER_VERSION",
    "artifact_digest",
    "export_onnx",
]

# Every field that ends up in the bytes is pinned here: anyone holding a version's weights rebuilds the
# same artifact and the same sha256, whatever onnx release they have (make_model would otherwise stamp
# the installed library's IR version).
PRODUCER_NAME = "fedledger"
PRODUCER_VERSION = "1"
OPSET = 17
IR_VERSION = 8
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
BATCH_DIM = "batch"


def artifact_digest(data: bytes) -> str:
    """The sha256 of an artifact's bytes, as lowercase hex."""
    return hashlib.sha256(data).hexdigest()


def _checked_tensors(spec: ModelSpec, tensors: Mapping[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[np.float32]]:
    """The weights as float32 arrays, or ModelError naming what is missing, unexpected or misshapen."""
    expected = spec.tensor_shapes()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise ModelError(f"weights do not fit model {spec.name!r} (missing {missing}, unexpected {extra})")
    out: dict[str, npt.NDArray[np.float32]] = {}
    for name, shape in expected.items():
        try:
            arr = np.asarray(tensors[name], dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"weight {name!r} of model {spec.name!r} is not numeric: {exc}") from None
        if tuple(arr.shape) != shape:
            raise ModelError(f"weight {name!r} has shape {tuple(arr.shape)}, model {spec.name!r} expects {shape}")
        # Explicit little-endian so that raw_data is the same bytes on every host.
        out[name] = np.ascontiguousarray(arr, dtype="<f4")
    return out


def _layer_node(layer: SpecLayer, source: str, target: str) -> onnx.NodeProto:
    """The ONNX node computing one Sequential layer from tensor source into tensor target."""
    name = f"{layer.index}.{layer.kind}"
    weight, bias = f"{layer.index}.weight", f"{layer.index}.bias"
    if layer.kind == "unflatten":
        return helper.make_node("Reshape", [source, f"{layer.index}.shape"], [target], name=name)
    if layer.kind == "conv":
        pad = layer.kernel // 2
        return helper.make_node("Conv", [source, weight, bias], [target], name=name,
                                kernel_shape=[layer.kernel] * layer.spatial, pads=[pad] * (2 * layer.spatial),
                                strides=[1] * layer.spatial, dilations=[1] * layer.spatial, group=1)
    if layer.kind == "relu":
        return helper.make_node("Relu", [source], [target], name=name)
    if layer.kind == "square":
        # x*x as Mul(x, x), the op torch's `x * x` exports to (the polynomial model of fedledger.sdk.he).
        return helper.make_node("Mul", [source, source], [target], name=name)
    if layer.kind == "maxpool":
        # torch's MaxPool(2): kernel 2, stride 2, no padding, floor mode (ceil_mode=0).
        return helper.make_node("MaxPool", [source], [target], name=name, kernel_shape=[2] * layer.spatial,
                                strides=[2] * layer.spatial, ceil_mode=0)
    if layer.kind == "flatten":
        return helper.make_node("Flatten", [source], [target], name=name, axis=1)
    return helper.make_node("Gemm", [source, weight, bias], [target], name=name, alpha=1.0, beta=1.0, transB=1)


def export_onnx(spec_name: str, tensors: Mapping[str, npt.NDArray[Any]]) -> bytes:
    """The ONNX model of spec_name holding tensors (its state_dict arrays), as canonical bytes.

    The graph mirrors the torch nn.Sequential of ModelSpec.build layer for layer: input "input"
    float32 ["batch", input_dim], output "logits" float32 ["batch", num_classes]; each layer's
    output tensor is named "<index>.<kind>" (e.g. "2.relu"), the last one "logits". Weights are
    initializers named as in the state_dict, sorted by name. The bytes depend only on the spec and
    the weights' float32 values. Raises ModelError for an unknown spec or weights that do not fit.
    """
    spec = get_spec(spec_name)
    weights = _checked_tensors(spec, tensors)
    layers = spec.layers()
    initializers = {name: numpy_helper.from_array(arr, name) for name, arr in weights.items()}
    nodes: list[onnx.NodeProto] = []
    source = INPUT_NAME
    for layer in layers:
        if layer.kind == "unflatten":
            # 0 copies the batch dimension from the input (rather than -1), so shape inference keeps the
            # symbolic "batch" dim through the whole graph; graph splitting relies on that.
            shape = np.asarray((0, *layer.shape), dtype="<i8")
            initializers[f"{layer.index}.shape"] = numpy_helper.from_array(shape, f"{layer.index}.shape")
        target = OUTPUT_NAME if layer is layers[-1] else f"{layer.index}.{layer.kind}"
        nodes.append(_layer_node(layer, source, target))
        source = target
    graph = helper.make_graph(
        nodes,
        spec.name,
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [BATCH_DIM, spec.input_dim])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [BATCH_DIM, spec.num_classes])],
        initializer=[initializers[name] for name in sorted(initializers)],
    )
    model = helper.make_model(
        graph,
        producer_name=PRODUCER_NAME,
        producer_version=PRODUCER_VERSION,
        ir_version=IR_VERSION,
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    helper.set_model_props(model, {"fedledger.spec": spec.name})
    onnx.checker.check_model(model, full_check=True)
    data: bytes = model.SerializeToString(deterministic=True)
    return data
