import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

from fedledger.node.aggregation import WeightedUpdate, aggregate, apply_delta  # noqa: E402
from fedledger.sdk.ml.data import (  # noqa: E402
    ClientData,
    DataError,
    dirichlet_split,
    load_client_data,
    load_digits_federated,
    save_client_data,
)
from fedledger.sdk.ml.model import (  # noqa: E402
    MODEL_SPECS,
    ModelError,
    build_model,
    get_weights,
    initial_weights,
    set_weights,
)
from fedledger.sdk.ml.train import TrainingError, evaluate, train_local  # noqa: E402
from fedledger.sdk.tensors import decode_tensors, encode_tensors  # noqa: E402

SPEC = "mlp-digits"
Fed = tuple[list[ClientData], ClientData]


@pytest.fixture(scope="module")
def federated() -> Fed:
    clients, test = load_digits_federated(8, alpha=0.5, seed=0)
    return clients, test


# ---------------------------------------------------------------- data


def test_split_shapes_and_scaling(federated: Fed) -> None:
    clients, test = federated
    assert len(clients) == 8
    assert sum(len(c) for c in clients) == 1437 and len(test) == 360  # 1797 digits, 20% held out
    for part in [*clients, test]:
        assert part.X.dtype == np.float32 and part.X.shape[1] == 64
        assert part.y.dtype == np.int64
        assert part.X.min() >= 0.0 and part.X.max() <= 1.0
    assert test.X.max() == 1.0
    # Stratified holdout: every class is present with 35-37 examples.
    assert np.bincount(test.y, minlength=10).min() >= 35


def test_split_is_deterministic(federated: Fed) -> None:
    clients, test = federated
    again, test2 = load_digits_federated(8, alpha=0.5, seed=0)
    for a, b in zip(clients, again, strict=True):
        assert np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y)
    assert np.array_equal(test.X, test2.X)
    other, _ = load_digits_federated(8, alpha=0.5, seed=1)
    assert [len(c) for c in other] != [len(c) for c in clients]


def test_dirichlet_split_covers_every_index_once() -> None:
    labels = np.repeat(np.arange(10, dtype=np.int64), 50)
    for seed in range(5):
        parts = dirichlet_split(labels, 7, alpha=0.3, seed=seed, min_examples=5)
        joined = np.concatenate(parts)
        assert np.array_equal(np.sort(joined), np.arange(len(labels)))
        assert min(len(p) for p in parts) >= 5


def test_client_shards_are_disjoint_rows_of_the_training_set(federated: Fed) -> None:
    clients, test = federated
    rows = [r.tobytes() + bytes([lbl]) for c in clients for r, lbl in zip(c.X, c.y, strict=True)]
    test_rows = {r.tobytes() for r in test.X}
    assert len(rows) == 1437
    # digits contains a handful of exact duplicate images, so compare counts rather than requiring uniqueness.
    assert len(set(rows)) >= 1437 - 20
    assert sum(r[:-1] in test_rows for r in rows) <= 20


def _max_tv_distance(clients: list[ClientData]) -> float:
    total = np.bincount(np.concatenate([c.y for c in clients]), minlength=10) + 0.0
    total /= total.sum()
    return max(float(0.5 * np.abs(np.bincount(c.y, minlength=10) / len(c) - total).sum()) for c in clients)


def test_split_is_non_iid(federated: Fed) -> None:
    clients, _ = federated
    skewed = _max_tv_distance(clients)
    near_iid = _max_tv_distance(load_digits_federated(8, alpha=1000.0, seed=0)[0])
    assert skewed > 0.4, skewed
    assert near_iid < 0.15, near_iid
    assert any((np.bincount(c.y, minlength=10) == 0).any() for c in clients)  # some client lacks a class


def test_min_examples_is_guaranteed_even_when_skewed() -> None:
    labels = np.repeat(np.arange(10, dtype=np.int64), 20)
    parts = dirichlet_split(labels, 20, alpha=0.01, seed=3, min_examples=8)
    assert min(len(p) for p in parts) >= 8
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(200))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_clients": 0}, "num_clients"),
        ({"num_clients": 2, "alpha": 0.0}, "alpha"),
        ({"num_clients": 2, "alpha": float("nan")}, "alpha"),
        ({"num_clients": 200, "min_examples": 10}, "cannot give"),
    ],
)
def test_split_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(DataError, match=message):
        dirichlet_split(np.zeros(100, dtype=np.int64), **kwargs)


