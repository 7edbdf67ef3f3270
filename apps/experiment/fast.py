"""The fast in-process mode: every (method, attack, seed) run of a config, on real data and real libraries.

- `fedavg`: plaintext example-weighted FedAvg (`combine_rows(..., "fedavg")`), no DP, no SecAgg.
- `fedavg_dp_secagg`: DP-SGD clients, one SecAgg+ group over all of a round's clients, FedAvg of the sum;
  ε from the chain's accountant library on the declared mechanisms.
- `fedledger`: the chain as a library (`onchain.py`): DP-SGD, SecAgg+ groups, the task's robust rule,
  reputation-weighted selection and the evaluated version lifecycle.
- `centralized`: the same model trained on the pooled clean training data (the upper bound).
Runs are deterministic in their models (timings aside): same config and seed, same bytes.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from fedledger.apps.experiment.budget import BudgetPlanner, planned_dp
from fedledger.apps.experiment.common import (
    NO_ADMISSION,
    ClientUpdate,
    RunContext,
    RunResult,
    baseline_selection,
    derive_seed,
    dropped_positions,
    local_updates,
    online_clients,
)
from fedledger.apps.experiment.config import ExperimentConfig
from fedledger.apps.experiment.datasets import FederatedData, load_federated
from fedledger.apps.experiment.metrics import (
    accuracy,
    backdoor_asr,
    logits,
    macro_f1,
    mia_auc,
    payload_bytes,
    predict,
    rounds_to_target,
)
from fedledger.apps.experiment.mia_shadow import shadow_mia_auc
from fedledger.apps.experiment.onchain import RoundFigures, run_fedledger
from fedledger.apps.experiment.pool import TrainPool
from fedledger.apps.experiment.secure import secure_round
from fedledger.apps.experiment.submissions import submissions
from fedledger.node.aggregation.combine import combine_rows
from fedledger.node.aggregation.fedavg import apply_delta
from fedledger.sdk.flat import unflatten
from fedledger.sdk.ml.model import initial_weights
from fedledger.sdk.ml.train import TrainingError, train_local
from fedledger.sdk.tensors import Tensors, encode_tensors

if TYPE_CHECKING:  # the full-stack mode's imports (services, RPC) load only when a localnet is given
    from fedledger.apps.experiment.fullstack import Localnet

__all__ = ["Progress", "run_experiment", "run_one"]

Progress = Callable[[str], None]


def _baseline(ctx: RunContext, init: Tensors, result: RunResult, evaluate_round: Callable[[Tensors], None]) -> Tensors:
    """The chain-less methods: FedAvg, FedAvg + DP + SecAgg, or a plain robust rule over individual updates.

    Each round samples `round_size` of the online clients that can still afford a contribution
    (uniformly: there is no chain to weight them by reputation). FedAvg + DP + SecAgg runs one
    SecAgg group over them, with FedLedger's DP mechanism (distributed noise, or DP-SGD) and no
    defense; `robust_plain` runs `robust_baseline_rule` on every plaintext update, as Flower's
    robust strategies do, with no DP. With churn, a round needs one surviving update (FedAvg), a
    usable SecAgg group, or the robust rule's minimum; otherwise it fails and the model stays.
    """
    cfg = ctx.cfg
    model = init
    secure = ctx.method == "fedavg_dp_secagg"
    planner = BudgetPlanner(cfg.epsilon_budget, cfg.delta)
    declared = planned_dp(ctx)
    figures = RoundFigures()
    sizes: list[int] = []
    agg_s: list[float] = []
    times: list[float] = []
    ok = 0
    for number in range(1, cfg.rounds + 1):
        started = time.perf_counter()
        affordable = [i for i in online_clients(ctx, number) if planner.affords(i, declared)]
        clients = baseline_selection(ctx, number, affordable)
        if not clients:
            times.append(time.perf_counter() - started)
            if declared is not None:
                result.epsilon_curve.append(planner.max_epsilon())
            evaluate_round(model)
            continue
        try:
            updates, layout = local_updates(ctx, model, clients, number)
        except TrainingError:
            # The attack drove the model to non-finite weights (no defense stopped it): nobody can
            # train from it any more, so this and every later round fails and the model stays broken.
            times.append(time.perf_counter() - started)
            if declared is not None:
                result.epsilon_curve.append(planner.max_epsilon())
            evaluate_round(model)
            continue
        gone = dropped_positions(ctx, clients, number)
        t0 = time.perf_counter()
        vector = None
        accepted: set[int] = set()
        if secure:
            subs = submissions(ctx, updates, number, None, {u.client: len(updates) for u in updates},
                               clip=ctx.distributed_dp, noise=ctx.distributed_dp)
            sec = secure_round(np.stack([s.row for s in subs]), float(cfg.secagg_clip),
                               derive_seed(ctx.seed, "secagg", number), len(subs), gone,
                               cfg.noise_quorum_pct if ctx.distributed_dp else 0)
            if sec.means:
                vector = combine_rows(np.stack(sec.means), np.asarray(sec.counts, dtype=np.int64), "fedavg", 0)[0]
                accepted = {updates[pos].client for group in sec.survivors for pos in group}
            sizes.extend(sec.bytes_sent.values())
        else:
            live = [u for pos, u in enumerate(updates) if pos not in gone]
            sizes.extend(payload_bytes(unflatten(u.vector, layout)) for u in live)
            if live and ctx.method == "robust_plain":
                vector, accepted = _robust_plain(ctx, live)
            elif live:
                vector = combine_rows(np.stack([u.vector for u in live]),
                                      np.asarray([u.num_examples for u in live], dtype=np.int64), "fedavg", 0)[0]
                accepted = {u.client for u in live}
        agg_s.append(time.perf_counter() - t0)
        figures.count(ctx.byzantine, [u.client for u in updates], accepted if vector is not None else set())
        if vector is not None:
            ok += 1
            model = apply_delta(model, unflatten(vector, layout))
        if declared is not None:  # each client that posted an input is charged, as the chain would
            for pos, u in enumerate(updates):
                if pos not in gone:
                    planner.spend(u.client, declared)
            result.epsilon_curve.append(planner.max_epsilon())
        times.append(time.perf_counter() - started)
        evaluate_round(model)
    result.successful_rounds = ok / cfg.rounds
    result.promoted_rounds = result.successful_rounds  # no evaluator: every new model is used
    result.mb_per_client_round = float(np.mean(sizes)) / 1e6 if sizes else 0.0
    result.aggregation_ms = 1000 * float(np.mean(agg_s)) if agg_s else float("nan")
    result.round_s = float(np.mean(times))
    result.epsilon = planner.max_epsilon() if declared is not None else None
    result.benign_acceptance = figures.benign[0] / figures.benign[1] if figures.benign[1] else None
    result.byzantine_acceptance = figures.byzantine[0] / figures.byzantine[1] if figures.byzantine[1] else None
    return model


def _robust_plain(ctx: RunContext, live: list[ClientUpdate]) -> tuple[npt.NDArray[np.float32] | None, set[int]]:
    """The plain robust baseline's aggregate and the clients it kept (None if the rule cannot run)."""
    from fedledger.node.robust import RobustError, RobustParams, get_robust_rule

    try:
        res = get_robust_rule(ctx.cfg.robust_baseline_rule)(np.stack([u.vector for u in live]),
                                                            RobustParams(f=ctx.cfg.byzantine))
    except RobustError:
        return None, set()
    kept = {u.client for u, v in zip(live, res.verdicts, strict=True) if str(v) == "kept"}
    return np.asarray(res.aggregate, dtype=np.float32), kept


