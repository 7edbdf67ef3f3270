"""Byzantine attacks: on a client's training data (label flip, backdoor) or on its update vector.

Scaling is model replacement (Bagdasaryan et al. 2020): the attacker trains on backdoored data
(label-flipped where the data set has no trigger) and scales that update up, so the backdoor
survives averaging with the benign updates.

Update attacks act on flattened updates (`fedledger.sdk.flat`). ALIE and IPM are
omniscient: they read the round's benign updates, as in their papers (Baruch et al. 2019, "A
Little Is Enough"; Xie et al. 2020, inner-product manipulation).

Free riders (Lin et al. 2019; Fraboni et al. 2021) claim their examples without training. A
zero update would be caught by the most naive check (an exact zero row), so the free rider sends
a disguised one: Gaussian noise whose expected norm is a tenth of the round's median benign norm
(times `attack_scale`), a size a participant can estimate from how far the global model moves
between rounds. It aims to be paid, not to do damage, so it stays small.

Sybil attackers submit a sign-flipped update (−scale·u) from every identity they control: the
attacker's own and the `sybils` extra ones it tries to enroll (`common.local_updates` counts the
extra identities where a method has no admission control; FedLedger's chain refuses them at
admission, see `ledger.Ledger.attempt_sybils`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from fedledger.abci_app.errors import ConfigError
from fedledger.apps.experiment.triggers import Trigger
from fedledger.node.probes import TriggerProbe
from fedledger.sdk.ml.data import ClientData

__all__ = ["DATA_ATTACKS", "UPDATE_ATTACKS", "AttackError", "alie_z", "attack_data", "attack_updates"]

DATA_ATTACKS = ("label_flip", "backdoor")
UPDATE_ATTACKS = ("sign_flip", "scaling", "gaussian", "alie", "ipm", "free_rider", "sybil")
_BACKDOOR_FRACTION = 0.5
_FREE_RIDER_RATIO = 0.1  # the free rider's noise norm, as a share of the median benign update norm

Vector = npt.NDArray[np.float32]


class AttackError(ConfigError):
    """An unknown attack, or one that cannot run on the given data (a backdoor without a trigger)."""

    error_code = "ATTACK"


def attack_data(attack: str, data: ClientData, num_classes: int, probe: Trigger | TriggerProbe | None,
                seed: int) -> ClientData:
    """A Byzantine client's poisoned training data; benign data for update attacks and "none".

    probe is the attacker's trigger (an experiment.triggers.Trigger; the evaluator's old
    TriggerProbe is still accepted while the harness moves over).
    """
    if attack == "label_flip":
        return ClientData(X=data.X, y=(num_classes - 1 - data.y).astype(np.int64))
    if attack == "scaling":  # model replacement: a backdoored (or label-flipped) update, scaled in attack_updates
        if probe is None:
            return ClientData(X=data.X, y=(num_classes - 1 - data.y).astype(np.int64))
        return probe.poison(data, _BACKDOOR_FRACTION, seed)
    if attack == "backdoor":
        if probe is None:
            raise AttackError("the backdoor attack needs an image data set with a trigger (digits or mnist)")
        return probe.poison(data, _BACKDOOR_FRACTION, seed)
    return data


def alie_z(n: int, f: int) -> float:
    """ALIE's z_max: the largest shift (in stds) that still hides among the ⌊n/2⌋+1−f benign supporters needed."""
    s = n // 2 + 1 - f
    p = (n - s) / n
    if not 0 < p < 1:
        return 1.0
    return float(NormalDist().inv_cdf(p))


def attack_updates(attack: str, mine: Sequence[Vector], benign: Sequence[Vector], scale: float,
                   rng: np.random.Generator, n_total: int) -> list[Vector]:
    """The vectors the Byzantine clients submit, from their honest updates `mine` and the round's `benign` ones.

    sign_flip: −scale·u; scaling (model replacement, u trained on poisoned data): scale·u;
    gaussian: N(0, (scale·‖u‖/√d)²)
    per coordinate; alie: mean − z·std of the benign updates (z from alie_z, times scale); ipm:
    −scale·mean of the benign updates; free_rider: N(0, σ²) per coordinate with
    σ = scale·0.1·median‖benign‖/√d, its honest update `mine` unused (zero rows when the round has no
    benign update to size the noise from); sybil: −scale·u, as sign_flip. Data attacks and "none"
    return `mine` unchanged.
    """
    if attack in ("none", *DATA_ATTACKS):
        return [np.asarray(u, dtype=np.float32) for u in mine]
    if attack not in UPDATE_ATTACKS:
        raise AttackError(f"unknown attack {attack!r}; known: {['none', *DATA_ATTACKS, *UPDATE_ATTACKS]}")
    if attack in ("sign_flip", "sybil"):
        return [(-scale * u).astype(np.float32) for u in mine]
    if attack == "scaling":
        return [(scale * u).astype(np.float32) for u in mine]
    if attack == "gaussian":
        out = []
        for u in mine:
            std = scale * float(np.linalg.norm(u)) / math.sqrt(max(1, u.size))
            out.append(rng.normal(0.0, std, size=u.shape).astype(np.float32))
        return out
    if attack == "free_rider":
        typical = float(np.median([np.linalg.norm(b) for b in benign])) if benign else 0.0
        out = []
        for u in mine:
            std = scale * _FREE_RIDER_RATIO * typical / math.sqrt(max(1, u.size))
            out.append(rng.normal(0.0, std, size=u.shape).astype(np.float32))
        return out
    reference = np.stack(list(benign) if benign else list(mine)).astype(np.float64)
    mean = reference.mean(axis=0)
    if attack == "ipm":
        return [(-scale * mean).astype(np.float32) for _ in mine]
    z = alie_z(n_total, len(mine)) * scale
    return [(mean - z * reference.std(axis=0)).astype(np.float32) for _ in mine]