def test_npz_round_trip(tmp_path: Path, federated: Fed) -> None:
    shard = federated[0][3]
    path = tmp_path / "client3.npz"
    save_client_data(path, shard)
    assert path.exists() and not (tmp_path / "client3.npz.npz").exists()
    loaded = load_client_data(path)
    assert np.array_equal(loaded.X, shard.X) and np.array_equal(loaded.y, shard.y)
    assert loaded.X.dtype == np.float32 and loaded.y.dtype == np.int64


def test_load_client_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_client_data(tmp_path / "missing.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not an npz file at all")
    with pytest.raises(DataError, match="not a .npz client data file"):
        load_client_data(garbage)
    wrong_keys = tmp_path / "wrong.npz"
    np.savez(wrong_keys, features=np.zeros((2, 64)))
    with pytest.raises(DataError, match="'X' and 'y'"):
        load_client_data(wrong_keys)
    mismatch = tmp_path / "mismatch.npz"
    np.savez(mismatch, X=np.zeros((3, 64)), y=np.zeros(2, dtype=np.int64))
    with pytest.raises(DataError, match="rows"):
        load_client_data(mismatch)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(DataError, match="npz"):
        load_client_data(single)
    truncated = tmp_path / "truncated.npz"
    good = tmp_path / "good.npz"
    save_client_data(good, ClientData(X=np.zeros((4, 64), np.float32), y=np.zeros(4, np.int64)))
    truncated.write_bytes(good.read_bytes()[:-40])
    with pytest.raises(DataError):
        load_client_data(truncated)


def test_client_data_validation() -> None:
    with pytest.raises(DataError, match="float32"):
        float64_x: Any = np.zeros((2, 3))
        ClientData(X=float64_x, y=np.zeros(2, np.int64))
    with pytest.raises(DataError, match="rows"):
        ClientData(X=np.zeros((2, 3), np.float32), y=np.zeros(3, np.int64))
    with pytest.raises(DataError, match="negative"):
        ClientData(X=np.zeros((1, 3), np.float32), y=np.array([-1], np.int64))


# ---------------------------------------------------------------- model


def test_model_architecture_and_deterministic_init() -> None:
    model = build_model(SPEC, seed=0)
    shapes = {k: v.shape for k, v in get_weights(model).items()}
    assert shapes == {"0.weight": (64, 64), "0.bias": (64,), "2.weight": (10, 64), "2.bias": (10,)}
    a, b, c = initial_weights(SPEC, 0), initial_weights(SPEC, 0), initial_weights(SPEC, 1)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["0.weight"], c["0.weight"])
    assert all(v.dtype == np.float32 for v in a.values())


