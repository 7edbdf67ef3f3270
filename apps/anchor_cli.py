"""`fedledger anchor …`: deploy the anchor contract, anchor checkpoints every N blocks, verify a version's anchor.

The public chain comes from $FEDLEDGER_ANCHOR_RPC / $FEDLEDGER_ANCHOR_KEY (or --config FILE, or
the localnet's dev chain): see node/anchor/config.py. Every failure is one red line (the root
group prints ClientError subclasses, which all anchoring errors are).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from fedledger.abci_app.errors import EXIT_STATUS, Family

if TYPE_CHECKING:
    from fedledger.apps.context import Ctx
    from fedledger.node.anchor.config import AnchorConfig

__all__ = ["anchor"]

CONFIG = click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                      default=None, help="JSON anchoring settings (default: environment, else the localnet's).")


def _config(c: Ctx, config_file: Path | None) -> AnchorConfig:
    from fedledger.localnet.geth import DEV_CHAIN_FILE
    from fedledger.node.anchor.config import load_config

    return load_config(dev_chain_file=c.localnet / DEV_CHAIN_FILE if c.localnet else None, config_file=config_file)


@click.group()
def anchor() -> None:
    """Anchor checkpoints to a public Ethereum chain and verify them (env: FEDLEDGER_ANCHOR_RPC, _KEY, _CONTRACT)."""


@anchor.command("deploy")
@CONFIG
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def deploy(c: Ctx, config_file: Path | None, as_json: bool) -> None:
    """Deploy the CheckpointAnchor contract from the anchoring key."""
    from fedledger.node.anchor.config import save_contract
    from fedledger.node.anchor.public import PublicChain

    cfg = _config(c, config_file)
    done = PublicChain(cfg).deploy()
    saved = save_contract(cfg, done.address)
    if as_json:
        click.echo(json.dumps({"contract": done.address, "tx_hash": done.tx_hash, "block_number": done.block_number,
                               "gas_used": done.gas_used, "chain_id": done.chain_id}, indent=2))
        return
    click.echo(f"deployed CheckpointAnchor at {done.address} on chain {done.chain_id} (tx {done.tx_hash}, block "
               f"{done.block_number}, {done.gas_used} gas)")
    click.echo(f"saved in {saved}" if saved else f"use it with: export FEDLEDGER_ANCHOR_CONTRACT={done.address}")


@anchor.command("run")
@click.option("--key", "key_name", required=True, help="FedLedger key admitted as validator-admin (records anchors).")
@click.option("--every", default=10, show_default=True, help="Anchor once this many new checkpoints (blocks) wait.")
@click.option("--once", is_flag=True, help="Anchor what waits now (if at least --every) and exit.")
@click.option("--max-batch", default=10_000, show_default=True, help="Most checkpoints in one anchor.")
@CONFIG
@click.option("--json", "as_json", is_flag=True, help="One JSON line per anchored batch.")
@click.pass_obj
def run(c: Ctx, key_name: str, every: int, once: bool, max_batch: int, config_file: Path | None,
        as_json: bool) -> None:
    """Every N blocks: Merkle root of the new checkpoints → public chain → confirmations → anchor record here."""
    from fedledger.node.anchor.checkpoints import RPCCheckpoints
    from fedledger.node.anchor.public import PublicChain
    from fedledger.node.anchor.service import AnchorResult, AnchorService, ChainRecorder

    if every < 1:
        raise click.BadParameter("must be at least 1", param_hint="--every")
    cfg = _config(c, config_file)
    sub = c.submitter(key_name)
    recorder = ChainRecorder(sub)
    recorder.check_signer()  # a key that may not record would pay for public txs in vain
    public = PublicChain(cfg)
    public.contract()  # check chain id, contract and owner before waiting for blocks
    service = AnchorService(public, RPCCheckpoints(sub.rpc), recorder, max_batch=max_batch)

    def show(r: AnchorResult) -> None:
        if as_json:
            click.echo(json.dumps({"from_height": r.from_height, "to_height": r.to_height, "root": r.root,
                                   "tx_hash": r.tx_hash, "attempts": list(r.attempts), "block_number": r.block_number,
                                   "public_chain_id": r.public_chain_id, "gas_used": r.gas_used,
                                   "confirmations": r.confirmations, "recorded_height": r.recorded_height,
                                   "seconds": round(r.seconds, 3)}))
        else:
            click.echo(f"anchored heights {r.from_height}..{r.to_height} ({r.checkpoints} checkpoints) root {r.root} "
                       f"in tx {r.tx_hash} (block {r.block_number}, chain {r.public_chain_id}, {r.gas_used} gas, "
                       f"{r.confirmations} confirmations); recorded at height {r.recorded_height}")
        sys.stdout.flush()

    if once:
        result = service.anchor_once(min_checkpoints=every)
        if result is None:
            start, top = service.pending()
            click.echo(f"nothing to anchor: {max(0, top - start + 1)} new checkpoints wait, --every is {every}")
        else:
            show(result)
        return
    click.echo(f"anchoring every {every} blocks to {public.contract()} on chain {public.chain_id()} "
               f"({cfg.confirmations} confirmations); Ctrl-C stops", err=True)
    def trouble(exc: Exception) -> None:
        click.secho(f"warning: {exc}; nothing recorded, retrying", fg="yellow", err=True)

    service.run(every, on_result=show, on_error=trouble)


@anchor.command("proof")
@click.option("--task", "task_id", required=True)
@click.option("--version", "version", type=int, required=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write here (default: stdout).")
@click.pass_obj
def proof(c: Ctx, task_id: str, version: int, out: Path | None) -> None:
    """Build the inclusion proof of a version's checkpoint (JSON), to check later with `verify --proof`."""
    from fedledger.node.anchor.verify import build_bundle

    text = json.dumps(build_bundle(c.rpc(), task_id, version).to_json(), indent=2, sort_keys=True) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote the proof of {task_id} v{version} to {out}")


