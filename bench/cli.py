"""`fedledger bench …`: benchmarks that compare FedLedger with a named peer in the same run."""

from __future__ import annotations

import json
from typing import Any

import click

from fedledger.abci_app.errors import ConfigError, FedLedgerError
from fedledger.apps.context import report

__all__ = ["bench"]


@click.group()
def bench() -> None:
    """Benchmarks (results go in docs/BENCHMARKS.md)."""


@bench.command("chain")
@click.option("--validators", default=4, show_default=True)
@click.option("--trainers", default=300, show_default=True, help="Distinct signers.")
@click.option("--tasks", default=20, show_default=True,
              help="Commit txs per signer (one per task); half for saturation, half for latency.")
@click.option("--rate", default=300.0, show_default=True, help="Offered tx/s for the latency phase.")
@click.option("--concurrency", default=8, show_default=True, help="Concurrent broadcasting connections.")
@click.option("--batch", default=20, show_default=True, help="broadcast_tx_sync calls per JSON-RPC batch request.")
@click.option("--block-time", "block_time_ms", default=300, show_default=True)
@click.option("--base-port", default=27600, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def bench_chain_cmd(validators: int, trainers: int, tasks: int, rate: float, concurrency: int, batch: int,
                    block_time_ms: int, base_port: int, as_json: bool) -> None:
    """Commitment-tx throughput and broadcast→commit latency vs CometBFT's kvstore on an identical localnet."""
    from fedledger.bench.chain import bench_chain

    result = bench_chain(validators, trainers, tasks, concurrency, block_time_ms, base_port, batch, rate,
                         log=lambda m: click.echo(m, err=True))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    for name in ("fedledger", "kvstore"):
        sat, paced = result[name]["saturation"], result[name]["at_rate"]
        click.echo(f"{name:10s} saturation {sat['tps']:8.1f} tx/s ({sat['committed']}/{sat['sent']} in "
                   f"{sat['duration_s']} s) | at {rate:.0f} tx/s offered: p50 {paced['p50_ms']:6.1f} ms, "
                   f"p95 {paced['p95_ms']:6.1f} ms")
    click.echo(f"ratio fedledger/kvstore: {result['ratio_tps_vs_kvstore']}")


@bench.command("statesync")
@click.option("--heights", default=10_000, show_default=True, help="Chain height to grow to before the joins.")
@click.option("--members", default=2000, show_default=True, help="Admitted members (the state to sync).")
@click.option("--validators", default=2, show_default=True)
@click.option("--block-time", "block_time_ms", default=10, show_default=True)
@click.option("--snapshot-interval", default=500, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def bench_statesync_cmd(heights: int, members: int, validators: int, block_time_ms: int, snapshot_interval: int,
                        as_json: bool) -> None:
    """Join time of a fresh node by state sync vs block sync on the same grown chain, and the snapshot size."""
    from fedledger.bench.statesync import bench_statesync

    r = bench_statesync(heights, members, validators, block_time_ms, snapshot_interval,
                        log=lambda m: click.echo(m, err=True))
    if as_json:
        click.echo(json.dumps(r, indent=2))
        return
    click.echo(f"height {r['heights']}: state sync {r['statesync']['join_s']} s, block sync "
               f"{r['blocksync']['join_s']} s; snapshot {r['snapshot']['bytes']} bytes in {r['snapshot']['chunks']} "
               f"chunks at height {r['snapshot']['height']}")


@bench.command("accountant")
@click.option("--debits", default=500, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def bench_accountant_cmd(debits: int, as_json: bool) -> None:
    """Time per ε debit of the chain's accountant, vs Opacus' RDPAccountant in the same run (if importable)."""
    from fedledger.bench.accountant import bench_accountant

    result = bench_accountant(debits)
    click.echo(json.dumps(result, indent=2) if as_json else json.dumps(result))


@bench.command("abci")
@click.option("--seconds", default=1.0, show_default=True, help="Duration of the one-at-a-time phase.")
@click.option("--batches", default=5, show_default=True)
@click.option("--batch-size", default=1000, show_default=True, help="CheckTx requests per pipelined batch.")
@click.option("--json", "as_json", is_flag=True)
def bench_abci_cmd(seconds: float, batches: int, batch_size: int, as_json: bool) -> None:
    """CheckTx round trips per second against the ABCI socket server (one at a time, and pipelined)."""
    from fedledger.bench.abci_server import bench_abci

    result = bench_abci(seconds, batches, batch_size)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"ABCI CheckTx round trips: {result['sequential']['per_s']:,.0f}/s one at a time (CheckTx+Flush each), "
               f"{result['pipelined']['per_s']:,.0f}/s pipelined (batches of {batch_size} then Flush)")


@bench.command("governance")
@click.option("--trainers", default=300, show_default=True)
@click.option("--debits", default=300, show_default=True)
@click.option("--base-port", default=27600, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def bench_governance_cmd(trainers: int, debits: int, base_port: int, as_json: bool) -> None:
    """ε debit time (vs Opacus when importable) and admission/commitment throughput through every governance check."""
    from fedledger.bench.accountant import bench_accountant
    from fedledger.bench.chain import bench_chain

    chain = bench_chain(trainers=trainers, tasks=6, base_port=base_port, peer=False,
                        log=lambda m: click.echo(m, err=True))
    result = {"benchmark": "governance", "accountant": bench_accountant(debits),
              "admission": chain["fedledger"]["admission"], "commitment": chain["fedledger"]["saturation"],
              "targets": {"debit_ms": 5, "tps": 200}}
    click.echo(json.dumps(result, indent=2 if as_json else None))


@bench.command("evm")
@click.option("--samples", default=200, show_default=True, help="Policy calls timed per decision point.")
@click.option("--senders", default=40, show_default=True, help="Bound EVM senders on the localnet.")
@click.option("--txs", "txs_per_sender", default=25, show_default=True, help="EVM txs per sender.")
@click.option("--concurrency", default=8, show_default=True)
@click.option("--block-time", "block_time_ms", default=300, show_default=True)
@click.option("--base-port", default=27700, show_default=True)
@click.option("--no-localnet", is_flag=True, help="Only the in-process policy-call latency.")
@click.option("--json", "as_json", is_flag=True)
def bench_evm_cmd(samples: int, senders: int, txs_per_sender: int, concurrency: int, block_time_ms: int,
                  base_port: int, no_localnet: bool, as_json: bool) -> None:
    """Policy-call latency inside FinalizeBlock, and EVM tx throughput on a 4-validator localnet."""
    from fedledger.bench.evm import bench_evm

    result = bench_evm(samples, localnet=not no_localnet, log=lambda m: click.echo(m, err=True), senders=senders,
                       txs_per_sender=txs_per_sender, concurrency=concurrency, block_time_ms=block_time_ms,
                       base_port=base_port)
    click.echo(json.dumps(result, indent=2 if as_json else None))


@bench.command("anchor")
@click.option("--samples", default=5, show_default=True, help="Checkpoint -> confirmed-anchor timings.")
@click.option("--confirmations", default=1, show_default=True, help="Confirmations an anchor waits for.")
@click.option("--base-port", type=int, default=None, help="Localnet base port (default: a free block).")
@click.option("--json", "as_json", is_flag=True)
def bench_anchor_cmd(samples: int, confirmations: int, base_port: int | None, as_json: bool) -> None:
    """Gas per anchor tx for batches of 1, 100 and 10,000 checkpoints, and checkpoint -> confirmed anchor on geth."""
    from fedledger.bench.anchor import bench_anchor

    result = bench_anchor(samples, confirmations, base_port, log=lambda m: click.echo(m, err=True))
    click.echo(json.dumps(result, indent=2 if as_json else None))


@bench.command("inference")
@click.option("--requests", default=4000, show_default=True, help="Requests per concurrent throughput run.")
@click.option("--concurrency", default=32, show_default=True, help="Concurrent connections of that run.")
@click.option("--sequential", default=300, show_default=True, help="Requests timed one after another.")
@click.option("--lying-requests", default=10_000, show_default=True,
              help="CBV requests of the lying-node experiment (a third per kind of liar).")
@click.option("--tier", type=click.Choice(["general", "critical", "all"]), default="all", show_default=True,
              help="general: CBV, split, lying nodes; critical: zk proofs and two-stage CKKS.")
@click.option("--zk-model", "zk_models", multiple=True, default=("mlp-digits",), show_default=True,
              help="Models of the zk rows (cnn-mnist needs a 2^20-row circuit: over 19 GB of memory to prove).")
@click.option("--he-samples", default=50, show_default=True, help="Encrypted inferences of the CKKS rows.")
@click.option("--json", "as_json", is_flag=True)
def bench_inference_cmd(requests: int, concurrency: int, sequential: int, lying_requests: int, tier: str,
                        zk_models: tuple[str, ...], he_samples: int, as_json: bool) -> None:
    """Inference: in-process floor, one node, the plain FastAPI peer, CBV k=3, split, lying nodes; critical rows."""
    result: dict[str, Any] = {}
    texts: list[str] = []
    log = lambda m: click.echo(m, err=True)  # noqa: E731
    if tier in ("general", "all"):
        from fedledger.bench.inference import bench_inference

        result["general"] = bench_inference(requests=requests, concurrency=concurrency, sequential=sequential,
                                            lying_requests=lying_requests, log=log)
        texts.append(_inference_text(result["general"]))
    if tier in ("critical", "all"):
        from fedledger.bench.inference_critical import bench_critical, critical_text

        result["critical"] = bench_critical(zk_models, he_samples, log=log)
        texts.append(critical_text(result["critical"]))
    click.echo(json.dumps(result, indent=2) if as_json else "\n".join(texts))


def _inference_text(r: dict[str, Any]) -> str:
    lines = []
    for task, m in r["models"].items():
        lines.append(f"{task} ({m['spec']}, {m['parameters']} parameters)")
        lines.append(f"  in-process onnxruntime: p50 {m['in_process']['p50_ms']} ms")
        for label in ("http_node", "http_peer"):
            seq, con = m[label]["sequential"], m[label]["concurrent"]
            lines.append(f"  {label}: p50 {seq['p50_ms']} / p95 {seq['p95_ms']} ms; {con['requests_per_s']} req/s at "
                         f"concurrency (p95 {con['p95_ms']} ms)")
        for label in ("verified_k1", "verified_k3", "split_2_nodes"):
            lines.append(f"  {label}: p50 {m[label]['p50_ms']} / p95 {m[label]['p95_ms']} ms")
        lines.append(f"  ratios: {m['ratios']}")
    lying = r["lying"]
    for fault, ph in lying["phases"].items():
        lines.append(f"liar {fault}: outvoted {ph['liar_outvoted']}/{ph['liar_answers_counted']}, "
                     f"{ph['liar_slashes']} slashes ({ph['slashed_in_batch_block']} in the batch's block), "
                     f"{ph['liar_status']}")
    lines.append(f"honest slashes over {lying['requests']} requests: {lying['honest_slashes']}")
    return "\n".join(lines)


def _size_pair(text: str) -> tuple[int, int]:
    """'100x1e6' -> (100, 1000000)."""
    try:
        n, d = text.lower().split("x")
        return int(float(n)), int(float(d))
    except ValueError:
        raise click.BadParameter(f"expected NxD such as 100x1e6, got {text!r}") from None


@bench.command("aggregation")
@click.option("--quick", is_flag=True, help="Small smoke run: robust 20x1e4, SecAgg+ N=20, d=1e4, dropout 0 and 10%.")
@click.option("--robust-size", "robust_sizes", multiple=True, metavar="NxD",
              help="Robust sizes (repeatable). Default: 100x1e6 and 1000x1e5.")
@click.option("--secagg-n", multiple=True, type=int, help="SecAgg+ client counts (repeatable). Default: 100 500 1000.")
@click.option("--secagg-d", multiple=True, type=float, help="SecAgg+ dimensions (repeatable). Default: 1e5 1e6.")
@click.option("--dropout", "dropouts", multiple=True, type=float,
              help="SecAgg+ dropout fractions (repeatable). Default: 0 0.1 0.3.")
@click.option("--robust/--no-robust", default=True, show_default=True)
@click.option("--secagg/--no-secagg", default=True, show_default=True)
@click.option("--repeats", default=3, show_default=True, help="Runs per measurement; the best is reported.")
@click.option("--flower/--no-flower", default=True, show_default=True, help="Time Flower when flwr is importable.")
@click.option("--flower-bulyan/--no-flower-bulyan", default=True, show_default=True,
              help="Run Flower's Bulyan (minutes at N=100, d=1e6; one run).")
@click.option("--flower-budget", default=600.0, show_default=True,
              help="Skip Flower's Bulyan when its estimate (from Flower's Krum) exceeds this many seconds.")
@click.option("--flower-clients", default=3, show_default=True, help="Flower SecAgg+ clients timed per round.")
@click.option("--secagg-threshold", type=int, default=None, help="Override the SecAgg+ threshold t.")
@click.option("--seed", default=None, help="32-byte seed as 64 hex digits (default: fixed).")
@click.option("--json", "as_json", is_flag=True)
def bench_aggregation_cmd(quick: bool, robust_sizes: tuple[str, ...], secagg_n: tuple[int, ...],
                          secagg_d: tuple[float, ...], dropouts: tuple[float, ...], robust: bool, secagg: bool,
                          repeats: int, flower: bool, flower_bulyan: bool, flower_budget: float, flower_clients: int,
                          secagg_threshold: int | None, seed: str | None, as_json: bool) -> None:
    """Robust aggregators and SecAgg+ vs Flower (flwr, the bench extra) in the same run, on the same data."""
    from fedledger.bench.aggregation import DEFAULT_SEED, FULL, QUICK, BenchConfig, bench_aggregation, format_text
    base = QUICK if quick else FULL
    config = BenchConfig(
        robust_sizes=tuple(_size_pair(s) for s in robust_sizes) or base.robust_sizes,
        secagg_n=secagg_n or base.secagg_n,
        secagg_d=tuple(int(d) for d in secagg_d) or base.secagg_d,
        dropouts=dropouts or base.dropouts,
    )
    try:
        seed_bytes = DEFAULT_SEED if seed is None else bytes.fromhex(seed)
        result = bench_aggregation(config, robust=robust, secagg=secagg, repeats=repeats, seed=seed_bytes,
                                   flower=flower, flower_bulyan=flower_bulyan, flower_budget_s=flower_budget,
                                   flower_clients=flower_clients, secagg_threshold=secagg_threshold,
                                   log=lambda m: click.echo(m, err=True))
    except FedLedgerError as exc:  # BenchError, RobustError, SecAggError: one line, the family's status
        report(exc)
    except ValueError as exc:  # bad hex in an option: the user's input
        report(ConfigError(str(exc)))
    click.echo(json.dumps(result, indent=2) if as_json else format_text(result))


@bench.command("groups")
@click.option("--clients", default=100, show_default=True)
@click.option("--dim", default=2000, show_default=True)
@click.option("--byzantine-pct", default=20, show_default=True)
@click.option("--sizes", default="2,5,10,20,50", show_default=True, help="Group sizes g to measure.")
@click.option("--rule", default="median", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def bench_groups_cmd(clients: int, dim: int, byzantine_pct: int, sizes: str, rule: str, as_json: bool) -> None:
    """The SecAgg group size's privacy/robustness trade-off: anonymity set vs error under attack."""
    from fedledger.bench.groups import bench_groups

    result = bench_groups(clients, dim, byzantine_pct, [int(s) for s in sizes.split(",") if s], rule)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"{clients} clients, {result['byzantine']} Byzantine, rule {rule}; error vs the honest mean: "
               f"FedAvg {result['fedavg_error_vs_honest_mean']}, {rule} without SecAgg "
               f"{result['plain_robust_error_vs_honest_mean']}")
    for row in result["by_group_size"]:
        click.echo(f"  g={row['group_size']:3d}: {row['groups']:3d} groups, anonymity set {row['anonymity_set']:3d}, "
                   f"{row['groups_with_attacker']:3d} with an attacker, error {row.get('error_vs_honest_mean', '-')}, "
                   f"round {row['secagg_round_s']} s")


@bench.command("round")
@click.option("--clients", type=int, default=None, help="Emulated clients (default: FEDLEDGER_CONFIG's, 1000).")
@click.option("--round-size", type=int, default=None, help="Clients per round (default: 100).")
@click.option("--rounds", type=int, default=None, help="Rounds (default: 3).")
@click.option("--client-examples", type=int, default=None,
              help="Examples each client draws from the pool (default: 16); 0 leaves the key out (disjoint shards).")
@click.option("--cpus", type=int, default=None, help="CPUs for Flower's local Ray (default: all).")
@click.option("--flower/--no-flower", default=True, show_default=True, help="Run Flower's Ray simulation too.")
@click.option("--json", "as_json", is_flag=True)
def bench_round_cmd(clients: int | None, round_size: int | None, rounds: int | None, client_examples: int | None,
                    cpus: int | None, flower: bool, as_json: bool) -> None:
    """Wall time per round: FedLedger's fast mode (SecAgg + robust rule + DP) vs Flower's FedAvg on Ray."""
    from fedledger.bench.round import bench_round

    overrides: dict[str, object] = {k: v for k, v in (("clients", clients), ("round_size", round_size),
                                                       ("rounds", rounds)) if v is not None}
    if client_examples is not None:  # 0: None, which bench_round reads as "leave the key out"
        overrides["client_examples"] = client_examples or None
    result = bench_round(overrides, flower=flower, cpus=cpus, log=lambda m: click.echo(m, err=True))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    for side in ("fedledger", "flower"):
        fig = result[side]
        if "error" in fig or "skipped" in fig:
            click.echo(f"{side:9s} {fig.get('error') or fig.get('skipped')}")
        elif side == "fedledger":
            click.echo(f"{side:9s} {fig['mean_round_s']:.3f} s/round (run_one {fig['run_one_s']} s)")
        else:
            click.echo(f"{side:9s} {fig['steady_round_s']:.3f} s/round steady, {fig['mean_round_s']:.3f} mean "
                       f"(run_simulation {fig['total_s']} s, Ray start {fig['ray_init_s']} s)")
    click.echo(f"ratio fedledger/flower: {result['ratio_fedledger_over_flower']}; memory {result['memory']}")


@bench.command("faults")
@click.option("--partition", "partition_s", default=60.0, show_default=True,
              help="Seconds one host's link stays down.")
@click.option("--halt", "halt_s", default=20.0, show_default=True, help="Seconds two of the four links stay down.")
@click.option("--delay-ms", default=50, show_default=True, help="tc netem delay on every host's link.")
@click.option("--jitter-ms", default=10, show_default=True, help="tc netem jitter.")
@click.option("--blocks", default=30, show_default=True, help="Block intervals measured per WAN setting.")
@click.option("--block-time", "block_time_ms", default=500, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def bench_faults_cmd(partition_s: float, halt_s: float, delay_ms: int, jitter_ms: int, blocks: int,
                     block_time_ms: int, as_json: bool) -> None:
    """A 4-host consortium in network namespaces (root): partitions, a halt, and WAN delay with tc netem."""
    from fedledger.bench.faults import run_faults

    result = run_faults(partition_s, halt_s, delay_ms, jitter_ms, blocks, block_time_ms,
                        log=lambda m: click.echo(m, err=True))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    one, two, wan = result["one_partitioned"], result["two_partitioned"], result["wan"]
    click.echo(f"ceremony to first block: {result['ceremony_to_first_block_s']} s")
    click.echo(f"one host cut {one['partition_s']} s: the other 3 committed {one['blocks_committed_by_the_other_3']} "
               f"blocks; caught up in {one['catch_up_s']} s (app hash equal: {one['app_hash_equal_after_catch_up']})")
    click.echo(f"two of four cut {two['halt_s']} s: {two['blocks_committed_while_split']} blocks; resumed "
               f"{two['resume_s']} s after the heal")
    bridge = wan["bridge"]
    click.echo(f"block interval on the bridge: p50 {bridge['interval_p50_s']} s, p95 {bridge['interval_p95_s']} s")
    measured = wan["netem"] if wan["netem"] is not None else wan.get("relay")
    how = "netem" if wan["netem"] is not None else f"relay (no netem: {wan.get('netem_unavailable')})"
    if measured is None:
        click.echo(f"{wan['delay_ms']}±{wan['jitter_ms']} ms: not measured")
    else:
        click.echo(f"{how} {wan['delay_ms']}±{wan['jitter_ms']} ms: block interval p50 {measured['interval_p50_s']} s, "
                   f"p95 {measured['interval_p95_s']} s (consensus p50 {measured['consensus_p50_s']} s, "
                   f"p95 {measured['consensus_p95_s']} s)")


@bench.command("fuzz")
@click.option("--txs", default=10_000, show_default=True,
              help="Validly signed adversarial txs (CheckTx + FinalizeBlock); as many mutated byte strings go "
                   "through CheckTx.")
@click.option("--seed", default=0, show_default=True)
@click.option("--max-seconds", type=float, default=None, help="Stop early after this long (the report says so).")
@click.option("--json", "as_json", is_flag=True)
def bench_fuzz_cmd(txs: int, seed: int, max_seconds: float | None, as_json: bool) -> None:
    """Fuzz the in-process app with members' signed adversarial txs and random bytes; check it against a twin."""
    from fedledger.bench.fuzz import bench_fuzz

    if txs < 1:
        raise click.BadParameter("must be at least 1", param_hint="--txs")
    result = bench_fuzz(txs, seed, max_seconds=max_seconds, log=lambda m: click.echo(m, err=True))
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(f"{result['check_tx_calls']} CheckTx calls ({result['txs_signed']} signed, {result['txs_raw']} "
                   f"raw) in {result['elapsed_s']} s, {result['txs_per_s']} tx/s: crashes {result['crashes']}, "
                   f"state changes by rejected txs {result['rejected_state_changes']}, app hash equals twin: "
                   f"{'yes' if result['app_hash_equals_twin'] else 'no'}")
    if result["crashes"] or result["rejected_state_changes"] or not result["app_hash_equals_twin"]:
        raise SystemExit(1)
