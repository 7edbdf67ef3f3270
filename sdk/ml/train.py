"""Local SGD training of a registered model on one client's data, producing a weight delta."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from fedledger.abci_app.errors import ConfigError
from fedledger.sdk.ml.data import ClientData
from fedledger.sdk.ml.dpsgd import DPConfig, DPError, run_dp_sgd
from fedledger.sdk.ml.model import build_model, get_spec, get_weights, set_weights
from fedledger.sdk.tensors import Tensors

__all__ = ["EvalResult", "TrainResult", "TrainingError", "evaluate", "train_local"]


class TrainingError(ConfigError):
    """Training or evaluation cannot run (bad hyper-parameters, data that does not fit, divergence)."""

    error_code = "TRAINING"


# eq=False: field-wise == on numpy arrays is ambiguous, so identity equality is the honest choice.
@dataclass(frozen=True, eq=False)
class TrainResult:
    """Outcome of local training: delta = trained - base weights, examples used, final-epoch mean loss.

    mechanism is the DP-SGD mechanism the run executed, exactly as a tx declares it and the chain's
    accountant parses it ({noise_multiplier, sample_rate, steps}; see DPConfig.mechanism), and
    clip_norm the clipping bound C it used (canonical decimal string, for audit); both are None
    when training was not differentially private.
    """

    delta: Tensors
    num_examples: int
    loss: float
    mechanism: dict[str, object] | None = None
    clip_norm: str | None = None


@dataclass(frozen=True)
class EvalResult:
    """Accuracy in [0, 1] and mean cross-entropy loss of a model on a data set."""

    accuracy: float
    loss: float


def _check_data(spec: str, data: ClientData) -> None:
    """Raise TrainingError unless data is non-empty and fits the spec's input size and classes."""
    model_spec = get_spec(spec)
    if len(data) == 0:
        raise TrainingError("data set is empty")
    if data.X.shape[1] != model_spec.input_dim:
        raise TrainingError(
            f"data has {data.X.shape[1]} features but model {spec!r} expects {model_spec.input_dim}"
        )
    top = int(data.y.max())
    if top >= model_spec.num_classes:
        raise TrainingError(
            f"label {top} is out of range for model {spec!r} ({model_spec.num_classes} classes)"
        )


def _prepare(spec: str, weights: Mapping[str, npt.NDArray[Any]], seed: int) -> nn.Module:
    """Build spec and load weights; one torch thread because several clients share a small machine."""
    torch.set_num_threads(1)
    model: nn.Module = build_model(spec, seed)
    set_weights(model, weights)
    return model


def train_local(
    spec: str,
    base: Mapping[str, npt.NDArray[Any]],
    data: ClientData,
    epochs: int = 2,
    lr: float = 0.1,
    batch_size: int = 32,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    dp: DPConfig | None = None,
) -> TrainResult:
    """Train spec from the base weights on data with plain minibatch SGD and return the weight delta.

    Deterministic for a given seed (shuffling uses a private torch.Generator). progress, if given, is
    called after every minibatch with (batches done, total batches).

    With dp, training is DP-SGD instead (fedledger.sdk.ml.dpsgd): dp's mechanism resolved for this
    data (sample rate defaulting to batch_size / n, steps to epochs · round(1/q)) is executed exactly
    and returned in TrainResult.mechanism; progress then counts steps. The DP guarantee needs seed
    to be secret (see dpsgd.fresh_seed): anyone who knows it can regenerate the noise.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise TrainingError(f"epochs must be a positive int, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise TrainingError(f"batch_size must be a positive int, got {batch_size!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise TrainingError(f"lr must be a positive finite number, got {lr!r}")
    _check_data(spec, data)
    model = _prepare(spec, base, seed)
    base_weights = get_weights(model)  # exactly what was loaded, as float32

    X = torch.from_numpy(np.ascontiguousarray(data.X))
    y = torch.from_numpy(np.ascontiguousarray(data.y))
    n = len(data)
    if dp is not None:
        return _train_dp(model, base_weights, X, y, dp, epochs, float(lr), batch_size, seed, progress)
    batches_per_epoch = math.ceil(n / batch_size)
    total_batches = epochs * batches_per_epoch
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=float(lr))
    loss_fn = nn.CrossEntropyLoss()

    model.train()
    done = 0
    epoch_loss = 0.0
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        epoch_loss = 0.0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(X[idx]), y[idx])
            loss.backward()
            optimizer.step()
            epoch_loss += float(loss.item()) * int(idx.shape[0])
            done += 1
            if progress is not None:
                progress(done, total_batches)
    return _finish(model, base_weights, n, epoch_loss / n)


def _finish(model: nn.Module, base_weights: Tensors, n: int, mean_loss: float,
            mechanism: dict[str, object] | None = None, clip_norm: str | None = None) -> TrainResult:
    """Check the run stayed finite and package the delta."""
    if not math.isfinite(mean_loss):
        raise TrainingError(f"training diverged (loss {mean_loss}); try a smaller learning rate")
    trained = get_weights(model)
    delta = {name: (trained[name] - base_weights[name]).astype(np.float32) for name in sorted(trained)}
    if not all(np.isfinite(d).all() for d in delta.values()):
        raise TrainingError("training produced non-finite weights; try a smaller learning rate")
    return TrainResult(delta=delta, num_examples=n, loss=mean_loss, mechanism=mechanism, clip_norm=clip_norm)


def _train_dp(model: nn.Module, base_weights: Tensors, X: torch.Tensor, y: torch.Tensor, dp: DPConfig,
              epochs: int, lr: float, batch_size: int, seed: int,
              progress: Callable[[int, int], None] | None) -> TrainResult:
    """The DP-SGD branch of train_local: resolve the declared mechanism, run exactly it, report it."""
    if not isinstance(dp, DPConfig):
        raise TrainingError(f"dp must be a DPConfig or None, got {type(dp).__name__}")
    n = int(X.shape[0])
    try:
        plan = dp.plan(n, batch_size, epochs)
        mechanism = plan.mechanism()  # before training: a plan the chain would refuse is not worth running
    except DPError as exc:
        raise TrainingError(f"invalid DP-SGD configuration: {exc}") from exc
    mean_loss = run_dp_sgd(model, X, y, plan, lr, seed, progress)
    return _finish(model, base_weights, n, mean_loss, mechanism, plan.clip_norm_text)


def evaluate(spec: str, weights: Mapping[str, npt.NDArray[Any]], data: ClientData) -> EvalResult:
    """Return the accuracy and mean cross-entropy of spec with the given weights on data."""
    _check_data(spec, data)
    model = _prepare(spec, weights, seed=0)
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(np.ascontiguousarray(data.X)))
        labels = torch.from_numpy(np.ascontiguousarray(data.y))
        loss = float(nn.functional.cross_entropy(logits, labels).item())
        accuracy = float((logits.argmax(dim=1) == labels).double().mean().item())
    return EvalResult(accuracy=accuracy, loss=loss)
