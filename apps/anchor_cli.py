"""`fedledger anchor …`: make the key's keystore, deploy the anchor contract, anchor checkpoints every N blocks
(or dry-run it), re-anchor after reorgs, verify a version's anchor.

The public chain comes from $FEDLEDGER_ANCHOR_RPC with $FEDLEDGER_ANCHOR_KEYSTORE (or --config
FILE, or the localnet's dev chain): see node/anchor/config.py and docs/ANCHORING.md. A private
key is never taken from the command line: `keystore import` reads it from stdin or a file, and
an argument shaped like one is refused. Every failure is one red line (the root group prints
ClientError subclasses, which all anchoring errors are).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from fedledger.abci_app.errors import EXIT_STATUS, Family

if TYPE_CHECKING:
    from fedledger.apps.context import Ctx
    from fedledger.node.anchor.config import AnchorConfig
    from fedledger.node.anchor.sender import Quote
    from fedledger.node.anchor.service import AnchorCheck

__all__ = ["anchor"]

CONFIG = click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                      default=None, help="JSON anchoring settings (default: environment, else the localnet's).")


def _prompt() -> Callable[[str], str] | None:
    """Asks for a keystore password on a terminal; None off a terminal (a script must name a password source)."""
    if not sys.stdin.isatty():
        return None
    return lambda what: str(click.prompt(what[0].upper() + what[1:], hide_input=True, err=True))


def _config(c: Ctx, config_file: Path | None) -> AnchorConfig:
    from fedledger.localnet.geth import DEV_CHAIN_FILE
    from fedledger.node.anchor.config import load_config

    return load_config(dev_chain_file=c.localnet / DEV_CHAIN_FILE if c.localnet else None, config_file=config_file,
                       prompt=_prompt())


def refuse_raw_keys(args: list[str]) -> None:
    """AnchorConfigError when an argument looks like a private key: it would sit in shell history and `ps`."""
    from fedledger.node.anchor.config import looks_like_key
    from fedledger.node.anchor.errors import AnchorConfigError

    for arg in args:
        value = arg.split("=", 1)[1] if arg.startswith("--") and "=" in arg else arg
        if looks_like_key(value):
            raise AnchorConfigError("an argument looks like a raw private key; keys are never given on the command "
                                    "line (shell history, `ps`). Encrypt it once with `fedledger anchor keystore "
                                    "import --out FILE < keyfile` and set keystore in the configuration")


class _AnchorGroup(click.Group):
    """The anchor group, which refuses a private key anywhere among its arguments before parsing them."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        refuse_raw_keys(args)
        return super().parse_args(ctx, args)


@click.group(cls=_AnchorGroup)
def anchor() -> None:
    """Anchor checkpoints to a public Ethereum chain and verify them (docs/ANCHORING.md; env: FEDLEDGER_ANCHOR_RPC,
    _KEYSTORE, _PASSWORD_FILE, _CHAIN_ID, _CONTRACT)."""


@anchor.group("keystore")
def keystore() -> None:
    """The anchoring key as an encrypted keystore file (eth-account, scrypt)."""


def _new_password(password_file: Path | None, password_env: str | None) -> str:
    import os

    from fedledger.node.anchor.errors import AnchorConfigError

    if password_file is not None and password_env is not None:
        raise click.UsageError("give at most one of --password-file and --password-env")
    if password_file is not None:
        return password_file.read_text(encoding="utf-8").rstrip("\r\n")
    if password_env is not None:
        if password_env not in os.environ:
            raise AnchorConfigError(f"--password-env names ${password_env}, which is not set")
        return os.environ[password_env]
    if not sys.stdin.isatty():
        raise AnchorConfigError("no password: give --password-file or --password-env (stdin is not a terminal)")
    return str(click.prompt("Keystore password", hide_input=True, confirmation_prompt=True, err=True))


PASSWORD_OPTIONS = [
    click.option("--password-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                 help="Read the keystore password from this file (its first line)."),
    click.option("--password-env", default=None, metavar="VAR", help="Read the keystore password from $VAR."),
]


def _password_options(fn: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(PASSWORD_OPTIONS):
        fn = option(fn)
    return fn


def _report_keystore(out: Path, address: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"keystore": str(out), "address": address}))
        return
    click.echo(f"wrote {out} (encrypted, mode 0600) for address {address}")
    click.echo(f"fund it (on Sepolia: a faucet, see docs/ANCHORING.md), then set keystore: {out} in the anchor config")


