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
@click.option("--tasks", default=10, show_default=True, help="Commit txs per signer (one per task).")
@click.option("--concurrency", default=8, show_default=True, help="Concurrent broadcasting connections.")
@click.option("--batch", default=20, show_default=True, help="broadcast_tx_sync calls per JSON-RPC batch request.")
@click.option("--block-time", "block_time_ms", default=300, show_default=True)
@click.option("--base-port", default=27600, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def bench_chain_cmd(validators: int, trainers: int, tasks: int, concurrency: int, batch: int, block_time_ms: int,
                    base_port: int, as_json: bool) -> None:
    """Commitment-tx throughput and broadcast→commit latency vs CometBFT's kvstore on an identical localnet."""
    from fedledger.bench.chain import bench_chain

    result = bench_chain(validators, trainers, tasks, concurrency, block_time_ms, base_port, batch,
                         log=lambda m: click.echo(m, err=True))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    for name in ("fedledger", "kvstore"):
        r = result[name]
        click.echo(f"{name:10s} {r['tps']:8.1f} tx/s  p50 {r['p50_ms']:7.1f} ms  p95 {r['p95_ms']:7.1f} ms  "
                   f"({r['committed']}/{r['sent']} committed, {r['blocks']} blocks)")
    click.echo(f"ratio fedledger/kvstore: {result['ratio_tps_vs_kvstore']}")
