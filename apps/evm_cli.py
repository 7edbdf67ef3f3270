"""`fedledger evm …`: bind an Ethereum key to your DID, and see the chain's EVM (chain id, RPC URLs, policies)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from fedledger.sdk.errors import ClientError

__all__ = ["evm", "load_eth_key"]


def load_eth_key(value: str) -> Any:
    """An eth-account LocalAccount from a 32-byte hex private key, or from a file holding one."""
    from eth_account import Account

    text = value.strip()
    path = Path(value).expanduser()
    if path.is_file():
        try:
            text = path.read_text().strip()
        except OSError as exc:
            raise ClientError(f"cannot read the Ethereum key file {path}: {exc}") from exc
    try:
        return Account.from_key(text)
    except (ValueError, TypeError) as exc:
        raise ClientError("the Ethereum key must be 32 bytes of hex (0x…) or a file holding them") from exc


def _ctx() -> Any:
    return click.get_current_context().find_root().obj


def _query(path: str) -> Any:
    rpc = _ctx().rpc()
    try:
        res = rpc.abci_query(path)
    finally:
        rpc.close()
    if res.code != 0:
        raise ClientError(f"query {path} failed with code {res.code}: {res.log}")
    return json.loads(res.value)


@click.group()
def evm() -> None:
    """The embedded EVM: address bindings, chain id and JSON-RPC endpoints, policy contracts."""


@evm.command("bind")
@click.option("--key", "key_name", required=True, help="Your FedLedger key (an enrolled member).")
@click.option("--eth-key", required=True, envvar="FEDLEDGER_ETH_KEY",
              help="The Ethereum private key (hex) to bind, or a file holding it.")
def evm_bind(key_name: str, eth_key: str) -> None:
    """Bind an Ethereum address to your DID, so that it may send EVM txs (signed by both keys)."""
    from eth_account import Account
    from eth_account.messages import encode_defunct

    from fedledger.abci_app.did.didkey import did_from_private_key
    from fedledger.abci_app.evm_engine.binding import binding_message

    c = _ctx()
    account = load_eth_key(eth_key)
    sub = c.submitter(key_name)
    message = binding_message(sub.chain_id, did_from_private_key(sub.key.private), account.address)
    signature = Account.sign_message(encode_defunct(primitive=message), account.key).signature
    out = sub.send("bind_evm_address", {"address": account.address.lower(), "signature": "0x" + bytes(signature).hex()})
    click.echo(f"bound {account.address} to {did_from_private_key(sub.key.private)} at height {out.height}")


@evm.command("info")
@click.option("--json", "as_json", is_flag=True)
def evm_info(as_json: bool) -> None:
    """The EVM's chain id, gas limits, state root and the localnet's Ethereum JSON-RPC URLs."""
    from fedledger.localnet.config import load_spec
    from fedledger.localnet.errors import LocalnetError

    info = dict(_query("/evm/params"))
    try:
        info["json_rpc"] = [n.evm_rpc_url for n in load_spec(_ctx().localnet).nodes]
    except LocalnetError:
        info["json_rpc"] = []
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"chain id {info['chain_id']}, block gas limit {info['block_gas_limit']}, policy gas "
               f"{info['policy_gas']}, state root {info['state_root']}")
    for url in info["json_rpc"]:
        click.echo(f"  web3 endpoint: {url}")


@evm.command("policy")
@click.argument("kind", type=click.Choice(["admission", "promotion"]))
@click.option("--task", "task_id", default=None, help="A task (default: the chain-wide policy).")
@click.option("--json", "as_json", is_flag=True)
def evm_policy(kind: str, task_id: str | None, as_json: bool) -> None:
    """The policy contract of KIND that applies (to a task, or chain-wide)."""
    answer = _query(f"/evm/policy/{kind}" + (f"/{task_id}" if task_id else ""))
    if as_json:
        click.echo(json.dumps(answer, indent=2))
    else:
        click.echo(f"{kind} policy{' of ' + task_id if task_id else ''}: {answer['contract'] or 'none'} "
                   f"({answer['scope']})")