@anchor.command("verify")
@click.option("--task", "task_id", default=None, help="Task of the version (with --version).")
@click.option("--version", "version", type=int, default=None, help="Version whose checkpoint to verify.")
@click.option("--proof", "proof_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Check a proof bundle from `anchor proof` instead (needs no FedLedger node).")
@click.option("--contract", default=None,
              help="The trusted anchor contract (default: the configured one, else the one the anchor names).")
@click.option("--min-confirmations", type=int, default=1, show_default=True)
@CONFIG
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def verify(c: Ctx, task_id: str | None, version: int | None, proof_file: Path | None, contract: str | None,
           min_confirmations: int, config_file: Path | None, as_json: bool) -> None:
    """Check a version's checkpoint proof against the anchor tx's receipt, fetched live over JSON-RPC."""
    from fedledger.node.anchor.config import parse_address
    from fedledger.node.anchor.eth import Web3Eth
    from fedledger.node.anchor.verify import ProofBundle, build_bundle, verify_bundle
    from fedledger.sdk.errors import ClientError

    if proof_file is not None:
        if task_id is not None or version is not None:
            raise click.UsageError("give either --proof or --task and --version")
        try:
            bundle = ProofBundle.from_json(json.loads(proof_file.read_text(encoding="utf-8")))
        except ValueError as exc:
            raise ClientError(f"{proof_file} is not a proof bundle: {exc}") from exc
    elif task_id is None or version is None:
        raise click.UsageError("give --task and --version (or --proof FILE)")
    else:
        bundle = build_bundle(c.rpc(), task_id, version)
    cfg = _config(c, config_file)
    trusted = parse_address(contract, "--contract") if contract else cfg.contract
    verdict = verify_bundle(bundle, Web3Eth(cfg.rpc_url, attempts=cfg.rpc_attempts), contract=trusted,
                            min_confirmations=min_confirmations)
    if as_json:
        click.echo(json.dumps({"task_id": bundle.task_id, "version": bundle.version, **verdict.to_json()}, indent=2))
    else:
        for check in verdict.checks:
            mark = click.style("ok  ", fg="green") if check.ok else click.style("FAIL", fg="red")
            click.echo(f"{mark} {check.name}: {check.detail}")
        if verdict.ok:
            click.secho(f"VERIFIED: {bundle.task_id} v{bundle.version} (height {bundle.checkpoint.height}) is anchored "
                        f"in tx {bundle.anchor['tx_hash']} on chain {bundle.anchor['public_chain_id']}", fg="green")
        else:
            click.secho(f"NOT VERIFIED: {bundle.task_id} v{bundle.version}", fg="red", err=True)
    if not verdict.ok:
        sys.exit(EXIT_STATUS[Family.CRYPTO])  # the anchored record does not verify: treat it as forged


@anchor.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def list_anchors(c: Ctx, as_json: bool) -> None:
    """The anchors recorded on the permissioned chain (the latest 100)."""
    from fedledger.sdk.chainview import ChainView

    answer = ChainView(c.rpc()).get("/anchors")
    if as_json:
        click.echo(json.dumps(answer, indent=2, sort_keys=True))
        return
    click.echo(f"{answer['count']} anchors; heights 1..{answer['anchored_to']} anchored")
    for a in answer["anchors"]:
        click.echo(f"#{a['seq']}: heights {a['from_height']}..{a['to_height']} root {a['root']} tx {a['tx_hash']} "
                   f"(chain {a['public_chain_id']}, block {a['block_number']}), recorded at {a['recorded_height']}")


@anchor.command("status")
@CONFIG
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def status(c: Ctx, config_file: Path | None, as_json: bool) -> None:
    """Where anchoring goes and how far it got: public chain, key, balance, contract, anchored heights."""
    from eth_account import Account

    from fedledger.node.anchor.eth import Web3Eth
    from fedledger.sdk.chainview import ChainView

    cfg = _config(c, config_file)
    eth = Web3Eth(cfg.rpc_url, attempts=cfg.rpc_attempts)
    address = str(Account.from_key(cfg.key).address)
    value: dict[str, Any] = {"rpc_url": cfg.rpc_url, "source": cfg.source, "chain_id": eth.chain_id(),
                             "block_number": eth.block_number(), "key_address": address,
                             "balance_wei": eth.balance(address), "contract": cfg.contract,
                             "contract_has_code": bool(eth.code(cfg.contract)) if cfg.contract else None}
    view = ChainView(c.rpc())
    answer = view.get("/anchors")
    value.update(anchors=answer["count"], anchored_to=answer["anchored_to"], chain_height=c.rpc().height())
    if as_json:
        click.echo(json.dumps(value, indent=2, sort_keys=True))
        return
    for k, v in value.items():
        click.echo(f"{k:18s} {v}")