@keystore.command("new")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Keystore file to write.")
@_password_options
@click.option("--force", is_flag=True, help="Overwrite an existing file (it may hold the only copy of a key).")
@click.option("--json", "as_json", is_flag=True)
def keystore_new(out: Path, password_file: Path | None, password_env: str | None, force: bool, as_json: bool) -> None:
    """Create a new random key and write it encrypted to --out."""
    from eth_account import Account

    from fedledger.node.anchor.keystore import write_keystore

    password = _new_password(password_file, password_env)
    key = "0x" + bytes(Account.create().key).hex()
    _report_keystore(out, write_keystore(out, key, password, force=force), as_json)


@keystore.command("import")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Keystore file to write.")
@click.option("--key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Read the hex private key from this file (default: stdin).")
@_password_options
@click.option("--force", is_flag=True, help="Overwrite an existing file (it may hold the only copy of a key).")
@click.option("--json", "as_json", is_flag=True)
def keystore_import(out: Path, key_file: Path | None, password_file: Path | None, password_env: str | None,
                    force: bool, as_json: bool) -> None:
    """Encrypt an existing hex private key, read from stdin or --key-file (never from the command line)."""
    from fedledger.node.anchor.config import parse_key
    from fedledger.node.anchor.keystore import write_keystore

    if key_file is not None:
        text, where = key_file.read_text(encoding="ascii", errors="replace"), str(key_file)
    else:
        if sys.stdin.isatty():
            text = str(click.prompt("Hex private key", hide_input=True, err=True))
        else:
            text = sys.stdin.readline()
        where = "stdin"
    key = parse_key(text, where)
    password = _new_password(password_file, password_env)
    _report_keystore(out, write_keystore(out, key, password, force=force), as_json)


WEI_PER_ETH = 10**18


def _eth(wei: int) -> str:
    """Wei as ETH with all 18 decimals' worth of meaning, without float rounding."""
    whole, frac = divmod(wei, WEI_PER_ETH)
    return f"{whole}.{frac:018d}".rstrip("0").rstrip(".") if frac else str(whole)


def _quote_json(q: Quote) -> dict[str, Any]:
    return {"gas": q.gas, "tip_wei": q.tip, "max_fee_wei": q.max_fee, "base_fee_wei": q.base_fee, "nonce": q.nonce,
            "balance_wei": q.balance, "max_cost_wei": q.max_cost_wei, "max_cost_eth": _eth(q.max_cost_wei),
            "cost_now_wei": q.cost_now_wei, "cost_now_eth": _eth(q.cost_now_wei)}


def _show_quote(what: str, chain_id: int, q: Quote) -> None:
    gwei = 10**9
    click.echo(f"dry run, nothing sent: {what} on chain {chain_id}")
    click.echo(f"  gas        {q.gas} (estimate + 25%)")
    click.echo(f"  fees       tip {q.tip / gwei:.3f} gwei, fee cap {q.max_fee / gwei:.3f} gwei, "
               f"base fee now {q.base_fee / gwei:.3f} gwei")
    click.echo(f"  cost       at most {_eth(q.max_cost_wei)} ETH (gas × fee cap); {_eth(q.cost_now_wei)} ETH at the "
               f"current base fee")
    click.echo(f"  key        nonce {q.nonce}, balance {_eth(q.balance)} ETH"
               + ("" if q.balance >= q.max_cost_wei else "  — NOT ENOUGH: fund the key first"))


