"""Seeded, deterministic central training of a digits model, shared by the HE tests and the HE benchmark.

Both the ReLU mlp-digits and its polynomial twin mlp-digits-poly are trained here the same way
(same split, seed, epochs, learning rate, batches), so the accuracy the square activation costs is
measured on equal terms.
"""

from __future__ import annotations

from dataclasses import dataclass

from fedledger.sdk.ml.data import ClientData, load_digits_federated
from fedledger.sdk.ml.model import initial_weights
from fedledger.sdk.ml.train import evaluate, train_local
from fedledger.sdk.tensors import Tensors

__all__ = ["TrainedDigits", "digits_split", "train_digits"]

# Chosen on the digits split: 40 epochs of SGD at 0.05 converge for both activations; the square
# net diverges at the federated default of 0.1 in some seeds (its gradients grow with the activation).
EPOCHS = 40
LR = 0.05
BATCH = 32


@dataclass(frozen=True, eq=False)
class TrainedDigits:
    """A trained model: its spec, weights and accuracy on the held-out test split."""

    spec: str
    weights: Tensors
    test_accuracy: float


def digits_split(seed: int = 0) -> tuple[ClientData, ClientData]:
    """The whole digits training split (one client holds it all) and the stratified 20% test split."""
    clients, test = load_digits_federated(num_clients=1, seed=seed)
    return clients[0], test


def train_digits(spec: str, seed: int = 0, epochs: int = EPOCHS, lr: float = LR) -> TrainedDigits:
    """Train spec centrally on the digits training split from its seeded initial weights; deterministic in seed."""
    train, test = digits_split(seed)
    base = initial_weights(spec, seed)
    result = train_local(spec, base, train, epochs=epochs, lr=lr, batch_size=BATCH, seed=seed)
    weights = {name: (base[name] + result.delta[name]).astype("float32") for name in sorted(base)}
    return TrainedDigits(spec=spec, weights=weights, test_accuracy=evaluate(spec, weights, test).accuracy)
