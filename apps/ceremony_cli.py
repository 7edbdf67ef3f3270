"""`fedledger node …` and `fedledger genesis …`: a consortium's genesis ceremony with no shared secrets.

Each organization runs `node init` on its own host and publishes the card it prints; one of them
(or each of them) runs `genesis assemble` on all cards and they compare the printed sha256; each
then runs `node start --genesis-hash` on its host. See docs/DEPLOY.md for the whole walk.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

__all__ = ["genesis", "node"]

HOST_HOME = click.option("--home", type=click.Path(path_type=Path), required=True,
                         help="This host's directory: its private keys, config, chain data and logs.")
COMETBFT = click.option("--cometbft", "cometbft_bin", type=click.Path(path_type=Path), default=None,
                        help="The pinned cometbft binary (default: $COMETBFT_BIN, the checkout's bin/, PATH).")


@click.group()
def node() -> None:
    """One consortium host: make its keys and card, start and stop its validator."""


@node.command("init")
@click.option("--org", required=True, help="This organization's id (a-z, 0-9, '-', '_').")
@HOST_HOME
@click.option("--name", default=None, help="Display name of the organization (default: the id).")
@click.option("--host", default=None, help="Address the other organizations dial (IP or DNS name).")
@click.option("--base-port", default=26600, show_default=True,
              help="p2p port; RPC is +1, ABCI +2 and the EVM RPC +8.")
@COMETBFT
def node_init(org: str, home: Path, name: str | None, host: str | None, base_port: int,
              cometbft_bin: Path | None) -> None:
    """Make this host's validator key, node key and issuer DID; print its public card (JSON)."""
    from fedledger.localnet.hostinit import CARD_FILE, init_host

    card = init_host(home, org, name=name, host=host, base_port=base_port, cometbft_bin=cometbft_bin)
    click.echo(json.dumps(card.to_dict(), indent=2))
    click.echo(f"card written to {home / CARD_FILE}; publish it to the other organizations "
               "(it holds no private key)", err=True)


@node.command("start")
@HOST_HOME
@click.option("--genesis", "genesis_path", type=click.Path(path_type=Path), required=True,
              help="The assembled genesis.json.")
@click.option("--genesis-hash", "genesis_sha", required=True,
              help="The sha256 the organizations agreed on (printed by `genesis assemble`/`genesis hash`).")
@click.option("--peers", multiple=True, help="Other hosts as NODE_ID@HOST:PORT (comma-separated or repeated).")
@click.option("--block-time", "block_time_ms", default=1000, show_default=True, help="Target block time in ms.")
@click.option("--rpc-host", default="127.0.0.1", show_default=True,
              help="Address the CometBFT RPC listens on (0.0.0.0: every address, for clients on other machines).")
@COMETBFT
def node_start(home: Path, genesis_path: Path, genesis_sha: str, peers: tuple[str, ...], block_time_ms: int,
               rpc_host: str, cometbft_bin: Path | None) -> None:
    """Check the genesis hash and start this host's ABCI app + cometbft under the supervisor."""
    from fedledger.localnet.hoststart import start_host

    spec = start_host(home, genesis_path, genesis_sha, list(peers), block_time_ms=block_time_ms,
                      rpc_host=rpc_host, cometbft_bin=cometbft_bin, log=lambda m: click.echo(m, err=True))
    n = spec.nodes[0]
    click.echo(f"{n.moniker} started on chain {spec.chain_id}: p2p port {n.p2p_port}, RPC port {n.rpc_port}")
    click.echo(f"stop it with: fedledger node stop --home {home}")


@node.command("stop")
@HOST_HOME
def node_stop(home: Path) -> None:
    """Stop this host's pair (keys and chain data stay)."""
    from fedledger.localnet.hoststart import stop_host

    stop_host(home)
    click.echo(f"host in {home} stopped")


@node.command("status")
@HOST_HOME
def node_status(home: Path) -> None:
    """This host's height, app hash, peers and liveness (JSON)."""
    from fedledger.localnet import manager
    from fedledger.localnet.hostinit import load_host

    host = load_host(home)
    click.echo(json.dumps([asdict(s) for s in manager.status(host.home)], indent=2))


@click.group()
def genesis() -> None:
    """Assemble and check a consortium genesis from the organizations' public cards."""


@genesis.command("assemble")
@click.argument("cards", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Where to write genesis.json.")
@click.option("--chain-id", default="fedledger-consortium", show_default=True)
@click.option("--genesis-time", default="2025-01-01T00:00:00Z", show_default=True,
              help="Fixed, so that every organization assembling the same cards gets the same bytes.")
@click.option("--enrollment-cap", default=1000, show_default=True, help="Each organization's member cap.")
@click.option("--roles", default=None, help="Comma-separated roles every organization may grant "
              "(default: the chain's default organization roles).")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@COMETBFT
def genesis_assemble(cards: tuple[Path, ...], out: Path, chain_id: str, genesis_time: str, enrollment_cap: int,
                     roles: str | None, force: bool, cometbft_bin: Path | None) -> None:
    """Build genesis.json from CARDS (one per organization) and print its sha256."""
    from fedledger.abci_app.did.credentials import DEFAULT_ORG_ROLES
    from fedledger.localnet.card import load_card
    from fedledger.localnet.ceremony import assemble_genesis, cometbft_template, genesis_hash, genesis_text
    from fedledger.localnet.errors import GenesisAssemblyError
    from fedledger.localnet.hostinit import find_cometbft_binary

    if out.exists() and not force:
        raise GenesisAssemblyError(f"{out} exists; pass --force to overwrite it")
    parsed = [load_card(p) for p in cards]
    role_list = [r.strip() for r in roles.split(",") if r.strip()] if roles is not None else list(DEFAULT_ORG_ROLES)
    template = cometbft_template(find_cometbft_binary(cometbft_bin))
    doc = assemble_genesis(parsed, template, chain_id=chain_id, genesis_time=genesis_time,
                           enrollment_cap=enrollment_cap, roles=role_list)
    data = genesis_text(doc).encode()
    out.write_bytes(data)
    click.echo(genesis_hash(data))
    click.echo(f"genesis of {len(parsed)} organizations written to {out}; every organization compares this "
               "sha256 and starts with `fedledger node start --genesis-hash`", err=True)


@genesis.command("hash")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--expect", default=None, help="Fail unless the hash is this one.")
def genesis_hash_cmd(path: Path, expect: str | None) -> None:
    """Print the sha256 of a genesis file (what the organizations compare)."""
    from fedledger.localnet.ceremony import check_genesis_hash, genesis_hash
    from fedledger.localnet.errors import GenesisAssemblyError

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise GenesisAssemblyError(f"cannot read {path}: {exc}") from exc
    click.echo(check_genesis_hash(data, expect, str(path)) if expect else genesis_hash(data))
