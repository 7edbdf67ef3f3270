"""Model inversion against split inference: how well a decoder rebuilds raw inputs from a stage's activations."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import torch
from torch import nn

from fedledger.abci_app.errors import ConfigError
from fedledger.sdk.inference.onnx_export import export_onnx
from fedledger.sdk.inference.split import cut_points, split_model
from fedledger.sdk.ml.data import ClientData, load_digits_federated
from fedledger.sdk.ml.model import get_spec, initial_weights
from fedledger.sdk.ml.train import train_local
from fedledger.sdk.tensors import Tensors

__all__ = [
    "InversionError",
    "InversionReport",
    "format_inversion_table",
    "inversion_table",
    "measure_inversion",
    "train_digits",
]

# The decoder's size and step: one hidden layer is enough to invert the near-linear early cuts of the
# digits models, and small enough that a full sweep over every cut takes seconds on a CPU.
_DECODER_HIDDEN = 256
_DECODER_LR = 1e-2


class InversionError(ConfigError):
    """An inversion measurement was asked for with data or settings that cannot work."""

    error_code = "INVERSION"


@dataclass(frozen=True)
class InversionReport:
    """How well raw inputs are rebuilt from the activations at one cut.

    mse is the decoder's mean squared reconstruction error per input feature on the private
    inputs; baseline_mse is the error of always guessing the public data's mean input (what an
    attacker knows without seeing any activation); relative = mse / baseline_mse, below 1 when the
    activations leak something about the input; psnr in dB uses the public data's value range as
    the peak.
    """

    cut: str
    activation_dim: int
    input_dim: int
    mse: float
    baseline_mse: float
    relative: float
    psnr: float


def _as_rows(name: str, x: npt.NDArray[Any], width: int) -> npt.NDArray[np.float32]:
    """x as a finite, non-empty float32 (n, width) array, or InversionError."""
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] != width:
        raise InversionError(f"{name} must be a non-empty (n, {width}) array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise InversionError(f"{name} contains NaN or infinite values")
    return np.ascontiguousarray(arr)


def _head_activations(head: bytes, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """What the head stage hands on for inputs x, flattened to (n, activation_dim)."""
    options = ort.SessionOptions()
    # One thread: the reductions then run in a fixed order, so the activations (and the report) repeat.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(head, options, providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: x})
    return np.asarray(out, dtype=np.float32).reshape(len(x), -1)


def _train_decoder(acts: npt.NDArray[np.float32], x: npt.NDArray[np.float32], epochs: int,
                   seed: int) -> nn.Module:
    """An MLP from activations to inputs, trained full-batch with Adam on the attacker's public pairs."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        decoder = nn.Sequential(nn.Linear(acts.shape[1], _DECODER_HIDDEN), nn.ReLU(),
                                nn.Linear(_DECODER_HIDDEN, x.shape[1]))
    optimizer = torch.optim.Adam(decoder.parameters(), lr=_DECODER_LR)
    loss_fn = nn.MSELoss()
    inputs, targets = torch.from_numpy(acts), torch.from_numpy(x)
    for _ in range(epochs):
        optimizer.zero_grad()
        loss = loss_fn(decoder(inputs), targets)
        loss.backward()
        optimizer.step()
    return decoder


