"""What every method of a run shares: the run's data and attackers, local training, and the result record."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.apps.experiment.attacks import attack_data, attack_updates
from fedledger.apps.experiment.config import ExperimentConfig, training_lr
from fedledger.apps.experiment.datasets import FederatedData
from fedledger.apps.experiment.pool import InlinePool, TrainJob, TrainPool
from fedledger.apps.experiment.triggers import Trigger, trigger_for
from fedledger.sdk.flat import Layout, flatten, layout_of
from fedledger.sdk.ml.data import ClientData
from fedledger.sdk.ml.dpsgd import DPConfig
from fedledger.sdk.tensors import Tensors

__all__ = ["NO_ADMISSION", "ClientUpdate", "RunContext", "RunResult", "baseline_selection", "derive_int", "derive_seed",
           "dropped_positions",
           "local_updates", "online_clients", "round_updates"]


# Methods with no admission control: anyone can join with as many identities as it likes (FedLedger's
# chain admits members only with an organization's credential, up to the organization's enrollment cap).
NO_ADMISSION = ("fedavg", "fedavg_dp_secagg", "robust_plain")


def derive_seed(seed: int, *parts: object) -> bytes:
    """32 bytes for one purpose of one run, from the run's seed and labels (never the global RNG)."""
    return hashlib.sha256("/".join(str(p) for p in (seed, *parts)).encode()).digest()


def derive_int(seed: int, *parts: object) -> int:
    """A 31-bit integer seed for torch/numpy from derive_seed."""
    return int.from_bytes(derive_seed(seed, *parts)[:4], "big") & 0x7FFFFFFF


@dataclass(frozen=True, eq=False)
class RunContext:
    """One (method, attack, seed) run's fixed inputs: config, shards (poisoned for attackers), Byzantine set."""

    cfg: ExperimentConfig
    method: str
    attack: str
    seed: int
    data: FederatedData
    shards: tuple[ClientData, ...]  # what each client trains on (attackers' data already poisoned)
    byzantine: frozenset[int]
    # The attackers' trigger: it poisons their data and measures the ASR; no defense ever reads it.
    probe: Trigger | None
    dp: DPConfig | None  # DP-SGD (dp_mode "dpsgd"); None for distributed DP and the non-private methods
    pool: TrainPool = field(default_factory=InlinePool)

    @property
    def distributed_dp(self) -> bool:
        """True if this run's clients clip their whole update and add distributed noise under SecAgg."""
        return self.cfg.dp_mode == "distributed" and self.method in ("fedavg_dp_secagg", "fedledger")

    @staticmethod
    def build(cfg: ExperimentConfig, method: str, attack: str, seed: int, data: FederatedData,
              pool: TrainPool | None = None) -> RunContext:
        """Pick the attackers (seeded) and poison their data for data attacks."""
        byz: frozenset[int] = frozenset()
        if attack != "none" and method != "centralized":
            order = np.random.default_rng([seed, 3]).permutation(cfg.clients)
            byz = frozenset(int(i) for i in order[:cfg.num_byzantine])
        probe = trigger_for(cfg.dataset, cfg.backdoor_trigger, cfg.backdoor_target, cfg.backdoor_location)
        shards = tuple(attack_data(attack, d, data.num_classes, probe, derive_int(seed, "poison", i)) if i in byz
                       else d for i, d in enumerate(data.clients))
        dp = None
        if method in ("fedavg_dp_secagg", "fedledger") and cfg.dp_mode == "dpsgd":
            dp = DPConfig(noise_multiplier=cfg.noise_multiplier, sample_rate=cfg.sample_rate,
                          clip_norm=cfg.clip_norm, steps=cfg.dp_steps)
        return RunContext(cfg, method, attack, seed, data, shards, byz, probe, dp, pool or InlinePool())


def online_clients(ctx: RunContext, number: int) -> list[int]:
    """The clients online at the start of round number: each with probability cfg.availability, drawn per (seed, round).

    Every method of a run sees the same draw, so churn compares them on equal terms.
    """
    draw = np.random.default_rng([ctx.seed, number, 9]).random(ctx.cfg.clients)
    return [i for i in range(ctx.cfg.clients) if draw[i] < ctx.cfg.availability]


def baseline_selection(ctx: RunContext, number: int, candidates: list[int]) -> list[int]:
    """round_size of the candidates, drawn uniformly per (seed, round) and returned sorted (all if fewer)."""
    if len(candidates) <= ctx.cfg.round_size:
        return sorted(candidates)
    pick = np.random.default_rng([ctx.seed, number, 12]).permutation(len(candidates))[:ctx.cfg.round_size]
    return sorted(candidates[int(i)] for i in pick)


def dropped_positions(ctx: RunContext, clients: list[int], number: int) -> set[int]:
    """Positions in `clients` of those that drop out mid-round (keys shared, no masked input), with cfg.dropout."""
    draw = np.random.default_rng([ctx.seed, number, 10]).random(ctx.cfg.clients)
    return {pos for pos, i in enumerate(clients) if draw[i] < ctx.cfg.dropout}


@dataclass(frozen=True, eq=False)
class ClientUpdate:
    """A client's submitted update: its row (after any attack), examples, and its DP declaration (mechanism + clip)."""

    client: int
    vector: npt.NDArray[np.float32]
    num_examples: int
    mechanism: dict[str, object] | None


