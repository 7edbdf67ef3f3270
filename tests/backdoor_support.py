"""Models with and without a backdoor, trained once per process, for the trigger and backdoor-scan tests.

Central training on the pooled digits shards (10 clients, alpha 0.3, seed 1): a clean model, and
one model per trigger kind trained on data poisoned with that trigger (half of the victims copied,
triggered and relabelled to the target). Each takes a fraction of a second.
"""

from __future__ import annotations

import functools

from fedledger.apps.experiment.datasets import FederatedData, load_federated
from fedledger.apps.experiment.triggers import KINDS, Trigger, trigger_for
from fedledger.node.aggregation.fedavg import apply_delta
from fedledger.sdk.ml.model import initial_weights
from fedledger.sdk.ml.train import train_local
from fedledger.sdk.tensors import Tensors

SPEC = "mlp-digits"
TARGET = 3
POISON_FRACTION = 0.5
EPOCHS = 10
LR = 0.1


@functools.cache
def digits() -> FederatedData:
    return load_federated("digits", 10, 0.3, 1)


def trigger(kind: str, target: int = TARGET) -> Trigger:
    made = trigger_for("digits", kind, target, "bottom-right")
    assert made is not None
    return made


@functools.cache
def _train(kind: str | None, target: int, seed: int) -> Tensors:
    base = initial_weights(SPEC, seed)
    data = digits().pooled if kind is None else trigger(kind, target).poison(digits().pooled, POISON_FRACTION, seed)
    return apply_delta(base, train_local(SPEC, base, data, epochs=EPOCHS, lr=LR, batch_size=32, seed=seed).delta)


def clean_model(seed: int = 0) -> Tensors:
    return _train(None, TARGET, seed)


def backdoored_model(kind: str, target: int = TARGET, seed: int = 0) -> Tensors:
    assert kind in KINDS
    return _train(kind, target, seed)
