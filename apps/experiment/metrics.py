"""Experiment metrics computed from a model's real outputs: accuracy, macro-F1, ASR, membership-inference AUC.

All of them run the registered torch model (`fedledger.sdk.ml.model`) on numpy data; nothing is
estimated from training logs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from fedledger.sdk.ml.data import ClientData
from fedledger.sdk.tensors import encode_tensors

__all__ = ["BackdoorTrigger", "accuracy", "auc", "backdoor_asr", "example_losses", "logits", "macro_f1", "mia_auc",
           "payload_bytes", "predict", "rounds_to_target"]


def logits(spec: str, weights: Mapping[str, npt.NDArray[Any]], X: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """The registered torch model's raw outputs on X (one thread, eval mode, no gradients), as float64."""
    import torch

    from fedledger.sdk.ml.model import build_model, set_weights

    torch.set_num_threads(1)
    model = build_model(spec, 0)
    set_weights(model, weights)
    model.eval()
    with torch.no_grad():
        out = model(torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)))
    return np.asarray(out.double().numpy())


def predict(spec: str, weights: Mapping[str, npt.NDArray[Any]], X: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
    """The model's top-1 class for each row of X."""
    return np.asarray(logits(spec, weights, X).argmax(axis=1), dtype=np.int64)


def example_losses(spec: str, weights: Mapping[str, npt.NDArray[Any]], data: ClientData) -> npt.NDArray[np.float64]:
    """Per-example cross-entropy, computed stably from the logits (log-sum-exp minus the true logit)."""
    z = logits(spec, weights, data.X)
    top = z.max(axis=1, keepdims=True)
    lse = top[:, 0] + np.log(np.exp(z - top).sum(axis=1))
    return np.asarray(lse - z[np.arange(len(data)), data.y])


def accuracy(y_true: npt.NDArray[np.int64], y_pred: npt.NDArray[np.int64]) -> float:
    """Share of exact matches (top-1 accuracy)."""
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(f"need two equal, non-empty label arrays, got {y_true.shape} and {y_pred.shape}")
    return float(np.mean(y_true == y_pred))


def macro_f1(y_true: npt.NDArray[np.int64], y_pred: npt.NDArray[np.int64], num_classes: int) -> float:
    """Unweighted mean over classes of F1 = 2·TP / (2·TP + FP + FN); a class absent from both scores 0."""
    accuracy(y_true, y_pred)  # shape check
    scores = []
    for c in range(num_classes):
        tp = int(np.sum((y_pred == c) & (y_true == c)))
        fp = int(np.sum((y_pred == c) & (y_true != c)))
        fn = int(np.sum((y_pred != c) & (y_true == c)))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return float(np.mean(scores))


def rounds_to_target(curve: Sequence[float], target: float) -> int | None:
    """The first round (1-based) whose accuracy reaches target, or None if none does."""
    for i, value in enumerate(curve, start=1):
        if value >= target:
            return i
    return None


class BackdoorTrigger(Protocol):
    """What backdoor_asr needs of a trigger: the attacker's (experiment.triggers.Trigger) or the old TriggerProbe."""

    @property
    def target_label(self) -> int:
        """The label the trigger sends an image to."""
        ...

    def victims(self, data: ClientData) -> ClientData:
        """The examples whose true label is not the target."""
        ...

    def stamp(self, X: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """A copy of the images X with the trigger applied."""
        ...


def backdoor_asr(spec: str, weights: Mapping[str, npt.NDArray[Any]], test: ClientData,
                 probe: BackdoorTrigger) -> float:
    """Share of non-target test images that the trigger sends to the target label."""
    victims = probe.victims(test)
    return float(np.mean(predict(spec, weights, probe.stamp(victims.X)) == probe.target_label))


def auc(positive: npt.NDArray[np.float64], negative: npt.NDArray[np.float64]) -> float:
    """P(score of a random positive > that of a random negative) + ½·P(tie): the ROC AUC (Mann-Whitney)."""
    if positive.size == 0 or negative.size == 0:
        raise ValueError("AUC needs at least one positive and one negative score")
    scores = np.concatenate([positive, negative])
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(scores.size, dtype=np.float64)
    sorted_scores = scores[order]
    i = 0
    while i < scores.size:  # average ranks over ties
        j = i
        while j + 1 < scores.size and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    n_pos, n_neg = positive.size, negative.size
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def mia_auc(spec: str, weights: Mapping[str, npt.NDArray[Any]], members: ClientData, non_members: ClientData,
            seed: int) -> float:
    """Loss-threshold membership inference (Yeom et al. 2018): AUC of −loss separating members from non-members.

    Both samples are matched class by class (the same number of each label, seeded), so 0.5 is a
    guess and 1.0 a perfect attack. Matching matters when members are a label-skewed sample (a few
    emulated clients): otherwise a model that merely prefers the members' frequent classes would
    "detect" membership without remembering any example.
    """
    rng = np.random.default_rng([seed, 11])
    pick_m: list[int] = []
    pick_n: list[int] = []
    for label in np.unique(members.y):
        m_idx, n_idx = np.flatnonzero(members.y == label), np.flatnonzero(non_members.y == label)
        k = min(len(m_idx), len(n_idx))
        pick_m += rng.permutation(m_idx)[:k].tolist()
        pick_n += rng.permutation(n_idx)[:k].tolist()
    if not pick_m:
        raise ValueError("members and non-members share no label: membership inference cannot be matched")
    mem = ClientData(X=np.ascontiguousarray(members.X[pick_m]), y=np.ascontiguousarray(members.y[pick_m]))
    non = ClientData(X=np.ascontiguousarray(non_members.X[pick_n]), y=np.ascontiguousarray(non_members.y[pick_n]))
    return auc(-example_losses(spec, weights, mem), -example_losses(spec, weights, non))


def payload_bytes(tensors: Mapping[str, npt.NDArray[Any]]) -> int:
    """Bytes of a plaintext update as clients upload it (the canonical tensor codec of fedledger.sdk.tensors)."""
    return len(encode_tensors(tensors))