def _centralized(ctx: RunContext, init: Tensors, result: RunResult,
                 evaluate_round: Callable[[Tensors], None]) -> Tensors:
    """The model trained on the pooled clean data, local_epochs epochs per round (the upper bound)."""
    model = init
    times = []
    for number in range(1, ctx.cfg.rounds + 1):
        started = time.perf_counter()
        seed = int.from_bytes(derive_seed(ctx.seed, "central", number)[:4], "big") & 0x7FFFFFFF
        res = train_local(ctx.data.spec, model, ctx.data.pooled, epochs=ctx.cfg.local_epochs, lr=ctx.cfg.lr,
                          batch_size=ctx.cfg.batch_size, seed=seed)
        model = apply_delta(model, res.delta)
        times.append(time.perf_counter() - started)
        evaluate_round(model)
    result.successful_rounds = 1.0
    result.round_s = float(np.mean(times))
    result.mb_per_client_round = 0.0
    return model


def run_one(cfg: ExperimentConfig, data: FederatedData, method: str, attack: str, seed: int,
            net: Localnet | None = None, pool: TrainPool | None = None) -> RunResult:
    """One run: train with `method` under `attack` for cfg.rounds rounds, then measure the final model.

    With `net`, the FedLedger method runs full-stack on that localnet (`fullstack.py`) instead of on
    the in-process chain; the other methods have no chain and run the same either way.
    """
    ctx = RunContext.build(cfg, method, attack, seed, data, pool)
    init = initial_weights(data.spec, seed)
    result = RunResult(method=method, attack=attack, seed=seed)

    def evaluate_round(model: Tensors) -> None:
        result.accuracy_curve.append(accuracy(data.test.y, predict(data.spec, model, data.test.X)))

    if method in ("fedledger", "fedledger_nodp") and net is not None:
        from fedledger.apps.experiment.fullstack import run_fedledger_localnet

        final = run_fedledger_localnet(ctx, init, result, evaluate_round, net)
    elif method in ("fedledger", "fedledger_nodp"):
        final = run_fedledger(ctx, init, result, evaluate_round)
    elif method == "centralized":
        final = _centralized(ctx, init, result, evaluate_round)
    else:
        final = _baseline(ctx, init, result, evaluate_round)
    pred = predict(data.spec, final, data.test.X)
    result.accuracy = accuracy(data.test.y, pred)
    result.macro_f1 = macro_f1(data.test.y, pred, data.num_classes)
    result.rounds_to_target = rounds_to_target(result.accuracy_curve, cfg.target_accuracy)
    if ctx.probe is not None:
        result.backdoor_asr = backdoor_asr(data.spec, final, data.test, ctx.probe)
    if attack == "sybil" and method in NO_ADMISSION:  # no admission control: every Sybil identity takes part
        result.sybil_attempts = len(ctx.byzantine) * cfg.sybils
    members = data.pooled
    # A model an attack drove to non-finite outputs has no losses to attack: its MIA figures stay NaN.
    if np.all(np.isfinite(logits(data.spec, final, data.test.X))):
        result.mia_auc = mia_auc(data.spec, final, members, data.test, seed)
        result.mia_shadow_auc = shadow_mia_auc(data.spec, final, data, seed, epochs=cfg.rounds * cfg.local_epochs,
                                               lr=cfg.lr, batch_size=cfg.batch_size)
    result.model_sha256 = hashlib.sha256(encode_tensors(final)).hexdigest()
    return result


