"""Small ONNX models (onnx.helper) for the inference node's serving tests, and a direct onnxruntime reference."""

from __future__ import annotations

import socket

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

__all__ = ["batch_gather_model", "direct", "doubled_rows_model", "free_port", "gather_model", "gemm_relu_model",
           "identity_model"]


def _bytes(graph: onnx.GraphProto) -> bytes:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def gemm_relu_model(seed: int = 0) -> bytes:
    """input [batch, 4] FP32 -> logits [batch, 3] = relu(input @ W + b); the seed picks W and b."""
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((4, 3)).astype(np.float32)
    bias = rng.standard_normal(3).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["input", "W", "B"], ["h"]), helper.make_node("Relu", ["h"], ["logits"])],
        "gemm_relu",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
        [numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "B")])
    return _bytes(graph)


def gather_model() -> bytes:
    """A fixed-shape model: ids [2, 3] INT64 and shift [2] FP32 -> emb [2, 3, 2] FP32 = table[ids] + shift."""
    table = np.arange(20, dtype=np.float32).reshape(10, 2)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["g"], axis=0), helper.make_node("Add", ["g", "shift"], ["emb"])],
        "gather",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [2, 3]),
         helper.make_tensor_value_info("shift", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("emb", TensorProto.FLOAT, [2, 3, 2])],
        [numpy_helper.from_array(table, "table")])
    return _bytes(graph)


def batch_gather_model() -> bytes:
    """A batchable model whose values can fail a run: ids [batch, 2] INT64 -> out [batch, 2, 2] = table[ids]."""
    table = np.arange(20, dtype=np.float32).reshape(10, 2)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["out"], axis=0)],
        "batch_gather",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", 2])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 2, 2])],
        [numpy_helper.from_array(table, "table")])
    return _bytes(graph)


def doubled_rows_model() -> bytes:
    """Dynamic dim 0 that is not a batch dim: x [n, 2] FP32 -> m [k, 2] (k = 2n) = x stacked on itself."""
    graph = helper.make_graph(
        [helper.make_node("Concat", ["x", "x"], ["m"], axis=0)],
        "doubled_rows",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2])],
        [helper.make_tensor_value_info("m", TensorProto.FLOAT, ["k", 2])])
    return _bytes(graph)


def identity_model(elem_type: int = TensorProto.UINT64, shape: tuple[int, ...] = (2, 3)) -> bytes:
    """x -> y unchanged, of any element type (a TensorProto constant) and a fixed shape."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "identity",
        [helper.make_tensor_value_info("x", elem_type, list(shape))],
        [helper.make_tensor_value_info("y", elem_type, list(shape))])
    return _bytes(graph)


def direct(model_bytes: bytes, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What onnxruntime computes for `feeds`, without the node in between."""
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, (np.asarray(v) for v in session.run(names, feeds)), strict=True))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