def test_build_model_does_not_disturb_global_rng() -> None:
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_model(SPEC, seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_set_get_weights_round_trip() -> None:
    model = build_model(SPEC, seed=0)
    target = initial_weights(SPEC, 7)
    set_weights(model, target)
    got = get_weights(model)
    assert all(np.array_equal(got[k], target[k]) for k in target)
    got["0.bias"][:] = 99.0  # a copy, not a view into the model
    assert not np.array_equal(get_weights(model)["0.bias"], got["0.bias"])


def test_model_errors() -> None:
    with pytest.raises(ModelError, match="known specs: .*mlp-digits"):
        build_model("resnet-9000", 0)
    model = build_model(SPEC, 0)
    weights = initial_weights(SPEC, 0)
    with pytest.raises(ModelError, match="missing"):
        set_weights(model, {k: v for k, v in weights.items() if k != "0.bias"})
    with pytest.raises(ModelError, match="shape"):
        set_weights(model, {**weights, "0.bias": np.zeros(3, np.float32)})
    assert "linear-digits" in MODEL_SPECS


# ---------------------------------------------------------------- training


def test_local_training_lowers_loss_on_own_data(federated: Fed) -> None:
    clients, _ = federated
    data = clients[1]
    base = initial_weights(SPEC, 0)
    calls: list[tuple[int, int]] = []
    result = train_local(SPEC, base, data, epochs=2, lr=0.1, seed=0, progress=lambda *a: calls.append(a))
    before = evaluate(SPEC, base, data).loss
    after = evaluate(SPEC, apply_delta(base, result.delta), data).loss
    assert after < before - 0.05, (before, after)
    assert result.num_examples == len(data)
    assert np.isfinite(result.loss) and result.loss > 0
    assert set(result.delta) == set(base)
    assert all(result.delta[k].shape == base[k].shape and result.delta[k].dtype == np.float32 for k in base)
    batches = 2 * -(-len(data) // 32)
    assert calls[-1] == (batches, batches) and len(calls) == batches


def test_local_training_is_deterministic(federated: Fed) -> None:
    clients, _ = federated
    base = initial_weights(SPEC, 0)
    a = train_local(SPEC, base, clients[2], seed=4)
    b = train_local(SPEC, base, clients[2], seed=4)
    c = train_local(SPEC, base, clients[2], seed=5)
    assert encode_tensors(a.delta) == encode_tensors(b.delta)
    assert a.loss == b.loss
    assert encode_tensors(a.delta) != encode_tensors(c.delta)


def test_training_does_not_modify_base(federated: Fed) -> None:
    base = initial_weights(SPEC, 0)
    snapshot = {k: v.copy() for k, v in base.items()}
    train_local(SPEC, base, federated[0][0])
    assert all(np.array_equal(base[k], snapshot[k]) for k in base)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": -1.0}, "lr"),
        ({"lr": float("inf")}, "lr"),
    ],
)
def test_training_argument_errors(federated: Fed, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TrainingError, match=message):
        train_local(SPEC, initial_weights(SPEC, 0), federated[0][0], **kwargs)


def test_training_data_errors() -> None:
    base = initial_weights(SPEC, 0)
    with pytest.raises(TrainingError, match="features"):
        train_local(SPEC, base, ClientData(X=np.zeros((4, 10), np.float32), y=np.zeros(4, np.int64)))
    with pytest.raises(TrainingError, match="out of range"):
        train_local(SPEC, base, ClientData(X=np.zeros((1, 64), np.float32), y=np.array([10], np.int64)))
    with pytest.raises(TrainingError, match="empty"):
        evaluate(SPEC, base, ClientData(X=np.zeros((0, 64), np.float32), y=np.zeros(0, np.int64)))
    with pytest.raises(ModelError, match="known specs"):
        train_local("nope", base, ClientData(X=np.zeros((1, 64), np.float32), y=np.zeros(1, np.int64)))


def test_divergence_is_reported(federated: Fed) -> None:
    with pytest.raises(TrainingError, match="smaller learning rate"):
        train_local(SPEC, initial_weights(SPEC, 0), federated[0][1], epochs=3, lr=1e30)


def test_five_round_fedavg_reaches_85_percent(federated: Fed, capsys: pytest.CaptureFixture[str]) -> None:
    """The real path: train_local -> encode -> decode -> aggregate -> apply_delta, 8 non-IID clients."""
    clients, test = federated
    start = time.perf_counter()
    weights = initial_weights(SPEC, 0)
    initial = evaluate(SPEC, weights, test).accuracy
    history = []
    for number in range(5):
        updates = []
        for i, shard in enumerate(clients):
            result = train_local(SPEC, weights, shard, epochs=5, lr=0.5, batch_size=32, seed=1000 * number + i)
            payload = encode_tensors(result.delta)  # what a client would upload
            updates.append(WeightedUpdate(f"r{number}-c{i}", decode_tensors(payload), result.num_examples))
        weights = apply_delta(weights, aggregate(updates))
        history.append(evaluate(SPEC, weights, test).accuracy)
    elapsed = time.perf_counter() - start
    with capsys.disabled():
        print(f"\nFedAvg 8 clients x 5 rounds: accuracy {[round(a, 3) for a in history]} in {elapsed:.1f}s")
    assert initial < 0.2
    assert history[-1] >= 0.85, history
