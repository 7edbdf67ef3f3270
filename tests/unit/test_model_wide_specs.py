"""The wide MLP specs registered for the membership-inference experiments build with the advertised layers."""

from __future__ import annotations

import numpy as np
import pytest

from fedledger.sdk.ml.model import initial_weights


@pytest.mark.parametrize(("spec", "inputs"), [("mlp-digits-wide", 64), ("mlp-mnist-wide", 784)])
def test_wide_specs_have_two_256_unit_hidden_layers(spec: str, inputs: int) -> None:
    shapes = {name: w.shape for name, w in initial_weights(spec, 0).items()}
    assert shapes == {"0.weight": (256, inputs), "0.bias": (256,), "2.weight": (256, 256), "2.bias": (256,),
                      "4.weight": (10, 256), "4.bias": (10,)}
    np.testing.assert_array_equal(initial_weights(spec, 0)["0.weight"], initial_weights(spec, 0)["0.weight"])