def run_experiment(cfg: ExperimentConfig, progress: Progress | None = None,
                   net: Localnet | None = None, pool: TrainPool | None = None) -> list[RunResult]:
    """Every (seed, attack, method) run of cfg, in that order; progress gets one line per finished run.

    With `net`, FedLedger runs go through that localnet (the full-stack mode).

    The centralized upper bound trains on clean pooled data, so it runs once per seed (attack "none").
    """
    say = progress or (lambda _line: None)
    results = []
    plan = [(seed, attack, method) for seed in cfg.seeds for attack in cfg.attacks for method in cfg.methods
            if method != "centralized" or attack == cfg.attacks[0]]
    cache: dict[int, FederatedData] = {}
    for n, (seed, attack, method) in enumerate(plan, start=1):
        if seed not in cache:
            cache[seed] = load_federated(cfg.dataset, cfg.clients, cfg.alpha, seed, cfg.client_examples)
        started = time.perf_counter()
        res = run_one(cfg, cache[seed], method, "none" if method == "centralized" else attack, seed, net, pool)
        results.append(res)
        asr = f" asr={res.backdoor_asr:.3f}" if res.backdoor_asr is not None else ""
        eps = f" eps={res.epsilon:.2f}" if res.epsilon is not None else ""
        say(f"[{n}/{len(plan)}] seed={seed} attack={res.attack} method={method}: acc={res.accuracy:.3f}{asr}"
            f" mia_auc={res.mia_auc:.3f}{eps} ({time.perf_counter() - started:.1f}s)")
    return results
