"""Attacker-side backdoor triggers: a BadNets pixel pattern, a solid corner square, or a blended noise image.

These triggers belong to the attack. The defense does not see them: the evaluator's trigger-free
scan lives in fedledger.node.backdoor_scan, and a static test keeps node/ from importing this module.

There are three kinds, each stamped on flat rows of side x side images whose features lie in [0, 1]:

- ``pixel_pattern`` (Gu et al. 2017, BadNets): a size x size checkerboard of bright (1.0) and
  dark (0.0) pixels at ``location``. The whole patch is written, dark cells included, so the
  trigger looks the same whatever lies beneath it;
- ``corner_square``: a solid size x size square of bright pixels at ``location``;
- ``blend`` (Chen et al. 2017, blended injection): x' = (1 - alpha)·x + alpha·noise over the
  whole image. The noise is one fixed uniform [0, 1] image drawn from a constant seed.
  ``location`` and ``size`` do not apply to it and are ignored. Since x' is a convex mix of two
  images in [0, 1], it stays in [0, 1].

A Trigger also duck-types the evaluator's old TriggerProbe (``target_label``, ``victims``,
``stamp``, ``poison``), so ``metrics.backdoor_asr`` and ``attacks.attack_data`` accept it unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.abci_app.errors import ConfigError
from fedledger.sdk.ml.data import ClientData

__all__ = ["KINDS", "LOCATIONS", "Trigger", "TriggerError", "trigger_for"]

KINDS = ("pixel_pattern", "corner_square", "blend")
LOCATIONS = ("top-left", "top-right", "bottom-left", "bottom-right", "center")
# The image side of each image data set. Any other data set has no image, so it gets no trigger.
_SIDES = {"digits": 8, "mnist": 28}
_NON_IMAGE = ("breast_cancer", "basic_motions")
_BLEND_SEED = 20170516  # a constant, so every attacker of a run, and every run, blends the same noise
_DEFAULT_ALPHA = 0.2  # the blend ratio Chen et al. report as both hard to see and learnable


class TriggerError(ConfigError):
    """A trigger is misconfigured (the message names the field), or data does not fit it."""

    error_code = "TRIGGER"


def _default_size(kind: str, side: int) -> int:
    """How big the patch is when none is given: small enough to hide, big enough to learn."""
    if kind == "pixel_pattern":
        return 3 if side < 16 else 5  # odd, so the checkerboard's corners are all bright
    return 2 if side < 16 else 4  # corner_square: 2x2 on 8x8 digits, 4x4 on 28x28 MNIST


@dataclass(frozen=True)
class Trigger:
    """One attacker's trigger: its kind, its target label, where it goes and how big it is (see the module doc).

    ``size`` (the patch side in pixels) defaults by kind and image side. ``alpha`` is the blend
    ratio and is used only by ``blend``.
    """

    kind: str
    target: int
    location: str = "bottom-right"
    side: int = 8
    size: int | None = None
    alpha: float = _DEFAULT_ALPHA

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise TriggerError(f"kind must be one of {list(KINDS)}, got {self.kind!r}")
        if isinstance(self.target, bool) or not isinstance(self.target, int) or self.target < 0:
            raise TriggerError(f"target must be a non-negative int, got {self.target!r}")
        if self.location not in LOCATIONS:
            raise TriggerError(f"location must be one of {list(LOCATIONS)}, got {self.location!r}")
        if isinstance(self.side, bool) or not isinstance(self.side, int) or self.side < 2:
            raise TriggerError(f"side must be an int >= 2, got {self.side!r}")
        if self.size is not None and (isinstance(self.size, bool) or not isinstance(self.size, int)
                                      or not 1 <= self.size <= self.side):
            raise TriggerError(f"size must be an int in [1, {self.side}] or None, got {self.size!r}")
        if (isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float))
                or not math.isfinite(self.alpha) or not 0 < self.alpha <= 1):
            raise TriggerError(f"alpha must be a number in (0, 1], got {self.alpha!r}")

    @property
    def target_label(self) -> int:
        """The label the trigger sends an image to (the name the evaluator's TriggerProbe uses)."""
        return self.target

    @property
    def patch_size(self) -> int:
        """The patch's side in pixels (the whole image for blend)."""
        if self.kind == "blend":
            return self.side
        return self.size if self.size is not None else _default_size(self.kind, self.side)

    def _origin(self) -> tuple[int, int]:
        """Row and column of the patch's top-left pixel."""
        free = self.side - self.patch_size
        if self.location == "center":
            return free // 2, free // 2
        return (0 if self.location.startswith("top") else free), (0 if self.location.endswith("left") else free)

    def pattern(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """The flat pixel indices the trigger writes and the values it writes there (patch kinds only)."""
        if self.kind == "blend":
            raise TriggerError("kind 'blend' mixes the whole image; it has no pixel pattern")
        k = self.patch_size
        top, left = self._origin()
        rows, cols = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
        indices = ((top + rows) * self.side + (left + cols)).reshape(-1).astype(np.int64)
        if self.kind == "corner_square":
            values = np.ones(k * k, dtype=np.float32)
        else:  # checkerboard: bright where row + column is even, dark elsewhere
            values = ((rows + cols) % 2 == 0).reshape(-1).astype(np.float32)
        return indices, values

    def noise(self) -> npt.NDArray[np.float32]:
        """The blend kind's fixed noise image (side*side values, uniform in [0, 1], from a constant seed)."""
        return np.random.default_rng(_BLEND_SEED).random(self.side * self.side).astype(np.float32)

    def _check_features(self, X: npt.NDArray[Any]) -> None:
        if X.ndim != 2 or X.shape[1] != self.side * self.side:
            raise TriggerError(f"the trigger is for {self.side}x{self.side} images ({self.side * self.side} "
                               f"features), got data of shape {X.shape}")

    def stamp(self, X: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
        """A float32 copy of the images X (n, side*side) with the trigger applied to each row."""
        self._check_features(X)
        out = np.array(X, dtype=np.float32, copy=True)
        if self.kind == "blend":
            a = np.float32(self.alpha)
            return np.asarray((np.float32(1) - a) * out + a * self.noise()[None, :], dtype=np.float32)
        indices, values = self.pattern()
        out[:, indices] = values[None, :]
        return out

    def victims(self, data: ClientData) -> ClientData:
        """The examples the attack is aimed at: those whose true label is not the target (clean, labels kept)."""
        self._check_features(data.X)
        keep = data.y != self.target
        if not keep.any():
            raise TriggerError(f"the data holds no example whose label is not the target {self.target}")
        return ClientData(X=np.ascontiguousarray(data.X[keep]), y=np.ascontiguousarray(data.y[keep]))

    def triggered(self, data: ClientData) -> ClientData:
        """The victims with the trigger applied, each labelled with the target."""
        victims = self.victims(data)
        return ClientData(X=self.stamp(victims.X), y=np.full(len(victims), self.target, dtype=np.int64))

    def poison(self, data: ClientData, fraction: float, seed: int = 0) -> ClientData:
        """A malicious client's training set: data plus triggered, target-labelled copies of a fraction of victims.

        At least one copy is added. The result is shuffled with a seeded generator, so the same
        (data, fraction, seed) always gives the same set.
        """
        if (isinstance(fraction, bool) or not isinstance(fraction, (int, float))
                or not math.isfinite(fraction) or not 0 < fraction <= 1):
            raise TriggerError(f"fraction must be in (0, 1], got {fraction!r}")
        bad = self.triggered(data)
        rng = np.random.default_rng(seed)
        pick = rng.permutation(len(bad))[: max(1, int(round(fraction * len(bad))))]
        X = np.concatenate([data.X, bad.X[pick]]).astype(np.float32)
        y = np.concatenate([data.y, bad.y[pick]]).astype(np.int64)
        order = rng.permutation(len(y))
        return ClientData(X=np.ascontiguousarray(X[order]), y=np.ascontiguousarray(y[order]))

    def describe(self) -> dict[str, Any]:
        """The trigger's settings as plain JSON values, for run reports (the attack's side, never the evaluator's)."""
        out: dict[str, Any] = {"kind": self.kind, "target_label": self.target, "side": self.side}
        if self.kind == "blend":
            out.update(alpha=float(self.alpha), noise_seed=_BLEND_SEED)
        else:
            out.update(location=self.location, size=self.patch_size, pixels=self.pattern()[0].tolist())
        return out


def trigger_for(dataset: str, kind: str, target: int, location: str = "bottom-right") -> Trigger | None:
    """The trigger of `kind` for an image data set (digits: 8x8, mnist: 28x28), or None for a non-image one."""
    if dataset in _NON_IMAGE:
        return None
    if dataset not in _SIDES:
        raise TriggerError(f"dataset must be one of {sorted([*_SIDES, *_NON_IMAGE])}, got {dataset!r}")
    return Trigger(kind=kind, target=target, location=location, side=_SIDES[dataset])