def local_updates(ctx: RunContext, base: Tensors, clients: list[int], number: int) -> tuple[list[ClientUpdate], Layout]:
    """Train every listed client from base (honestly), then let the attackers among them rewrite their rows.

    Training seeds depend on (seed, round, client) only, so all methods see the same randomness.
    Under the "sybil" attack, methods without admission control (NO_ADMISSION) also get each
    attacker's row again for each of its cfg.sybils extra identities, after the listed clients' rows.
    """
    layout = layout_of(base)
    trained = {}
    jobs = [TrainJob(ctx.data.spec, base, ctx.shards[i], ctx.cfg.local_epochs, training_lr(ctx.cfg, ctx.dp is not None),
                     ctx.cfg.batch_size, derive_int(ctx.seed, "train", number, i), ctx.dp) for i in clients]
    for i, res in zip(clients, ctx.pool.run(jobs), strict=True):
        declared = None if res.mechanism is None else {**res.mechanism, "clip_norm": res.clip_norm}
        trained[i] = (flatten(res.delta, layout), res.num_examples, declared)
    bad = [i for i in clients if i in ctx.byzantine]
    rows = {i: v for i, (v, _, _) in trained.items()}
    if bad:
        benign = [rows[i] for i in clients if i not in ctx.byzantine]
        rng = np.random.default_rng([ctx.seed, number, 5])
        forged = attack_updates(ctx.attack, [rows[i] for i in bad], benign, ctx.cfg.attack_scale, rng, len(clients))
        rows.update(zip(bad, forged, strict=True))
    updates = [ClientUpdate(i, rows[i], trained[i][1], trained[i][2]) for i in clients]
    if ctx.attack == "sybil" and ctx.method in NO_ADMISSION:
        # No admission control: every Sybil identity of an attacker posts its forged row and claims its
        # examples. Ids cfg.clients + i·sybils + j never collide with a real client's or each other's.
        updates += [ClientUpdate(ctx.cfg.clients + i * ctx.cfg.sybils + j, rows[i], trained[i][1], trained[i][2])
                    for i in bad for j in range(ctx.cfg.sybils)]
    return updates, layout



def round_updates(ctx: RunContext, base: Tensors, clients: list[int], number: int) -> tuple[list[ClientUpdate], Layout]:
    """local_updates for the round's selected clients, returned in `clients`' order.

    The chain lists the selected in an order drawn from the block hash, which differs between the
    in-process and the full-stack chain; training in client order keeps the attacks' statistics
    (ALIE, IPM) and their random draws the same in both modes.
    """
    updates, layout = local_updates(ctx, base, sorted(clients), number)
    by_client = {u.client: u for u in updates}
    return [by_client[i] for i in clients], layout

@dataclass
class RunResult:
    """What one run measured; every figure comes from the run's own models, payloads and chain."""

    method: str
    attack: str
    seed: int
    accuracy_curve: list[float] = field(default_factory=list)  # test accuracy of the trusted model after each round
    epsilon_curve: list[float] = field(default_factory=list)  # largest ε any client has spent, after each round
    accuracy: float = float("nan")
    macro_f1: float = float("nan")
    rounds_to_target: int | None = None
    backdoor_asr: float | None = None
    mia_auc: float = float("nan")
    mia_shadow_auc: float = float("nan")  # shadow-model membership inference (mia_shadow.py)
    sybil_attempts: int = 0  # Sybil identities that tried to enroll on FedLedger's chain
    sybil_refused: int = 0  # of those, refused at admission by their organization's enrollment cap
    mb_per_client_round: float = float("nan")
    aggregation_ms: float = float("nan")
    # FedLedger only. Fast mode: in-process FinalizeBlock + Commit per block (no consensus);
    # localnet mode: a commit_contribution tx from broadcast to its committed block.
    commit_ms: float | None = None
    epsilon: float | None = None
    benign_acceptance: float | None = None
    byzantine_acceptance: float | None = None
    successful_rounds: float = float("nan")
    round_s: float = float("nan")
    quarantined: int = 0
    promoted_rounds: float = float("nan")  # share of rounds whose new model was trusted (FedLedger: promoted)
    screened: int = 0  # FedLedger: inputs the screen left out
    # FedLedger: mean reputation (reputation units) of the honest and of the Byzantine trainers after each round
    reputation_honest_curve: list[float] = field(default_factory=list)
    reputation_byzantine_curve: list[float] = field(default_factory=list)
    model_sha256: str = ""

    def row(self) -> dict[str, Any]:
        """The flat CSV row (curves joined with ';')."""
        out: dict[str, Any] = {k: v for k, v in self.__dict__.items() if not k.endswith("_curve")}
        out["accuracy_curve"] = ";".join(f"{a:.4f}" for a in self.accuracy_curve)
        out["epsilon_curve"] = ";".join(f"{e:.4f}" for e in self.epsilon_curve)
        out["reputation_honest_curve"] = ";".join(f"{r:.4f}" for r in self.reputation_honest_curve)
        out["reputation_byzantine_curve"] = ";".join(f"{r:.4f}" for r in self.reputation_byzantine_curve)
        return out
