"""An experiment's configuration: a TOML file read with tomllib, validated into an ExperimentConfig."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from fedledger.abci_app.errors import ConfigError as FamilyConfigError

__all__ = ["ATTACKS", "DATASETS", "METHODS", "ExperimentConfigError", "ExperimentConfig", "load_config", "parse_config",
           "training_lr"]

DATASETS = ("digits", "breast_cancer", "mnist", "basic_motions")
METHODS = ("fedavg", "fedavg_dp_secagg", "robust_plain", "fedledger", "fedledger_nodp", "centralized")
ATTACKS = ("none", "label_flip", "backdoor", "sign_flip", "scaling", "gaussian", "alie", "ipm",
           "free_rider", "sybil")
ROBUST_RULES = ("fedavg", "median", "trimmed_mean", "krum", "multi_krum", "bulyan", "geomed", "centered_clipping")
TRIGGERS = ("pixel_pattern", "corner_square", "blend")
LOCATIONS = ("top-left", "top-right", "bottom-left", "bottom-right", "center")
DP_MODES = ("distributed", "dpsgd")


class ExperimentConfigError(FamilyConfigError):
    """The experiment configuration is malformed: the message names the field and what it must be."""

    error_code = "EXPERIMENT_CONFIG"


@dataclass(frozen=True)
class ExperimentConfig:
    """Every knob of one experiment; a run is one (method, attack, seed) triple of it.

    Data: `dataset`, split over `clients` with Dirichlet(`alpha`) label skew (disjoint shards), or,
    with `client_examples` > 0, each of `clients` emulated clients draws that many examples of the
    training pool with Dirichlet(`alpha`) label proportions (shards then overlap: how 1,000 clients
    are emulated on a data set of 1,300 training images). Rounds: `rounds`, each
    with `round_size` selected clients training `local_epochs` epochs at `lr` (`dp_lr` for the DP-SGD
    methods when set: clipped, noised gradients are small and take a larger step). Attack: the
    `byzantine_fraction` of clients (rounded, at least one when > 0) run each attack in `attacks`
    ("none" is the benign reference), scaled by `attack_scale`; under "sybil" each of them tries to
    enroll `sybils` extra identities. The backdoor's trigger is `backdoor_trigger` at
    `backdoor_location` with target label `backdoor_target`; only the attackers and the ASR
    measurement see them. Privacy (`dp_mode`): "distributed" is user-level DP under SecAgg (each
    client clips its whole update to `clip_norm` in L2 and adds its share of N(0, (σ·clip)²),
    σ = `noise_multiplier`, sized for `noise_quorum_pct` of its group, so every unmasked group sum
    carries the full noise); "dpsgd" is DP-SGD with `noise_multiplier`, `sample_rate`, `clip_norm`,
    `dp_steps` per round. Budget `epsilon_budget` at `delta`: a client whose next contribution would
    pass it sits out. SecAgg: `group_size` members per group (capped at the round), coordinate
    bound `secagg_clip`. FedLedger's defense: the input screen (`screen`, cosine at least
    `screen_min_cosine` with the root update, norm at most `clip_norm`; node/aggregation/screen.py),
    then `rule` across group means assuming `byzantine` bad groups; versions whose canary accuracy
    falls more than `max_regression` below the last good one are quarantined. `robust_plain` is the
    plain robust baseline: `robust_baseline_rule` on every individual update, no SecAgg, no DP.
    `backdoor_unlearning` (off by default, experimental): the aggregator scans each candidate for a
    backdoor without knowing any trigger (node/backdoor_scan.py) and, on a suspect, unlearns the
    recovered stamp on its root data before proposing (node/backdoor_unlearn.py).
    Churn: each client is online for a round with
    probability `availability` (FedLedger: declared on chain, so selection draws from the online
    ones), and each selected online client drops out mid-round, after sharing its SecAgg keys and
    before posting its masked input, with probability `dropout` (SecAgg recovers its mask).
    """

    name: str = "experiment"
    dataset: str = "digits"
    clients: int = 10
    round_size: int = 10
    rounds: int = 10
    seeds: tuple[int, ...] = (1, 2, 3, 4, 5)
    alpha: float = 0.3
    methods: tuple[str, ...] = METHODS
    attacks: tuple[str, ...] = ("none", "sign_flip")
    byzantine_fraction: float = 0.2
    attack_scale: float = 1.0
    backdoor_target: int = 0
    sybils: int = 3
    availability: float = 1.0
    dropout: float = 0.0
    local_epochs: int = 1
    lr: float = 0.1
    dp_lr: float | None = None
    batch_size: int = 16
    noise_multiplier: str = "1.0"
    sample_rate: str = "0.1"
    clip_norm: str = "1.0"
    dp_steps: int = 30
    epsilon_budget: str = "1000"
    delta: str = "1e-5"
    group_size: int = 2
    secagg_clip: str = "1.0"
    rule: str = "median"
    byzantine: int = 2
    target_accuracy: float = 0.8
    min_canary_accuracy: float = 0.0
    max_backdoor_asr: float = 0.5
    output: str = "experiments/out"
    client_examples: int = 0
    backdoor_trigger: str = "pixel_pattern"
    backdoor_location: str = "bottom-right"
    dp_mode: str = "dpsgd"
    noise_quorum_pct: int = 100
    screen: bool = False
    screen_min_cosine: float = 0.0
    max_regression: float = 1.0
    robust_baseline_rule: str = "multi_krum"
    backdoor_unlearning: bool = False

    @property
    def num_byzantine(self) -> int:
        """How many clients are Byzantine in attacked runs."""
        if self.byzantine_fraction <= 0:
            return 0
        return max(1, round(self.byzantine_fraction * self.clients))


def _check(cfg: ExperimentConfig) -> ExperimentConfig:
    def bad(field: str, what: str) -> ExperimentConfigError:
        return ExperimentConfigError(f"config field {field!r} must be {what}, got {getattr(cfg, field)!r}")

    if cfg.dataset not in DATASETS:
        raise bad("dataset", f"one of {list(DATASETS)}")
    for name in ("clients", "round_size", "rounds", "local_epochs", "batch_size", "dp_steps", "group_size"):
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise bad(name, "a positive integer")
    if isinstance(cfg.sybils, bool) or not isinstance(cfg.sybils, int) or cfg.sybils < 0:
        raise bad("sybils", "a non-negative integer")
    if cfg.round_size > cfg.clients:
        raise bad("round_size", f"at most clients ({cfg.clients})")
    if not cfg.seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in cfg.seeds):
        raise bad("seeds", "a non-empty list of non-negative integers")
    unknown = [m for m in cfg.methods if m not in METHODS]
    if not cfg.methods or unknown:
        raise bad("methods", f"a non-empty list drawn from {list(METHODS)}")
    unknown = [a for a in cfg.attacks if a not in ATTACKS]
    if not cfg.attacks or unknown:
        raise bad("attacks", f"a non-empty list drawn from {list(ATTACKS)}")
    if cfg.rule not in ROBUST_RULES:
        raise bad("rule", f"one of {list(ROBUST_RULES)}")
    if cfg.robust_baseline_rule not in ROBUST_RULES or cfg.robust_baseline_rule == "fedavg":
        raise bad("robust_baseline_rule", f"a robust rule from {list(ROBUST_RULES[1:])}")
    if cfg.backdoor_trigger not in TRIGGERS:
        raise bad("backdoor_trigger", f"one of {list(TRIGGERS)}")
    if cfg.backdoor_location not in LOCATIONS:
        raise bad("backdoor_location", f"one of {list(LOCATIONS)}")
    if cfg.dp_mode not in DP_MODES:
        raise bad("dp_mode", f"one of {list(DP_MODES)}")
    if isinstance(cfg.backdoor_target, bool) or not isinstance(cfg.backdoor_target, int) or cfg.backdoor_target < 0:
        raise bad("backdoor_target", "a non-negative integer (a class label)")
    if isinstance(cfg.client_examples, bool) or not isinstance(cfg.client_examples, int) or cfg.client_examples < 0:
        raise bad("client_examples", "a non-negative integer (0: disjoint shards)")
    if (isinstance(cfg.noise_quorum_pct, bool) or not isinstance(cfg.noise_quorum_pct, int)
            or not 1 <= cfg.noise_quorum_pct <= 100):
        raise bad("noise_quorum_pct", "an integer percentage in [1, 100]")
    if not isinstance(cfg.screen, bool):
        raise bad("screen", "true or false")
    if not isinstance(cfg.backdoor_unlearning, bool):
        raise bad("backdoor_unlearning", "true or false")
    if (isinstance(cfg.screen_min_cosine, bool) or not isinstance(cfg.screen_min_cosine, float)
            or not -1.0 <= cfg.screen_min_cosine <= 1.0):
        raise bad("screen_min_cosine", "a number in [-1, 1]")
    for name, lo, hi in (("alpha", 0.0, None), ("byzantine_fraction", -1e-12, 0.5), ("availability", 0.0, 1.0),
                         ("dropout", -1e-12, 1.0 - 1e-12),
                         ("lr", 0.0, None), ("target_accuracy", -1e-12, 1.0), ("attack_scale", 0.0, None),
                         ("min_canary_accuracy", -1e-12, 1.0), ("max_backdoor_asr", -1e-12, 1.0),
                         ("max_regression", -1e-12, 1.0)):
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > lo or (
                hi is not None and value > hi):
            raise bad(name, f"a number in ({lo:g}, {hi if hi is not None else 'inf'}]")
    if cfg.dp_lr is not None and (isinstance(cfg.dp_lr, bool) or not isinstance(cfg.dp_lr, float) or not cfg.dp_lr > 0):
        raise bad("dp_lr", "a positive number")
    if ({"fedledger", "fedledger_nodp"} & set(cfg.methods) and cfg.round_size // cfg.group_size < 3
            and cfg.rule != "fedavg"):
        raise bad("group_size", "small enough for at least 3 SecAgg groups per round (a robust rule needs them)")
    return cfg


def parse_config(raw: dict[str, Any]) -> ExperimentConfig:
    """Build and validate a config from a TOML table (unknown keys are refused, so typos do not pass silently)."""
    known = {f.name for f in fields(ExperimentConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ExperimentConfigError(f"unknown config fields {unknown}; known: {sorted(known)}")
    values = dict(raw)
    for name in ("seeds", "methods", "attacks"):
        if name in values:
            if not isinstance(values[name], list):
                raise ExperimentConfigError(f"config field {name!r} must be a list, got {values[name]!r}")
            values[name] = tuple(values[name])
    for name in ("noise_multiplier", "sample_rate", "clip_norm", "epsilon_budget", "delta", "secagg_clip"):
        if name in values and not isinstance(values[name], str):
            raise ExperimentConfigError(
                f"config field {name!r} must be a decimal string such as \"1.0\" (exact on chain)")
    for name in ("alpha", "byzantine_fraction", "availability", "dropout", "lr", "dp_lr", "target_accuracy",
                 "attack_scale", "min_canary_accuracy", "max_backdoor_asr", "screen_min_cosine", "max_regression"):
        if isinstance(values.get(name), int) and not isinstance(values.get(name), bool):
            values[name] = float(values[name])
    try:
        cfg = ExperimentConfig(**values)
    except TypeError as exc:
        raise ExperimentConfigError(f"bad config: {exc}") from None
    return _check(cfg)


def load_config(path: Path) -> ExperimentConfig:
    """Read and validate a TOML config file; ExperimentConfigError names what is wrong."""
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ExperimentConfigError(f"cannot read config {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ExperimentConfigError(f"config {path} is not valid TOML: {exc}") from None
    return parse_config(raw)


def training_lr(cfg: ExperimentConfig, dp: bool) -> float:
    """The learning rate a method's clients train at: dp_lr (when set) under DP-SGD, lr otherwise."""
    return cfg.dp_lr if dp and cfg.dp_lr is not None else cfg.lr
