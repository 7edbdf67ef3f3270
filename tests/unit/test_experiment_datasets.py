"""The experiment harness's offline MNIST and BasicMotions sets, their CPU models and the 28x28 backdoor trigger."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedledger.apps.experiment import datasets
from fedledger.apps.experiment.config import DATASETS, parse_config
from fedledger.apps.experiment.datasets import DATASET_SPECS, DatasetError, load_federated
from fedledger.apps.experiment.triggers import trigger_for
from fedledger.sdk.ml.data import ClientData
from fedledger.sdk.ml.dpsgd import DPConfig
from fedledger.sdk.ml.model import ModelError, ModelSpec, build_model, get_spec, initial_weights
from fedledger.sdk.ml.train import evaluate, train_local


@pytest.fixture(scope="module")
def mnist() -> datasets.FederatedData:
    return load_federated("mnist", 10, 0.3, 1)


@pytest.fixture(scope="module")
def motions() -> datasets.FederatedData:
    return load_federated("basic_motions", 10, 0.3, 1)


def _all_parts(fed: datasets.FederatedData) -> list[ClientData]:
    return [fed.pooled, fed.test, fed.canary]


def _check_split(fed: datasets.FederatedData, total: int, dim: int, classes: int, per_class: int,
                 min_examples: int) -> None:
    assert sum(len(p) for p in _all_parts(fed)) == total
    assert (len(fed.test), len(fed.canary)) == (round(0.2 * total), round(0.1 * total))
    for part in _all_parts(fed) + list(fed.clients):
        assert part.X.dtype == np.float32 and part.X.shape[1] == dim
    labels = np.concatenate([p.y for p in _all_parts(fed)])
    assert np.array_equal(np.bincount(labels), np.full(classes, per_class))
    assert len(fed.clients) == 10 and min(len(c) for c in fed.clients) >= min_examples
    # The shards are exactly the training pool, every row once.
    shard_rows = np.concatenate([c.X for c in fed.clients])
    assert len(shard_rows) == len(fed.pooled)
    key = lambda X: np.sort(X.view(np.dtype((np.void, X.dtype.itemsize * X.shape[1]))).ravel())  # noqa: E731
    assert np.array_equal(key(shard_rows), key(fed.pooled.X))


def test_mnist_shapes_classes_and_scaling(mnist: datasets.FederatedData) -> None:
    assert (mnist.spec, mnist.num_classes) == ("cnn-mnist", 10)
    _check_split(mnist, total=5000, dim=784, classes=10, per_class=500, min_examples=10)
    pixels = np.concatenate([p.X for p in _all_parts(mnist)])
    assert pixels.min() == 0.0 and pixels.max() == 1.0  # raw 0..255 divided by 255
    assert np.allclose(pixels * 255, np.round(pixels * 255), atol=1e-3)


def test_basic_motions_shapes_classes_and_min_shard(motions: datasets.FederatedData) -> None:
    assert (motions.spec, motions.num_classes) == ("cnn-basic-motions", 4)
    _check_split(motions, total=80, dim=600, classes=4, per_class=20, min_examples=4)
    assert len(motions.pooled) == 56


def test_new_datasets_are_known_to_the_config() -> None:
    for name in ("mnist", "basic_motions"):
        assert name in DATASETS and name in DATASET_SPECS
        assert parse_config({"dataset": name}).dataset == name


@pytest.mark.parametrize("name", ["mnist", "basic_motions"])
def test_splits_are_deterministic_per_seed_and_differ_across_seeds(name: str) -> None:
    a, b, c = load_federated(name, 10, 0.3, 4), load_federated(name, 10, 0.3, 4), load_federated(name, 10, 0.3, 5)
    for x, y in zip(_all_parts(a) + list(a.clients), _all_parts(b) + list(b.clients), strict=True):
        assert np.array_equal(x.X, y.X) and np.array_equal(x.y, y.y)
    assert not np.array_equal(a.test.X, c.test.X)
    assert [len(s) for s in a.clients] != [len(s) for s in c.clients]


def test_basic_motions_standardizes_per_channel_from_the_pool(motions: datasets.FederatedData) -> None:
    series = motions.pooled.X.reshape(-1, 6, 100).astype(np.float64)
    assert np.allclose(series.mean(axis=(0, 2)), 0.0, atol=1e-5)
    assert np.allclose(series.std(axis=(0, 2)), 1.0, atol=1e-5)
    held_out = np.concatenate([motions.test.X, motions.canary.X]).reshape(-1, 6, 100).astype(np.float64)
    assert not np.allclose(held_out.mean(axis=(0, 2)), 0.0, atol=1e-3)  # the held-out rows were not fitted


def test_basic_motions_scaling_ignores_held_out_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    # Labels 0..79 name the rows, so each part's labels say which raw rows it holds.
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(80, 6, 100)) * np.arange(1, 7)[None, :, None] + np.arange(6)[None, :, None] * 10
    rows = np.arange(80, dtype=np.int64)
    monkeypatch.setattr(datasets, "_raw", lambda name: (raw, rows))
    fed = load_federated("basic_motions", 10, 0.3, 3)
    pool = fed.pooled.y
    mean, std = raw[pool].mean(axis=(0, 2), keepdims=True), raw[pool].std(axis=(0, 2), keepdims=True)
    for part in _all_parts(fed):
        expected = ((raw[part.y] - mean) / std).reshape(len(part), -1)
        assert np.allclose(part.X, expected, atol=1e-5)
    # Wildly different held-out rows leave the training data bit-for-bit unchanged.
    held = np.concatenate([fed.test.y, fed.canary.y])
    shifted = raw.copy()
    shifted[held] = shifted[held] * 50 + 1000
    monkeypatch.setattr(datasets, "_raw", lambda name: (shifted, rows))
    again = load_federated("basic_motions", 10, 0.3, 3)
    assert np.array_equal(again.pooled.X, fed.pooled.X)
    assert all(np.array_equal(x.X, y.X) for x, y in zip(again.clients, fed.clients, strict=True))
    assert not np.array_equal(again.test.X, fed.test.X)


def test_too_many_clients_is_a_clear_error() -> None:
    assert min(len(c) for c in load_federated("basic_motions", 14, 0.3, 2).clients) >= 4  # 56 // 4
    with pytest.raises(DatasetError, match=r"15 clients need at least 60 .*basic_motions has 56 .*1 to 14 clients"):
        load_federated("basic_motions", 15, 0.3, 2)
    with pytest.raises(DatasetError, match="positive int"):
        load_federated("basic_motions", 0, 0.3, 2)


@pytest.mark.parametrize(("spec", "dim", "classes"), [("cnn-mnist", 784, 10), ("cnn-basic-motions", 600, 4)])
def test_cnn_specs_forward_and_are_small(spec: str, dim: int, classes: int) -> None:
    model = build_model(spec, 0)
    assert get_spec(spec).input_dim == dim
    assert sum(p.numel() for p in model.parameters()) < 50_000
    assert any(isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d)) for m in model.modules())
    with torch.no_grad():
        assert model(torch.zeros(5, dim)).shape == (5, classes)
    a, b = initial_weights(spec, 0), initial_weights(spec, 1)
    assert all(np.array_equal(a[k], initial_weights(spec, 0)[k]) for k in a)
    assert any(not np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("fixture", ["mnist", "motions"])
def test_cnn_specs_train_one_step(fixture: str, request: pytest.FixtureRequest) -> None:
    fed: datasets.FederatedData = request.getfixturevalue(fixture)
    shard = ClientData(X=fed.pooled.X[:16], y=fed.pooled.y[:16])
    base = initial_weights(fed.spec, 0)
    result = train_local(fed.spec, base, shard, epochs=1, lr=0.1, batch_size=16, seed=0)
    assert result.num_examples == 16 and np.isfinite(result.loss)
    assert set(result.delta) == set(base)
    assert all(np.isfinite(d).all() and np.abs(d).max() > 0 for d in result.delta.values())
    trained = {k: base[k] + result.delta[k] for k in base}
    assert evaluate(fed.spec, trained, shard).loss < evaluate(fed.spec, base, shard).loss
    # The DP-SGD path (per-example gradients through vmap) runs the conv layers too.
    dp = DPConfig(noise_multiplier="1.0", sample_rate="0.5", clip_norm="1.0", steps=2)
    private = train_local(fed.spec, base, shard, epochs=1, lr=0.1, batch_size=8, seed=0, dp=dp)
    assert private.mechanism is not None and private.mechanism["steps"] == 2
    assert all(np.isfinite(d).all() for d in private.delta.values())


def test_conv_spec_validation() -> None:
    with pytest.raises(ModelError, match="elements"):
        ModelSpec("bad", 700, (), 10, "", shape=(1, 28, 28), conv=(8,))
    with pytest.raises(ModelError, match="odd kernel"):
        ModelSpec("bad", 784, (), 10, "", shape=(1, 28, 28), conv=(8,), kernel=4)
    with pytest.raises(ModelError, match="input shape"):
        ModelSpec("bad", 784, (), 10, "", conv=(8,))


def test_mnist_trigger_stamps_28x28_images(mnist: datasets.FederatedData) -> None:
    probe = trigger_for("mnist", "corner_square", 3)
    assert probe is not None and probe.side == 28 and probe.target_label == 3
    images = mnist.test.X
    stamped = probe.stamp(images)
    grid, before = stamped.reshape(-1, 28, 28), images.reshape(-1, 28, 28)
    k = probe.patch_size
    assert (grid[:, -k:, -k:] == 1.0).all()
    mask = np.ones((28, 28), dtype=bool)
    mask[-k:, -k:] = False
    assert np.array_equal(grid[:, mask], before[:, mask])
    assert not np.array_equal(stamped, images)  # the corner is blank in MNIST, so the trigger is new ink
    triggered = probe.triggered(mnist.canary)
    assert len(triggered) == int((mnist.canary.y != 3).sum()) and (triggered.y == 3).all()
    poisoned = probe.poison(mnist.clients[0], 0.5, seed=1)
    assert len(poisoned) > len(mnist.clients[0])
    assert trigger_for("basic_motions", "blend", 0) is None and trigger_for("breast_cancer", "blend", 0) is None
