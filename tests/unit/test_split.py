"""Splitting ONNX graphs at single-tensor cuts: the stages, run one after another, compute the whole model."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from fedledger.abci_app.errors import ConfigError
from fedledger.sdk.inference.onnx_export import export_onnx
from fedledger.sdk.inference.split import SplitError, cut_points, default_cuts, split_model
from fedledger.sdk.ml.model import initial_weights


def _run(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: x})
    return np.asarray(out)


def _foreign() -> bytes:
    """A graph the project did not make: MatMul/Add/Tanh/Sigmoid, a Constant node, a skip and a dead branch."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(size=(5, 6)).astype(np.float32), "W1")
    w2 = numpy_helper.from_array(rng.normal(size=(6, 6)).astype(np.float32), "W2")
    w3 = numpy_helper.from_array(rng.normal(size=(6, 3)).astype(np.float32), "W3")
    unused = numpy_helper.from_array(np.ones((4,), np.float32), "unused")
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["h1"]),
        helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.full((6,), 0.1, np.float32))),
        helper.make_node("Add", ["h1", "c"], ["h2"]),
        helper.make_node("Tanh", ["h2"], ["t"]),
        # A residual block: inside it two tensors cross (t and m), so neither m nor s is a cut.
        helper.make_node("MatMul", ["t", "W2"], ["m"]),
        helper.make_node("Sigmoid", ["m"], ["s"]),
        helper.make_node("Add", ["s", "t"], ["r"]),
        helper.make_node("Neg", ["x"], ["dead"]),  # read by nothing the output needs
        helper.make_node("MatMul", ["r", "W3"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "foreign",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])],
        initializer=[w1, w2, w3, unused],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def _models() -> dict[str, tuple[bytes, int]]:
    return {
        "cnn-mnist": (export_onnx("cnn-mnist", initial_weights("cnn-mnist", 0)), 784),
        "mlp-digits": (export_onnx("mlp-digits", initial_weights("mlp-digits", 0)), 64),
        "foreign": (_foreign(), 5),
    }


MODELS = _models()


def test_cut_points() -> None:
    assert cut_points(MODELS["mlp-digits"][0]) == ["0.linear", "1.relu"]
    assert cut_points(MODELS["cnn-mnist"][0])[0] == "0.unflatten"
    assert len(cut_points(MODELS["cnn-mnist"][0])) == 8
    assert cut_points(MODELS["foreign"][0]) == ["h1", "h2", "t", "r", "z"]


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("stages", [2, 3])
def test_stages_compose_to_the_full_model(name: str, stages: int) -> None:
    model_bytes, width = MODELS[name]
    cuts = default_cuts(model_bytes, stages)
    assert len(cuts) == stages - 1
    parts = split_model(model_bytes, cuts)
    assert len(parts) == stages
    initializers_total = 0
    for i, part in enumerate(parts):
        model = onnx.load_model_from_string(part)
        onnx.checker.check_model(model, full_check=True)
        (inp,), (out,) = model.graph.input, model.graph.output
        assert inp.name == (cuts[i - 1] if i else onnx.load_model_from_string(model_bytes).graph.input[0].name)
        assert out.name == (cuts[i] if i < len(cuts) else onnx.load_model_from_string(model_bytes).graph.output[0].name)
        batch = inp.type.tensor_type.shape.dim[0]
        assert batch.dim_param and not batch.dim_value  # the batch dim stays dynamic
        initializers_total += len(model.graph.initializer)
        used = {n for node in model.graph.node for n in node.input}
        assert {t.name for t in model.graph.initializer} <= used
    assert initializers_total == len([t for t in onnx.load_model_from_string(model_bytes).graph.initializer
                                      if t.name != "unused"])
    for batch in (1, 6):
        x = np.random.default_rng(batch).random((batch, width), dtype=np.float32)
        value = x
        for part in parts:
            value = _run(part, value)
        np.testing.assert_allclose(value, _run(model_bytes, x), atol=1e-5, rtol=0)


def test_every_single_cut_composes() -> None:
    model_bytes, width = MODELS["foreign"]
    x = np.random.default_rng(0).random((4, width), dtype=np.float32)
    for cut in cut_points(model_bytes):
        head, tail = split_model(model_bytes, [cut])
        np.testing.assert_allclose(_run(tail, _run(head, x)), _run(model_bytes, x), atol=1e-5, rtol=0)


def test_the_constant_is_copied_into_the_stage_that_reads_it() -> None:
    head, tail = split_model(MODELS["foreign"][0], ["h1"])
    assert "Constant" in [n.op_type for n in onnx.load_model_from_string(tail).graph.node]
    assert "Constant" not in [n.op_type for n in onnx.load_model_from_string(head).graph.node]


def test_no_cuts_gives_the_model_back_as_one_stage() -> None:
    model_bytes, width = MODELS["mlp-digits"]
    (only,) = split_model(model_bytes, [])
    x = np.ones((2, width), np.float32)
    np.testing.assert_allclose(_run(only, x), _run(model_bytes, x), atol=1e-6)
    assert default_cuts(model_bytes, 1) == []


def test_bad_cuts_raise_split_error() -> None:
    model_bytes = MODELS["foreign"][0]
    for cuts in (["nope"], ["m"], ["x"], ["y"], ["t", "h1"], ["t", "t"]):
        with pytest.raises(SplitError) as info:
            split_model(model_bytes, cuts)
        assert "h1" in str(info.value)  # the message lists the valid cuts
        assert isinstance(info.value, ConfigError) and info.value.error_code == "SPLIT_CUT"
    with pytest.raises(SplitError):
        split_model(model_bytes, "t")
    with pytest.raises(SplitError, match="7 stages"):
        default_cuts(model_bytes, 7)
    with pytest.raises(SplitError):
        default_cuts(model_bytes, 0)
    with pytest.raises(SplitError, match="readable"):
        cut_points(b"not onnx at all")


def test_graphs_with_two_inputs_are_refused() -> None:
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["c"]), helper.make_node("Relu", ["c"], ["d"])], "two",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2]) for n in ("a", "b")],
        [helper.make_tensor_value_info("d", TensorProto.FLOAT, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    with pytest.raises(SplitError, match="one input and one output"):
        cut_points(model.SerializeToString())
