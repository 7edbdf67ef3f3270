"""`fedledger bench …`: benchmarks that compare FedLedger with a named peer in the same run."""

from __future__ import annotations

import json

import click

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


@bench.command("accountant")
@click.option("--debits", default=500, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def bench_accountant_cmd(debits: int, as_json: bool) -> None:
    """Time per ε debit of the chain's accountant, vs Opacus' RDPAccountant in the same run (if importable)."""
    from fedledger.bench.accountant import bench_accountant

    result = bench_accountant(debits)
    click.echo(json.dumps(result, indent=2) if as_json else json.dumps(result))


@bench.command("governance")
@click.option("--trainers", default=300, show_default=True)
@click.option("--debits", default=300, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def bench_governance_cmd(trainers: int, debits: int, as_json: bool) -> None:
    """ε debit time (vs Opacus when importable) and admission/commitment throughput through every governance check."""
    from fedledger.bench.accountant import bench_accountant
    from fedledger.bench.chain import bench_chain

    chain = bench_chain(trainers=trainers, tasks=6, peer=False, log=lambda m: click.echo(m, err=True))
    result = {"benchmark": "governance", "accountant": bench_accountant(debits),
              "admission": chain["fedledger"]["admission"], "commitment": chain["fedledger"]["saturation"],
              "targets": {"debit_ms": 5, "tps": 200}}
    click.echo(json.dumps(result, indent=2 if as_json else None))
