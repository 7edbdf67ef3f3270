"""`fedledger localnet …`: start, inspect and stop a local validator network."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

__all__ = ["localnet"]

HOME = click.option("--home", type=click.Path(path_type=Path), default=Path(".localnet"), show_default=True,
                    help="Directory holding the network's keys, configs, data and logs.")


@click.group()
def localnet() -> None:
    """Local CometBFT validator network running the FedLedger app."""


@localnet.command("install")
@click.option("--bin-dir", type=click.Path(path_type=Path), default=Path("bin"), show_default=True)
@click.option("--kubo/--no-kubo", default=False, help="Also install the pinned Kubo (IPFS).")
@click.option("--geth/--no-geth", default=False, help="Also install the pinned geth (the dev anchor chain).")
def install(bin_dir: Path, kubo: bool, geth: bool) -> None:
    """Install (or reuse) the pinned CometBFT (and Kubo, geth) binaries."""
    from fedledger.localnet.cometbft import ensure_cometbft

    click.echo(f"cometbft: {ensure_cometbft(bin_dir)}")
    if kubo:
        from fedledger.localnet.kubo import ensure_ipfs_binary

        click.echo(f"ipfs: {ensure_ipfs_binary(bin_dir)}")
    if geth:
        from fedledger.localnet.geth import ensure_geth

        click.echo(f"geth: {ensure_geth(bin_dir)}")


@localnet.command("up")
@HOME
@click.option("--validators", default=4, show_default=True)
@click.option("--store", type=click.Choice(["embedded", "kubo"]), default="embedded", show_default=True)
@click.option("--block-time", "block_time_ms", default=300, show_default=True, help="Target block time in ms.")
@click.option("--base-port", default=26600, show_default=True, help="First port; each node uses the next 10.")
@click.option("--reset", is_flag=True, help="Wipe an existing network in this home first.")
@click.option("--anchor-chain/--no-anchor-chain", default=None,
              help="Also start a local `geth --dev` for `fedledger anchor` (base port + 6). Default: when "
                   "$FEDLEDGER_ANCHOR_RPC is not set and the pinned geth is installed.")
@click.option("--ceremony", is_flag=True,
              help="Generate a new net by the consortium ceremony (`node init` per node, `genesis assemble`): "
                   "one organization per node, each with its own issuer key; no shared development issuer.")
def up(home: Path, validators: int, store: str, block_time_ms: int, base_port: int, reset: bool,
       anchor_chain: bool | None, ceremony: bool) -> None:
    """Generate (first time) and start the network; returns once every node produces blocks."""
    from fedledger.localnet import manager

    if anchor_chain is None:
        anchor_chain = _dev_chain_by_default()
    spec = manager.up(home, validators=validators, store=store, block_time_ms=block_time_ms,  # type: ignore[arg-type]
                      base_port=base_port, reset=reset, log=lambda m: click.echo(m, err=True),
                      anchor_chain=anchor_chain, ceremony=ceremony)
    click.echo(f"localnet up: {len(spec.nodes)} validators, chain {spec.chain_id}, home {home}")
    for i in range(len(spec.nodes)):
        click.echo(f"  node{i}: RPC {manager.rpc_url(home, i)}  logs {home}/node{i}/")
    click.echo(f"stop it with: fedledger localnet down --home {home}")


def _dev_chain_by_default() -> bool:
    """Start the dev anchor chain unless anchoring goes elsewhere or geth would first have to be built."""
    import os

    from fedledger.localnet.binaries import find_pinned
    from fedledger.localnet.cometbft import default_bin_dir
    from fedledger.localnet.geth import check_geth

    if os.environ.get("FEDLEDGER_ANCHOR_RPC"):
        return False
    return find_pinned("GETH_BIN", default_bin_dir(), "geth", check_geth, log=lambda _m: None) is not None


@localnet.command("status")
@HOME
@click.option("--json", "as_json", is_flag=True)
def status(home: Path, as_json: bool) -> None:
    """Show each node's height, app hash, peers and liveness."""
    from rich.console import Console
    from rich.table import Table

    from fedledger.localnet import manager
    from fedledger.sdk.term import print_fitted

    nodes = manager.status(home)
    if as_json:
        click.echo(json.dumps([asdict(n) for n in nodes], indent=2))
        return
    tab = Table(title=f"localnet {home}")
    for col in ("node", "alive", "height", "app hash", "peers", "restarts", "rpc"):
        tab.add_column(col)
    for n in nodes:
        tab.add_row(str(n.index), "yes" if n.alive else f"[red]no[/] {n.error or ''}", str(n.height or "-"),
                    (n.app_hash or "-")[:16], str(n.peers if n.peers is not None else "-"), str(n.restarts),
                    n.rpc_url)
    print_fitted(Console(), tab)


@localnet.command("down")
@HOME
def down(home: Path) -> None:
    """Stop every process of the network (its data stays for the next `up`)."""
    from fedledger.localnet import manager

    manager.down(home)
    click.echo(f"localnet in {home} stopped")


@localnet.command("stop-node")
@HOME
@click.argument("index", type=int)
def stop_node(home: Path, index: int) -> None:
    """Stop one node (app and CometBFT) and keep it down."""
    from fedledger.localnet import manager

    manager.stop_node(home, index)
    click.echo(f"node{index} stopped")


@localnet.command("start-node")
@HOME
@click.argument("index", type=int)
def start_node(home: Path, index: int) -> None:
    """Start a stopped node again; it replays and catches up."""
    from fedledger.localnet import manager

    manager.start_node(home, index)
    click.echo(f"node{index} started")


@localnet.command("check-state")
@HOME
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--query", "queries", multiple=True, metavar="PATH",
              help="An ABCI query path to compare (repeatable; default: the parameter and listing queries).")
@click.option("--key", "keys", multiple=True, metavar="HEX", help="A raw store key (hex) to compare (repeatable).")
def check_state_cmd(home: Path, as_json: bool, queries: tuple[str, ...], keys: tuple[str, ...]) -> None:
    """Compare every node's own committed state root and records; exit non-zero on divergence."""
    from fedledger.localnet import manager
    from fedledger.localnet.config import load_spec
    from fedledger.localnet.divergence import DEFAULT_QUERIES, CometProbe, check_state
    from fedledger.localnet.errors import StateDivergenceError, UnreachableNodesError

    asked: list[tuple[str, bytes]] = [(q, b"") for q in queries]
    for k in keys:
        try:
            asked.append(("/key", bytes.fromhex(k)))
        except ValueError:
            raise click.BadParameter(f"{k!r} is not hex", param_hint="--key") from None
    spec = load_spec(home)
    probes = {f"node{i}": CometProbe(manager.rpc_url(home, i)) for i in range(len(spec.nodes))}
    try:
        report = check_state(probes, asked or DEFAULT_QUERIES)
    finally:
        for p in probes.values():
            p.close()
    click.echo(json.dumps(report.to_json(), indent=2) if as_json else report.summary())
    if report.findings:
        where = "; ".join(f"{f.node} at height {f.height} ({f.subject})" for f in report.findings[:5])
        raise StateDivergenceError(f"state diverges: {', '.join(report.divergent)} differ from the majority: "
                                   f"{where}")
    if report.unreachable:
        raise UnreachableNodesError(f"could not compare {', '.join(sorted(report.unreachable))}: "
                                    + "; ".join(f"{n}: {w}" for n, w in sorted(report.unreachable.items())))
