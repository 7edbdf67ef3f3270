"""The ONNX exporter rebuilds every registered spec byte for byte and computes what the torch model computes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from fedledger.sdk.inference.onnx_export import artifact_digest, export_onnx
from fedledger.sdk.ml.model import MODEL_SPECS, ModelError, build_model, get_spec, set_weights
from fedledger.sdk.ml.spec import get_spec as spec_get_spec


def _random_weights(spec: str, seed: int) -> dict[str, np.ndarray]:
    # Random (not initial) weights, with a spread large enough that a layer-order mistake shows up.
    rng = np.random.default_rng(seed)
    return {name: rng.normal(0.0, 0.2, size=shape).astype(np.float32)
            for name, shape in get_spec(spec).tensor_shapes().items()}


def _run(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    (out,) = session.run(["logits"], {"input": x})
    return np.asarray(out)


@pytest.mark.parametrize("spec", sorted(MODEL_SPECS))
def test_onnx_matches_torch_forward(spec: str) -> None:
    weights = _random_weights(spec, 1)
    model_bytes = export_onnx(spec, weights)
    onnx.checker.check_model(onnx.load_model_from_string(model_bytes), full_check=True)
    model = build_model(spec, 0)
    set_weights(model, weights)
    model.eval()
    rng = np.random.default_rng(2)
    for batch in (1, 7):
        x = rng.random((batch, get_spec(spec).input_dim), dtype=np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(x)).numpy()
        got = _run(model_bytes, x)
        assert got.shape == (batch, get_spec(spec).num_classes)
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def test_graph_interface_and_pinned_fields() -> None:
    model = onnx.load_model_from_string(export_onnx("cnn-mnist", _random_weights("cnn-mnist", 0)))
    assert (model.producer_name, model.ir_version, [o.version for o in model.opset_import]) == ("fedledger", 8, [17])
    (inp,), (out,) = model.graph.input, model.graph.output
    assert inp.name == "input" and out.name == "logits"
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["batch", 784]
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["batch", 10]
    names = [t.name for t in model.graph.initializer]
    assert names == sorted(names)
    assert {"1.weight", "4.weight", "8.weight"} <= set(names)


def test_export_is_byte_identical_and_tracks_the_weights() -> None:
    weights = _random_weights("mlp-digits", 3)
    first = export_onnx("mlp-digits", weights)
    # Same values in another dtype and a fresh dict order: still the same bytes.
    again = export_onnx("mlp-digits", {k: weights[k].astype(np.float64) for k in reversed(sorted(weights))})
    assert first == again and artifact_digest(first) == artifact_digest(again)
    assert len(artifact_digest(first)) == 64
    changed = {k: v.copy() for k, v in weights.items()}
    changed["2.bias"][3] += 1e-3
    assert artifact_digest(export_onnx("mlp-digits", changed)) != artifact_digest(first)


def test_export_is_the_same_in_a_fresh_process() -> None:
    code = ("import numpy as np; from fedledger.sdk.inference.onnx_export import export_onnx, artifact_digest;"
            "w={k: np.full(s, 0.5, np.float32) for k, s in __import__('fedledger.sdk.ml.spec', fromlist=['x'])"
            ".get_spec('cnn-mnist').tensor_shapes().items()}; print(artifact_digest(export_onnx('cnn-mnist', w)))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.strip()
    w = {k: np.full(s, 0.5, np.float32) for k, s in get_spec("cnn-mnist").tensor_shapes().items()}
    assert out == artifact_digest(export_onnx("cnn-mnist", w))


def test_bad_tensors_raise_model_error() -> None:
    weights = _random_weights("mlp-digits", 0)
    missing = dict(weights)
    del missing["0.bias"]
    with pytest.raises(ModelError, match=r"missing \['0.bias'\]"):
        export_onnx("mlp-digits", missing)
    with pytest.raises(ModelError, match=r"unexpected \['9.weight'\]"):
        export_onnx("mlp-digits", {**weights, "9.weight": np.zeros(3, np.float32)})
    with pytest.raises(ModelError, match=r"'0.weight' has shape \(64, 63\)"):
        export_onnx("mlp-digits", {**weights, "0.weight": np.zeros((64, 63), np.float32)})
    with pytest.raises(ModelError, match="not numeric"):
        export_onnx("mlp-digits", {**weights, "0.bias": np.array(["a"] * 64, dtype=object)})
    with pytest.raises(ModelError, match="unknown model spec"):
        export_onnx("no-such-spec", weights)


def test_spec_module_is_torch_free_and_re_exported() -> None:
    code = "import sys, fedledger.sdk.ml.spec, fedledger.sdk.inference.onnx_export; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.strip()
    assert out == "False"
    assert spec_get_spec is get_spec


def test_the_1m_cnn_spec() -> None:
    spec = get_spec("cnn-mnist-1m")
    assert spec.num_parameters() >= 1_000_000
    assert spec.tensor_shapes()["8.weight"] == (384, 64 * 7 * 7)
