"""Evaluator probes: canary accuracy, and a backdoor probe that stamps a fixed trigger and measures attack success.

A backdoored model behaves normally on clean inputs but classifies any input carrying the
attacker's trigger as the attacker's target label. The probe stamps a fixed trigger (a small
bright square in a corner of the image: 8x8 digits by default, 28x28 MNIST with side=28) on
canary images whose true label is not the target and reports the attack success rate (ASR): the
share of them classified as the target. A model that ignores the trigger scores its ordinary rate
of mistaking those images for the target (the base rate, also reported); a backdoored one scores
near 1.

torch is only imported inside the functions that run a model (through fedledger.sdk.ml.train),
so importing this module, like everything under node/, never loads torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.abci_app.errors import ConfigError
from fedledger.sdk.ml.data import ClientData

__all__ = [
    "CORNERS",
    "PPM",
    "CanaryResult",
    "ProbeError",
    "ProbeResult",
    "TriggerProbe",
    "attack_success_rate",
    "canary_accuracy",
    "to_ppm",
]

PPM = 1_000_000
CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")


class ProbeError(ConfigError):
    """A probe is misconfigured, or the data cannot run it (no image of a non-target label, wrong size)."""

    error_code = "PROBE"


def to_ppm(count: int, total: int, *, round_up: bool) -> int:
    """count/total in millionths as an exact integer, rounded down or up (the caller picks the cautious side)."""
    if total <= 0 or not 0 <= count <= total:
        raise ProbeError(f"cannot express {count} of {total} as a rate")
    scaled = count * PPM
    return -(-scaled // total) if round_up else scaled // total


@dataclass(frozen=True)
class TriggerProbe:
    """A fixed trigger (a `patch` x `patch` square of `value` in `corner` of a side x side image) and its target."""

    target_label: int = 0
    patch: int = 2
    corner: str = "bottom-right"
    value: float = 1.0  # image features are scaled to [0, 1] (digits /16, MNIST /255): 1.0 is the brightest pixel
    side: int = 8

    def __post_init__(self) -> None:
        if isinstance(self.target_label, bool) or not isinstance(self.target_label, int) or self.target_label < 0:
            raise ProbeError(f"target_label must be a non-negative int, got {self.target_label!r}")
        if isinstance(self.side, bool) or not isinstance(self.side, int) or self.side < 1:
            raise ProbeError(f"side must be a positive int, got {self.side!r}")
        if isinstance(self.patch, bool) or not isinstance(self.patch, int) or not 1 <= self.patch <= self.side:
            raise ProbeError(f"patch must be an int in [1, {self.side}], got {self.patch!r}")
        if self.corner not in CORNERS:
            raise ProbeError(f"corner must be one of {list(CORNERS)}, got {self.corner!r}")
        if not isinstance(self.value, (int, float)) or not math.isfinite(self.value):
            raise ProbeError(f"value must be a finite number, got {self.value!r}")

    def pixel_indices(self) -> list[int]:
        """Indices of the trigger's pixels in a flattened (row-major) image, ascending."""
        top = 0 if self.corner.startswith("top") else self.side - self.patch
        left = 0 if self.corner.endswith("left") else self.side - self.patch
        return sorted(r * self.side + c for r in range(top, top + self.patch) for c in range(left, left + self.patch))

    def _check_features(self, X: npt.NDArray[np.float32]) -> None:
        if X.ndim != 2 or X.shape[1] != self.side * self.side:
            raise ProbeError(f"the trigger is for {self.side}x{self.side} images ({self.side * self.side} features), "
                             f"got data of shape {X.shape}")

    def stamp(self, X: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """A copy of the images X (n, side*side) with the trigger stamped on each."""
        self._check_features(X)
        out = np.array(X, dtype=np.float32, copy=True)
        out[:, self.pixel_indices()] = np.float32(self.value)
        return out

    def victims(self, data: ClientData) -> ClientData:
        """The examples the attack is measured on: those whose true label is not the target (clean, labels kept)."""
        self._check_features(data.X)
        keep = data.y != self.target_label
        if not keep.any():
            raise ProbeError(f"the data holds no example whose label is not the target {self.target_label}")
        return ClientData(X=np.ascontiguousarray(data.X[keep]), y=np.ascontiguousarray(data.y[keep]))

    def triggered(self, data: ClientData) -> ClientData:
        """The victims with the trigger stamped on, labelled with the target (what a backdoored model outputs)."""
        victims = self.victims(data)
        return ClientData(X=self.stamp(victims.X), y=np.full(len(victims), self.target_label, dtype=np.int64))

    def poison(self, data: ClientData, fraction: float, seed: int = 0) -> ClientData:
        """Training data for a backdoor attack: data plus triggered, target-labelled copies of a fraction of victims.

        What a malicious client would train on; used to test that the probe catches such a model.
        """
        if not 0 < fraction <= 1:
            raise ProbeError(f"fraction must be in (0, 1], got {fraction!r}")
        bad = self.triggered(data)
        rng = np.random.default_rng(seed)
        pick = rng.permutation(len(bad))[: max(1, int(round(fraction * len(bad))))]
        X = np.concatenate([data.X, bad.X[pick]]).astype(np.float32)
        y = np.concatenate([data.y, bad.y[pick]]).astype(np.int64)
        order = rng.permutation(len(y))
        return ClientData(X=np.ascontiguousarray(X[order]), y=np.ascontiguousarray(y[order]))

    def describe(self) -> dict[str, Any]:
        """The probe's settings, for the evaluator's metrics JSON."""
        return {"kind": "patch-trigger", "target_label": self.target_label, "patch": self.patch,
                "corner": self.corner, "value": float(self.value), "side": self.side,
                "pixels": self.pixel_indices()}


@dataclass(frozen=True)
class CanaryResult:
    """A model's accuracy on a canary set: correct of n, its ppm (rounded down) and the mean loss."""

    n: int
    correct: int
    accuracy_ppm: int
    loss: float


@dataclass(frozen=True)
class ProbeResult:
    """Attack success on the victims: `hits` of n triggered images went to the target (ppm rounded up).

    base_hits / base_rate_ppm: the same victims without the trigger classified as the target, i.e.
    what a model that ignores the trigger would score.
    """

    n: int
    hits: int
    asr_ppm: int
    base_hits: int
    base_rate_ppm: int


def _count(accuracy: float, n: int) -> int:
    """Turn evaluate()'s accuracy back into the exact count it was computed from."""
    return int(round(accuracy * n))


def canary_accuracy(spec: str, weights: Mapping[str, npt.NDArray[Any]], canary: ClientData) -> CanaryResult:
    """Accuracy of spec with weights on the canary set (raises TrainingError/ModelError from client.train)."""
    from fedledger.sdk.ml.train import evaluate  # lazily: loads torch

    result = evaluate(spec, weights, canary)
    n = len(canary)
    correct = _count(result.accuracy, n)
    return CanaryResult(n=n, correct=correct, accuracy_ppm=to_ppm(correct, n, round_up=False), loss=result.loss)


def attack_success_rate(spec: str, weights: Mapping[str, npt.NDArray[Any]], canary: ClientData,
                        probe: TriggerProbe) -> ProbeResult:
    """The probe's ASR for spec with weights on the canary set's victims, with the trigger-free base rate."""
    from fedledger.sdk.ml.train import evaluate  # lazily: loads torch

    victims = probe.victims(canary)
    n = len(victims)
    target = np.full(n, probe.target_label, dtype=np.int64)
    # Accuracy against an all-target labelling is exactly the share classified as the target.
    hits = _count(evaluate(spec, weights, ClientData(X=probe.stamp(victims.X), y=target)).accuracy, n)
    base = _count(evaluate(spec, weights, ClientData(X=victims.X, y=target)).accuracy, n)
    return ProbeResult(n=n, hits=hits, asr_ppm=to_ppm(hits, n, round_up=True), base_hits=base,
                       base_rate_ppm=to_ppm(base, n, round_up=True))