def measure_inversion(spec_name: str, tensors: Mapping[str, npt.NDArray[Any]], cut: str,
                      public_x: npt.NDArray[Any], private_x: npt.NDArray[Any], *, epochs: int = 60,
                      seed: int = 0) -> InversionReport:
    """Attack the head stage of spec_name (with tensors) split at cut, and report how well it is inverted.

    The attacker runs the head on its public inputs public_x, trains a decoder from the
    activations back to the inputs (epochs full-batch Adam steps, seeded by seed), and is scored
    on private_x, the inputs whose activations it would see during split inference. Deterministic
    for the same arguments. Raises InversionError for unusable data or settings, SplitError for a
    cut that is not a cut point, ModelError for weights that do not fit the spec.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise InversionError(f"epochs must be a positive int, got {epochs!r}")
    spec = get_spec(spec_name)
    public = _as_rows("public_x", public_x, spec.input_dim)
    private = _as_rows("private_x", private_x, spec.input_dim)
    head, _ = split_model(export_onnx(spec_name, tensors), [cut])
    public_acts, private_acts = _head_activations(head, public), _head_activations(head, private)
    # Centred and scaled with the public statistics only (the attacker never sees private data), so one
    # Adam step size suits every cut. One scale for all units rather than one per unit: a unit almost
    # never active on the public data would otherwise blow its rare private activations up.
    mean = public_acts.mean(axis=0)
    scale = float(np.sqrt(np.mean(public_acts.var(axis=0))))
    std = np.float32(scale if scale > 1e-12 else 1.0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as for the head: a fixed reduction order makes the result repeat
    try:
        decoder = _train_decoder((public_acts - mean) / std, public, epochs, seed)
        with torch.no_grad():
            rebuilt = decoder(torch.from_numpy((private_acts - mean) / std)).numpy()
    finally:
        torch.set_num_threads(threads)
    mse = float(np.mean((rebuilt.astype(np.float64) - private) ** 2))
    baseline = float(np.mean((public.mean(axis=0, dtype=np.float64) - private) ** 2))
    peak = float(public.max() - public.min())
    psnr = 10.0 * math.log10(peak**2 / mse) if mse > 0 and peak > 0 else math.inf
    return InversionReport(cut=cut, activation_dim=int(public_acts.shape[1]), input_dim=spec.input_dim, mse=mse,
                           baseline_mse=baseline, relative=mse / baseline if baseline > 0 else math.inf, psnr=psnr)


def train_digits(spec_name: str = "mlp-digits-wide", *, epochs: int = 5, seed: int = 0
                 ) -> tuple[Tensors, ClientData, ClientData]:
    """Train spec_name centrally on digits (plain SGD) and return (weights, training set, test set)."""
    (train,), test = load_digits_federated(1, seed=seed)
    base = initial_weights(spec_name, seed)
    result = train_local(spec_name, base, train, epochs=epochs, lr=0.1, seed=seed)
    weights = {name: (base[name] + result.delta[name]).astype(np.float32) for name in base}
    return weights, train, test


def inversion_table(spec_name: str = "mlp-digits-wide", *, train_epochs: int = 5, epochs: int = 60,
                    private_examples: int = 500, seed: int = 0) -> list[InversionReport]:
    """The InversionReport at every cut point of spec_name trained briefly on digits.

    The model is trained on the digits training split (the clients' private data); the attacker's
    public data is the disjoint test split, and it is scored on a seeded sample of private_examples
    training inputs, the ones whose activations it would see while serving a stage.
    """
    if private_examples < 1:
        raise InversionError(f"private_examples must be >= 1, got {private_examples}")
    weights, train, test = train_digits(spec_name, epochs=train_epochs, seed=seed)
    pick = np.random.default_rng([seed, 21]).permutation(len(train))[:private_examples]
    private = train.X[np.sort(pick)]
    cuts = cut_points(export_onnx(spec_name, weights))
    return [measure_inversion(spec_name, weights, cut, test.X, private, epochs=epochs, seed=seed) for cut in cuts]


def format_inversion_table(reports: list[InversionReport]) -> str:
    """The reports as an aligned text table, one row per cut."""
    lines = [f"{'cut':<12} {'act dim':>7} {'mse':>9} {'baseline':>9} {'relative':>8} {'psnr dB':>7}"]
    lines += [f"{r.cut:<12} {r.activation_dim:>7} {r.mse:>9.5f} {r.baseline_mse:>9.5f} {r.relative:>8.3f} "
              f"{r.psnr:>7.2f}" for r in reports]
    return "\n".join(lines)
