"""Inversion of split-inference activations: the decoder beats the mean guess, repeats, and reports sane numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fedledger.apps.experiment.inversion import (
    InversionError,
    format_inversion_table,
    inversion_table,
    measure_inversion,
    train_digits,
)
from fedledger.sdk.inference.split import SplitError
from fedledger.sdk.ml.data import load_digits_federated
from fedledger.sdk.ml.model import initial_weights


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    (train,), test = load_digits_federated(1, seed=0)
    return test.X, train.X[:300]


@pytest.mark.parametrize("trained", [False, True])
def test_first_cut_beats_the_mean(digits: tuple[np.ndarray, np.ndarray], trained: bool) -> None:
    public, private = digits
    weights = train_digits("mlp-digits", epochs=2, seed=0)[0] if trained else initial_weights("mlp-digits", 0)
    report = measure_inversion("mlp-digits", weights, "0.linear", public, private, epochs=30, seed=0)
    assert report.relative < 1
    assert (report.cut, report.activation_dim, report.input_dim) == ("0.linear", 64, 64)
    assert 0 < report.mse < report.baseline_mse
    assert report.relative == pytest.approx(report.mse / report.baseline_mse)
    assert report.psnr == pytest.approx(10 * math.log10(1.0 / report.mse))  # digits span [0, 1]


def test_same_seed_same_report(digits: tuple[np.ndarray, np.ndarray]) -> None:
    public, private = digits
    weights = initial_weights("mlp-digits", 1)
    first = measure_inversion("mlp-digits", weights, "1.relu", public, private, epochs=20, seed=3)
    assert measure_inversion("mlp-digits", weights, "1.relu", public, private, epochs=20, seed=3) == first
    assert measure_inversion("mlp-digits", weights, "1.relu", public, private, epochs=20, seed=4) != first


def test_table_covers_every_cut() -> None:
    reports = inversion_table("mlp-digits-wide", train_epochs=1, epochs=10, private_examples=100)
    assert [r.cut for r in reports] == ["0.linear", "1.relu", "2.linear", "3.relu"]
    assert all(r.activation_dim == 256 and r.baseline_mse > 0 for r in reports)
    assert len(format_inversion_table(reports).splitlines()) == 5


def test_bad_arguments(digits: tuple[np.ndarray, np.ndarray]) -> None:
    public, private = digits
    weights = initial_weights("mlp-digits", 0)
    with pytest.raises(InversionError, match="public_x"):
        measure_inversion("mlp-digits", weights, "0.linear", public[:, :10], private)
    with pytest.raises(InversionError, match="private_x"):
        measure_inversion("mlp-digits", weights, "0.linear", public, private[:0])
    with pytest.raises(InversionError, match="epochs"):
        measure_inversion("mlp-digits", weights, "0.linear", public, private, epochs=0)
    with pytest.raises(SplitError):
        measure_inversion("mlp-digits", weights, "logits", public, private)
