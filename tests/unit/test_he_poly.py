"""The polynomial digits model: its spec, the torch build, the seeded training, and its cut into HE stages."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedledger.sdk.he.errors import HEParamsError
from fedledger.sdk.he.poly import reference_forward, split_stages, stage_input
from fedledger.sdk.he.training import train_digits
from fedledger.sdk.ml.model import build_model, initial_weights, set_weights
from fedledger.sdk.ml.spec import ModelError, ModelSpec, get_spec

SPEC = "mlp-digits-poly"


def test_the_spec_is_linear_square_linear() -> None:
    spec = get_spec(SPEC)
    assert [layer.kind for layer in spec.layers()] == ["linear", "square", "linear"]
    assert spec.tensor_shapes() == {"0.bias": (32,), "0.weight": (32, 64), "2.bias": (10,), "2.weight": (10, 32)}
    with pytest.raises(ModelError, match="activation"):
        ModelSpec("x", 4, (2,), 2, "bad", activation="tanh")  # type: ignore[arg-type]


def test_torch_model_and_stage_reference_agree() -> None:
    weights = initial_weights(SPEC, seed=3)
    model = build_model(SPEC, seed=0)
    set_weights(model, weights)
    x = np.random.default_rng(1).random((5, 64)).astype(np.float32)
    with torch.no_grad():
        torch_out = model(torch.from_numpy(x)).numpy()
    stages = split_stages(SPEC, weights)
    assert [(s.in_dim, s.out_dim, s.square, s.last) for s in stages] == [(65, 33, True, False), (33, 10, False, True)]
    for row, expected in zip(x, torch_out, strict=True):
        assert np.abs(reference_forward(stages, row) - expected).max() < 1e-4


def test_the_relu_spec_is_unchanged() -> None:
    assert [layer.kind for layer in get_spec("mlp-digits").layers()] == ["linear", "relu", "linear"]


def test_split_refuses_non_polynomial_or_unfitting_weights() -> None:
    with pytest.raises(HEParamsError, match="square-activation"):
        split_stages("mlp-digits", initial_weights("mlp-digits", 0))
    weights = initial_weights(SPEC, 0)
    with pytest.raises(HEParamsError, match="lack"):
        split_stages(SPEC, {k: v for k, v in weights.items() if k != "2.bias"})
    with pytest.raises(HEParamsError, match="do not fit"):
        split_stages(SPEC, {**weights, "0.weight": np.zeros((32, 63), np.float32)})
    with pytest.raises(HEParamsError, match="reads 65"):
        reference_forward(split_stages(SPEC, weights), np.zeros(10))
    assert stage_input([1, 2])[-1] == 1.0


def test_training_is_seeded_and_the_poly_model_learns() -> None:
    a, b = train_digits(SPEC, seed=0, epochs=3), train_digits(SPEC, seed=0, epochs=3)
    assert all(np.array_equal(a.weights[k], b.weights[k]) for k in a.weights)
    assert a.test_accuracy == b.test_accuracy > 0.8