@anchor.command("deploy")
@CONFIG
@click.option("--dry-run", is_flag=True, help="Print the gas and the cost in ETH; send nothing.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def deploy(c: Ctx, config_file: Path | None, dry_run: bool, as_json: bool) -> None:
    """Deploy the CheckpointAnchor contract from the anchoring key."""
    from fedledger.node.anchor.config import save_contract
    from fedledger.node.anchor.contract import load_artifact
    from fedledger.node.anchor.public import PublicChain

    cfg = _config(c, config_file)
    public = PublicChain(cfg)
    if dry_run:
        q = public.sender().quote(None, load_artifact().bytecode)
        if as_json:
            click.echo(json.dumps({"dry_run": True, "chain_id": public.chain_id(), **_quote_json(q)}, indent=2))
        else:
            _show_quote("deploy CheckpointAnchor", public.chain_id(), q)
        return
    done = public.deploy()
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
@click.option("--dry-run", is_flag=True, help="Print the next batch, its gas and its cost in ETH; send nothing.")
@click.option("--check-every", "check_every_s", type=float, default=60.0, show_default=True,
              help="Seconds between reorg checks of the last 10 anchors (0: never).")
@CONFIG
@click.option("--json", "as_json", is_flag=True, help="One JSON line per anchored batch.")
@click.pass_obj
def run(c: Ctx, key_name: str, every: int, once: bool, max_batch: int, dry_run: bool, check_every_s: float,
        config_file: Path | None, as_json: bool) -> None:
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
    if dry_run:
        plan = service.plan(min_checkpoints=every)
        if plan is None:
            start, top = service.pending()
            click.echo(f"nothing to anchor: {max(0, top - start + 1)} new checkpoints wait, --every is {every}")
        elif as_json:
            click.echo(json.dumps({"dry_run": True, "from_height": plan.from_height, "to_height": plan.to_height,
                                   "root": plan.root, "contract": plan.contract, "chain_id": plan.public_chain_id,
                                   **_quote_json(plan.quote)}))
        else:
            _show_quote(f"anchor heights {plan.from_height}..{plan.to_height} (root {plan.root}) to {plan.contract}",
                        plan.public_chain_id, plan.quote)
        return

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

    def moved(found: AnchorCheck) -> None:
        _show_check(found, as_json)

    service.run(every, on_result=show, on_error=trouble, check_every_s=check_every_s or None, on_check=moved)


def _show_check(found: AnchorCheck, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"seq": found.seq, "from_height": found.from_height, "to_height": found.to_height,
                               "status": found.status, "tx_hash": found.tx_hash, "block_number": found.block_number,
                               "replaced_tx_hash": found.replaced_tx_hash, "recorded_height": found.recorded_height}))
    elif found.status == "ok":
        click.echo(f"anchor #{found.seq} (heights {found.from_height}..{found.to_height}): ok, tx {found.tx_hash} in "
                   f"canonical block {found.block_number}")
    else:
        how = ("its tx was re-included by the reorg" if found.status == "moved"
               else f"anchored again in tx {found.tx_hash}")
        click.secho(f"anchor #{found.seq} (heights {found.from_height}..{found.to_height}): a reorg removed the block "
                    f"of tx {found.replaced_tx_hash}; {how} (block {found.block_number}); reanchor recorded at height "
                    f"{found.recorded_height}", fg="yellow")
    sys.stdout.flush()


@anchor.command("check")
@click.option("--key", "key_name", required=True, help="FedLedger key admitted as validator-admin (records reanchors).")
@click.option("--last", type=int, default=None, help="Check only the last N anchors (default: all).")
@CONFIG
@click.option("--json", "as_json", is_flag=True, help="One JSON line per anchor.")
@click.pass_obj
def check(c: Ctx, key_name: str, last: int | None, config_file: Path | None, as_json: bool) -> None:
    """Re-read each recorded anchor's receipt at its block hash; re-anchor those a public-chain reorg removed."""
    from fedledger.node.anchor.checkpoints import RPCCheckpoints
    from fedledger.node.anchor.public import PublicChain
    from fedledger.node.anchor.service import AnchorService, ChainRecorder

    cfg = _config(c, config_file)
    sub = c.submitter(key_name)
    recorder = ChainRecorder(sub)
    recorder.check_signer()
    service = AnchorService(PublicChain(cfg), RPCCheckpoints(sub.rpc), recorder)
    found = service.check(last=last)
    for one in found:
        _show_check(one, as_json)
    if not as_json:
        fixed = sum(f.status != "ok" for f in found)
        click.echo(f"{len(found)} anchors checked, {fixed} re-anchored after a reorg")


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
                             "block_number": eth.block_number(), "key_address": address, "key": cfg.key_origin,
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
