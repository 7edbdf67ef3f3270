"""The `fedledger` command line: keys, tasks, contributions, queries, the localnet and the node services."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import click

from fedledger.apps.context import Ctx, FriendlyGroup, pass_ctx
from fedledger.apps.metrics_option import metrics_options, start_metrics
from fedledger.sdk.errors import ClientError
from fedledger.sdk.keys import default_home
from fedledger.sdk.steps import Action, Step

__all__ = ["main"]


def _load_config(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    """Eager: read fedledger.toml (or --config) into click's default map before any other option."""
    from fedledger.apps.config_file import default_map, find_config, load_config

    path = find_config(value)
    if path is not None:
        root = ctx.command
        assert isinstance(root, click.Group)
        ctx.default_map = default_map(root, ctx, load_config(path), path)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    from fedledger.localnet.cometbft import COMETBFT_VERSION

    try:
        mine = version("fedledger")
    except PackageNotFoundError:  # run from a checkout that was never installed
        mine = "unknown"
    return f"fedledger {mine} (ABCI 2.0; CometBFT v{COMETBFT_VERSION} pinned)"


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(_version())
        ctx.exit()


@click.group(cls=FriendlyGroup)
@click.option("--version", is_flag=True, is_eager=True, expose_value=False, callback=_print_version,
              help="Print FedLedger's version (and the CometBFT it pins) and exit.")
@click.option("--config", type=click.Path(path_type=Path), is_eager=True, expose_value=False,
              callback=_load_config,
              help="Config file with defaults for the options below and any command's (default: ./fedledger.toml).")
@click.option("--home", type=click.Path(path_type=Path), default=None, help="Client home (keys); default ~/.fedledger.")
@click.option("--node", envvar="FEDLEDGER_NODE", default=None, help="CometBFT RPC URL (default: node 0 of --localnet).")
@click.option("--localnet", "localnet_home", envvar="FEDLEDGER_LOCALNET", type=click.Path(path_type=Path),
              default=Path(".localnet"), show_default=True, help="Local network home directory.")
@click.option("--store", envvar="FEDLEDGER_STORE", default=None,
              help="Content store: embedded:DIR or kubo:URL (default: the localnet's).")
@click.option("-v", "--verbose", is_flag=True, help="Log progress details.")
@click.pass_context
def cli(ctx: click.Context, home: Path | None, node: str | None, localnet_home: Path, store: str | None,
        verbose: bool) -> None:
    """FedLedger: federated learning coordinated by a permissioned CometBFT ledger."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = Ctx(home or default_home(), node, localnet_home, store)


def _print(value: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(value, indent=2, sort_keys=True))
        return
    from rich.console import Console
    from rich.pretty import Pretty

    Console().print(Pretty(value))


# ----------------------------------------------------------------------------- keys
@cli.group()
def keys() -> None:
    """Manage local Ed25519 signing keys."""


@keys.command("create")
@click.argument("name")
@pass_ctx
def keys_create(c: Ctx, name: str) -> None:
    """Create a new key NAME."""
    key = c.keys.create(name)
    click.echo(f"created key {name}: {key.public_hex}")


@keys.command("list")
@pass_ctx
def keys_list(c: Ctx) -> None:
    """List local keys."""
    for name in c.keys.names():
        click.echo(f"{name}\t{c.keys.load(name).public_hex}")


@keys.command("show")
@click.argument("name")
@pass_ctx
def keys_show(c: Ctx, name: str) -> None:
    """Print the public key of NAME."""
    click.echo(c.keys.load(name).public_hex)


# ----------------------------------------------------------------------------- participants and tasks
@cli.command()
@click.option("--key", "key_name", required=True, help="Key to enroll (its did:key is the credential's subject).")
@click.option("--role", type=click.Choice(["trainer", "aggregator", "evaluator", "issuer", "validator-admin",
                                           "auditor"]), default="trainer", show_default=True)
@click.option("--task", "tasks", multiple=True, help="Limit the credential to these tasks (repeatable).")
@click.option("--credential", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A VC issued to this key's did:key. Default: issue one with the localnet's development issuer.")
@pass_ctx
def admit(c: Ctx, key_name: str, role: str, tasks: tuple[str, ...], credential: Path | None) -> None:
    """Enroll a key on chain with a W3C Verifiable Credential (eddsa-jcs-2022)."""
    from fedledger.client.admission import load_credential
    from fedledger.localnet.dev import dev_credential

    key = c.keys.load(key_name)
    vc = load_credential(credential) if credential else dev_credential(c.localnet, key, role, list(tasks))
    out = c.submitter(key_name).send("admit", {"credential": vc})
    click.echo(f"admitted {key_name} ({out.attr('fl', 'did')}) as {out.attr('fl', 'role')} of "
               f"{out.attr('fl', 'organization')} at height {out.height}")


def _lifecycle_params(quorum: int | None, min_accuracy: float | None, max_asr: float | None) -> dict[str, int]:
    """The task's evaluation rule in the chain's integer units (ppm for rates)."""
    out: dict[str, int] = {}
    if quorum is not None:
        out["quorum_weight"] = quorum
    if min_accuracy is not None:
        out["min_canary_accuracy_ppm"] = round(min_accuracy * 1_000_000)
    if max_asr is not None:
        out["max_backdoor_asr_ppm"] = round(max_asr * 1_000_000)
    return out


def _aggregation_policy(rule: str, byzantine: int, group: int | None, clip: str,
                        stage_blocks: int | None, compression: str = "none",
                        central_noise: str | None = None, adaptive_clip: str | None = None) -> dict[str, Any]:
    """The task's `aggregation` object from the CLI options (the chain validates it).

    A create_task body, not a record: partial (the chain fills defaults), hence free-form JSON.
    """
    secure: dict[str, Any] | None = None
    if group is not None:
        secure = {"group_size": group, "clip": clip, **({"stage_blocks": stage_blocks} if stage_blocks else {})}
    policy: dict[str, Any] = {"rule": rule, "byzantine": byzantine, "secure": secure}
    if compression == "quant8":
        policy["compression"] = {"method": "quant8"}
    elif compression.startswith("topk:") and compression[5:].isdigit():
        policy["compression"] = {"method": "topk", "fraction_ppm": int(compression[5:])}
    elif compression != "none":
        raise click.BadParameter("use none, quant8 or topk:PPM", param_hint="--compression")
    if central_noise is not None:
        policy["central_noise"] = {"noise_multiplier": central_noise, "clip": clip}
        if adaptive_clip is not None:
            parts = adaptive_clip.split(",")
            if len(parts) != 3:
                raise click.BadParameter("give QUANTILE,LR,BIT_NOISE, e.g. 0.5,0.2,2", param_hint="--adaptive-clip")
            policy["central_noise"]["adaptive"] = dict(zip(("target_quantile", "learning_rate", "bit_noise"), parts,
                                                           strict=True))
    return policy


def _resolve_key(c: Ctx, ref: str) -> str:
    """A public key given as hex or as a local key name."""
    if len(ref) == 64 and all(ch in "0123456789abcdef" for ch in ref):
        return ref
    return c.keys.load(ref).public_hex


@cli.group()
def task() -> None:
    """Create and inspect federated tasks."""


@task.command("create")
@click.option("--key", "key_name", required=True, help="Owner key (must be registered).")
@click.option("--task", "task_id", required=True)
@click.option("--model-spec", default="mlp-digits", show_default=True)
@click.option("--round-size", default=8, show_default=True, help="Maximum contributions per round.")
@click.option("--min-contributions", default=2, show_default=True)
@click.option("--deadline-blocks", default=40, show_default=True, help="Blocks a round stays open.")
@click.option("--aggregator", required=True, help="Aggregator key name or public key hex.")
@click.option("--seed", default=0, show_default=True, help="Seed of the initial model weights.")
@click.option("--epsilon", default="8", show_default=True, help="Privacy budget ε per participant.")
@click.option("--delta", default="1e-5", show_default=True, help="δ of the (ε, δ) budget.")
@click.option("--org-epsilon", default=None, help="Optional ε cap per organization.")
@click.option("--quorum-weight", type=int, default=None,
              help="Evaluator weight (reputation micro-units) that decides a version (chain default: 2 evaluators).")
@click.option("--min-accuracy", type=float, default=None, help="Canary accuracy a version needs, e.g. 0.3.")
@click.option("--max-asr", type=float, default=None, help="Highest backdoor attack success rate allowed, e.g. 0.2.")
@click.option("--rule", default="fedavg", show_default=True,
              help="Aggregation rule: fedavg, median, trimmed_mean, krum, multi_krum, bulyan, geomed, "
                   "centered_clipping.")
@click.option("--byzantine", type=int, default=0, show_default=True, help="Byzantine clients (or groups) tolerated.")
@click.option("--secure-group", type=int, default=None,
              help="Run SecAgg+ over the chain in groups of this size (the robust rule runs across group sums).")
@click.option("--clip", default="1.0", show_default=True, help="Bound on every update coordinate under SecAgg.")
@click.option("--stage-blocks", type=int, default=None, help="Blocks each SecAgg stage waits for stragglers.")
@click.option("--central-noise", default=None,
              help="Plaintext fedavg only: the aggregator clips updates to --clip (L2) and adds N(0, (σ·clip)²).")
@click.option("--adaptive-clip", default=None, metavar="QUANTILE,LR,BIT_NOISE",
              help="With --central-noise: move the clip toward this quantile of update norms (Andrew et al. 2021).")
@click.option("--compression", default="none", show_default=True,
              help="Plaintext update payloads: none, quant8, or topk:PPM (e.g. topk:10000 sends 1%).")
@pass_ctx
def task_create(c: Ctx, key_name: str, task_id: str, model_spec: str, round_size: int, min_contributions: int,
                deadline_blocks: int, aggregator: str, seed: int, epsilon: str, delta: str,
                org_epsilon: str | None, quorum_weight: int | None, min_accuracy: float | None,
                max_asr: float | None, rule: str, byzantine: int, secure_group: int | None, clip: str,
                stage_blocks: int | None, central_noise: str | None, adaptive_clip: str | None,
                compression: str) -> None:
    """Create a task; uploads the initial model (version 0) to the content store."""
    import hashlib

    from fedledger.sdk.ml.model import initial_weights
    from fedledger.sdk.tensors import encode_tensors

    payload = encode_tensors(initial_weights(model_spec, seed))
    store = c.open_store()
    cid = store.put(payload)
    store.pin(cid)
    out = c.submitter(key_name).send("create_task", {
        "task_id": task_id, "model_spec": model_spec, "round_size": round_size,
        "min_contributions": min_contributions, "deadline_blocks": deadline_blocks,
        "aggregator": _resolve_key(c, aggregator),
        "initial_model": {"cid": cid, "sha256": hashlib.sha256(payload).hexdigest(), "size": len(payload)},
        "privacy": {"epsilon": epsilon, "delta": delta, "org_epsilon": org_epsilon},
        **({"lifecycle": lifecycle} if (lifecycle := _lifecycle_params(quorum_weight, min_accuracy, max_asr)) else {}),
        "aggregation": _aggregation_policy(rule, byzantine, secure_group, clip, stage_blocks, compression,
                                           central_noise, adaptive_clip),
    })
    click.echo(f"created task {task_id} at height {out.height}; initial model {cid}; budget ε={epsilon}, δ={delta}")


@task.command("open-round")
@click.option("--key", "key_name", required=True)
@click.option("--task", "task_id", required=True)
@pass_ctx
def task_open_round(c: Ctx, key_name: str, task_id: str) -> None:
    """Open the next round of a task (owner or aggregator)."""
    from fedledger.sdk.chainview import ChainView

    sub = c.submitter(key_name)
    nxt = ChainView(sub.rpc).task(task_id)["current_round"] + 1
    out = sub.send("open_round", {"task_id": task_id, "round": nxt})
    click.echo(f"opened round {nxt} of {task_id} at height {out.height}")


@task.command("close-round")
@click.option("--key", "key_name", required=True)
@click.option("--task", "task_id", required=True)
@click.option("--round", "number", type=int, required=True)
@pass_ctx
def task_close_round(c: Ctx, key_name: str, task_id: str, number: int) -> None:
    """Close a round that is full or past its deadline."""
    out = c.submitter(key_name).send("close_round", {"task_id": task_id, "round": number})
    click.echo(f"closed round {number}: {out.attr('fl', 'status')} at height {out.height}")


def _plain_decimal(text: str, option: str) -> str:
    """A user's decimal ("1.0", "5e-2") in the canonical plain form txs carry ("1", "0.05")."""
    from decimal import Decimal, InvalidOperation

    from fedledger.abci_app.accountant import canonical_str

    try:
        return canonical_str(Decimal(text))
    except (InvalidOperation, ValueError) as exc:
        raise click.BadParameter(f"{text!r} is not a decimal number", param_hint=option) from exc


# ----------------------------------------------------------------------------- contributions
@cli.command()
@click.option("--key", "key_name", required=True, help="Trainer key.")
@click.option("--task", "task_id", required=True)
@click.option("--round", "number", type=int, required=True)
@click.option("--update", "update", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="Encoded update payload (fedledger tensor format).")
@click.option("--examples", type=int, required=True, help="Number of local training examples behind it.")
@click.option("--noise-multiplier", required=True, help="DP-SGD noise multiplier σ the update was trained with.")
@click.option("--sample-rate", required=True, help="DP-SGD Poisson sampling rate q.")
@click.option("--steps", type=int, required=True, help="DP-SGD steps T.")
@click.option("--clip-norm", required=True, help="DP-SGD per-example clipping norm C.")
@pass_ctx
def contribute(c: Ctx, key_name: str, task_id: str, number: int, update: Path, examples: int, noise_multiplier: str,
               sample_rate: str, steps: int, clip_norm: str) -> None:
    """Upload an update to the content store and commit it on chain, declaring its DP mechanism."""
    from rich.progress import Progress

    from fedledger.client.runner import contribute_update
    from fedledger.sdk.chainview import ChainView
    from fedledger.sdk.tensors import decode_tensors

    payload = update.read_bytes()
    decode_tensors(payload)  # refuse to publish something no aggregator could read
    sub = c.submitter(key_name)
    base = ChainView(sub.rpc).round(task_id, number)["base_version"]
    with Progress(transient=True) as progress:
        progress.add_task(f"uploading {len(payload)} bytes and committing", total=None)
        mechanism = {"noise_multiplier": _plain_decimal(noise_multiplier, "--noise-multiplier"),
                     "sample_rate": _plain_decimal(sample_rate, "--sample-rate"), "steps": steps,
                     "clip_norm": _plain_decimal(clip_norm, "--clip-norm")}
        receipt = contribute_update(sub, c.open_store(), task_id, number, base, payload, examples, mechanism)
    click.echo(f"committed {receipt.cid} (sha256 {receipt.sha256[:16]}…) to round {number} at height {receipt.height}")


@cli.group()
def client() -> None:
    """Participant commands."""


@client.command("run")
@click.option("--key", "key_name", required=True, help="Trainer key.")
@click.option("--task", "task_id", required=True)
@click.option("--data", "data_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="This participant's data shard (.npz with X and y).")
@click.option("--rounds", type=int, default=None, help="Stop after contributing to this many rounds.")
@click.option("--epochs", default=3, show_default=True)
@click.option("--lr", default=0.7, show_default=True)
@click.option("--noise-multiplier", default="1", show_default=True, help="DP-SGD noise multiplier σ.")
@click.option("--sample-rate", default="0.1", show_default=True, help="DP-SGD Poisson sampling rate q.")
@click.option("--clip-norm", default="1", show_default=True, help="DP-SGD per-example clipping norm C.")
@pass_ctx
def client_run(c: Ctx, key_name: str, task_id: str, data_path: Path, rounds: int | None, epochs: int,
               lr: float, noise_multiplier: str, sample_rate: str, clip_norm: str) -> None:
    """Follow a task's rounds: train locally on each open round, upload and commit."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

    from fedledger.client.receipt import ContributionReceipt
    from fedledger.client.runner import run_client
    from fedledger.sdk.ml.data import load_client_data
    from fedledger.sdk.ml.dpsgd import DPConfig

    data = load_client_data(data_path)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()) as progress:
        bar = progress.add_task(f"{task_id}: waiting for an open round", total=None)

        def show(event: str, receipt: ContributionReceipt | None) -> None:
            if receipt is None:  # training starts
                progress.update(bar, description=f"{task_id}: {event}", completed=0, total=None)
                return
            progress.console.print(f"[bold]{task_id}[/] {event}: {receipt.cid} at height {receipt.height} "
                                   f"({receipt.latency_s * 1000:.0f} ms broadcast→commit)", soft_wrap=True)
            progress.update(bar, description=f"{task_id}: waiting for the next round", completed=0, total=None)

        def trained(done: int, total: int) -> None:
            progress.update(bar, completed=done, total=total)

        dp = DPConfig(noise_multiplier=noise_multiplier, sample_rate=sample_rate, clip_norm=clip_norm)
        run_client(c.submitter(key_name), c.open_store(), task_id, data, dp, rounds=rounds, epochs=epochs, lr=lr,
                   on_event=show, train_progress=trained)


@cli.group()
def data() -> None:
    """Local training data."""


@data.command("split")
@click.option("--clients", default=8, show_default=True)
@click.option("--alpha", default=0.5, show_default=True, help="Dirichlet concentration (smaller: less IID).")
@click.option("--seed", default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("shards"), show_default=True)
def data_split(clients: int, alpha: float, seed: int, out: Path) -> None:
    """Split scikit-learn's digits non-IID into per-client shards (OUT/client<i>.npz) and a test set."""
    from fedledger.sdk.ml.data import load_digits_federated, save_client_data

    shards, test = load_digits_federated(clients, alpha=alpha, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    for i, shard in enumerate(shards):
        save_client_data(out / f"client{i}.npz", shard)
        click.echo(f"{out / f'client{i}.npz'}: {len(shard.y)} examples")
    save_client_data(out / "test.npz", test)
    click.echo(f"{out / 'test.npz'}: {len(test.y)} examples (held out)")


@cli.group()
def budget() -> None:
    """Differential-privacy budgets (the chain's own RDP accountant)."""


@budget.command("epsilon")
@click.option("--noise-multiplier", required=True, help="σ")
@click.option("--sample-rate", required=True, help="q (Poisson sampling rate)")
@click.option("--steps", type=int, required=True, help="T")
@click.option("--delta", default="1e-5", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def budget_epsilon(noise_multiplier: str, sample_rate: str, steps: int, delta: str, as_json: bool) -> None:
    """Print the ε the chain would charge for one contribution with this mechanism (from zero)."""
    from fedledger.abci_app.accountant import ZERO_RDP, AccountantError, Mechanism, charge

    try:
        mech = Mechanism.parse({"noise_multiplier": _plain_decimal(noise_multiplier, "--noise-multiplier"),
                                "sample_rate": _plain_decimal(sample_rate, "--sample-rate"), "steps": steps})
        result = charge(ZERO_RDP, mech, _plain_decimal(delta, "--delta"))
    except AccountantError as exc:
        raise ClientError(str(exc)) from exc
    value = {"epsilon": f"{result.epsilon_micro / 1_000_000:.6f}", "epsilon_micro": result.epsilon_micro,
             "order": result.order, "delta": delta, "mechanism": mech.to_json()}
    if as_json:
        click.echo(json.dumps(value, indent=2, sort_keys=True))
    else:
        click.echo(f"ε = {value['epsilon']} at δ = {delta} (RDP order {result.order}; rounded up as the chain does)")


@budget.command("show")
@click.argument("did")
@click.option("--task", "task_id", required=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def budget_show(c: Ctx, did: str, task_id: str, as_json: bool) -> None:
    """Spent and remaining ε of a participant (DID, or a local key name) on a task."""
    from fedledger.sdk.chainview import ChainView

    if not did.startswith("did:"):
        from fedledger.abci_app.did.didkey import did_from_private_key

        did = did_from_private_key(c.keys.load(did).private)
    value = ChainView(c.rpc()).get(f"/budget/{task_id}/{did}")
    value.pop("rdp", None)
    if as_json:
        click.echo(json.dumps(value, indent=2, sort_keys=True))
        return
    m = 1_000_000
    click.echo(f"{did} on {task_id}: spent ε {value['epsilon_spent_micro'] / m:.6f} of "
               f"{value['epsilon_budget_micro'] / m:.6f} (δ={value['delta']}), "
               f"{value['epsilon_remaining_micro'] / m:.6f} left, {value['contributions']} contributions")


# ----------------------------------------------------------------------------- queries
@cli.command()
@click.argument("kind", type=click.Choice(["task", "round", "contributions", "contribution", "version",
                                           "versions", "lineage", "org", "member", "whois", "budget",
                                           "reputation", "reputation-history", "attestations", "lifecycle",
                                           "proposal", "proposals", "governance", "validators", "nonce", "secagg",
                                           "anchor", "anchors", "anchor-at", "inference", "zk",
                                           "attestation", "attestation-params"]))
@click.argument("args", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--prove", "--verify", "prove", is_flag=True,
              help="Verify the answer: its Merkle proof against the next header's app hash, and that header "
                   "against the validators' commit signatures (> 2/3 of the genesis validator set).")
@click.option("--trust-genesis", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="genesis.json whose validator set is trusted (default: the localnet's).")
@pass_ctx
def query(c: Ctx, kind: str, args: tuple[str, ...], as_json: bool, prove: bool, trust_genesis: Path | None) -> None:
    """Query chain state over RPC: task T | round T R | contribution T R KEY | version T V | lineage T V |
    org ORG | member DID | whois KEY | budget T DID | inference nodes|node|policy|params|batch|request|slashes|
    encrypted … | zk params|circuit T V MODE|proof T REQUEST | attestation DID …"""
    from fedledger.sdk.chainview import ChainView

    if kind == "inference":
        kinds: tuple[str, ...] = ("nodes", "node", "policy", "params", "batch", "request", "slashes", "encrypted")
        if not args or args[0] not in kinds:
            raise click.UsageError(f"query inference takes one of {', '.join(kinds)}, e.g. "
                                   "`fedledger query inference request HASH`")
        kind, args = f"inference-{args[0]}", args[1:]
    if kind == "zk":
        kinds = ("params", "circuit", "proof")
        if not args or args[0] not in kinds:
            raise click.UsageError(f"query zk takes one of {', '.join(kinds)}, e.g. "
                                   "`fedledger query zk proof TASK REQUEST_ID`")
        kind, args = f"zk-{args[0]}", args[1:]
    view = ChainView(c.rpc())
    path = "/" + "/".join((kind, *args))
    res = view.raw(path, prove=prove)
    value = json.loads(res.value)
    if prove:
        from fedledger.localnet.dev import localnet_trust_root
        from fedledger.sdk.lightclient import TrustRoot
        from fedledger.sdk.provenance import check_query_proof

        trust = TrustRoot.from_genesis_file(trust_genesis) if trust_genesis else localnet_trust_root(c.localnet)
        verdict = check_query_proof(c.rpc(), res, trust)
        value = {"answer": value, "height": res.height, "proof": verdict}
    _print(value, as_json)


# ----------------------------------------------------------------------------- node services
@cli.group()
def aggregator() -> None:
    """Aggregator node."""


@aggregator.command("run")
@click.option("--key", "key_name", required=True, help="Aggregator key (registered with role aggregator).")
@click.option("--task", "task_id", required=True)
@click.option("--rounds", type=int, default=None, help="Stop after this many rounds.")
@metrics_options
@pass_ctx
def aggregator_run(c: Ctx, key_name: str, task_id: str, rounds: int | None, metrics_port: int | None,
                   metrics_addr: str) -> None:
    """Follow a task's events; close rounds, verify and aggregate payloads, propose versions."""
    import asyncio

    from rich.console import Console

    from fedledger.node.aggregator import Aggregator
    from fedledger.sdk.metrics import RoundClock, TimedStore, observe_step

    start_metrics(metrics_port, metrics_addr)
    console = Console()
    agg = Aggregator(c.submitter(key_name), TimedStore(c.open_store()), task_id, max_rounds=rounds)

    def show(did: Step) -> None:
        if not did.quiet or did.action is Action.ERROR:
            console.print(f"[bold]{task_id}[/] {did}", soft_wrap=True)

    asyncio.run(agg.run(on_step=observe_step(RoundClock("aggregator"), show)))


@aggregator.command("verify")
@click.option("--task", "task_id", required=True)
@click.option("--version", "version", type=int, required=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def aggregator_verify(c: Ctx, task_id: str, version: int, as_json: bool) -> None:
    """Recompute a published version from its on-chain inputs and payloads; exit 1 unless the hashes match."""
    import dataclasses

    from fedledger.node.verify import verify_version
    from fedledger.sdk.chainview import ChainView

    result = verify_version(ChainView(c.rpc()), c.open_store(), task_id, version)
    if as_json:
        click.echo(json.dumps({**dataclasses.asdict(result), "ok": result.ok}, indent=2))
    elif result.ok:
        click.secho(f"version {version} of {task_id}: recomputed from {result.inputs} "
                    f"{'secure group sums' if result.secure else 'updates'}; sha256 {result.recomputed_sha256} "
                    f"matches", fg="green")
    else:
        click.secho(f"version {version} of {task_id}: MISMATCH: published {result.published_sha256}, "
                    f"recomputed {result.recomputed_sha256}", fg="red")
    if not result.ok:
        raise SystemExit(1)


@cli.group()
def evaluator() -> None:
    """Evaluator node."""


@evaluator.command("run")
@click.option("--key", "key_name", required=True, help="Evaluator key (admitted with role evaluator).")
@click.option("--task", "task_id", required=True)
@click.option("--canary", "canary_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="This evaluator's own held-out data (.npz with X and y), e.g. shards/test.npz.")
@click.option("--target-label", default=0, show_default=True, help="Label the backdoor trigger probe targets.")
@click.option("--backdoor-scan", is_flag=True,
              help="Also scan each version for a backdoor without knowing its trigger (Neural-Cleanse style, on the "
                   "canary set); the attested ASR is the larger of the probe's and the scan's.")
@metrics_options
@pass_ctx
def evaluator_run(c: Ctx, key_name: str, task_id: str, canary_path: Path, target_label: int,
                  backdoor_scan: bool, metrics_port: int | None, metrics_addr: str) -> None:
    """Follow a task's proposals; attest canary accuracy and trigger-probe attack success of each version."""
    import asyncio

    from rich.console import Console

    from fedledger.node.evaluator import Evaluator
    from fedledger.node.probes import TriggerProbe
    from fedledger.sdk.metrics import RoundClock, TimedStore, observe_step
    from fedledger.sdk.ml.data import load_client_data

    start_metrics(metrics_port, metrics_addr)
    console = Console()
    ev = Evaluator(c.submitter(key_name), TimedStore(c.open_store()), task_id, canary=load_client_data(canary_path),
                   probe=TriggerProbe(target_label=target_label), scan=backdoor_scan)

    def show(did: Step) -> None:
        if did.action not in (Action.WAITING, Action.IDLE):
            console.print(f"[bold]{task_id}[/] {did}", soft_wrap=True)

    asyncio.run(ev.run(on_step=observe_step(RoundClock("evaluator"), show)))


@cli.command()
@click.option("--key", "key_name", required=True, help="Trainer key.")
@click.option("--task", "task_id", required=True)
@click.option("--available/--unavailable", default=True, help="Whether to be drawn for the next rounds.")
@pass_ctx
def availability(c: Ctx, key_name: str, task_id: str, available: bool) -> None:
    """Declare whether this trainer takes part in a task's next rounds (selection skips the unavailable)."""
    out = c.submitter(key_name).send("declare_availability", {"task_id": task_id, "available": available})
    click.echo(f"{key_name} is {'available' if available else 'unavailable'} for {task_id} from height {out.height}")


@cli.group()
def gov() -> None:
    """Governance: proposals by organization admins, voted per organization, executed at the deadline."""


def _admin_submitter(c: Ctx, key_name: str | None) -> Any:
    """A named key, or the localnet's development issuer (the admin of organization `local`)."""
    return c.admin_submitter(key_name)


@gov.group("propose", invoke_without_command=True)
@click.option("--key", "key_name", default=None, help="Admin key (default: the localnet's development admin).")
@click.option("--title", default=None, help="Proposal title (required with --action).")
@click.option("--action", "action_json", default=None,
              help='The action as JSON, e.g. \'{"type": "set_task_policy", "task_id": "digits", '
                   '"changes": {"epsilon": "5"}}\' or \'{"type": "rollback", "task_id": "digits"}\'.')
@pass_ctx
def gov_propose(c: Ctx, key_name: str | None, title: str | None, action_json: str | None) -> None:
    """Submit a proposal (--title and --action, or a subcommand); tallied and, if passed, executed at its deadline."""
    if click.get_current_context().invoked_subcommand is not None:
        return  # add-validator / remove-validator / set-power build the action themselves
    if title is None or action_json is None:
        raise click.UsageError("give --title and --action, or a subcommand (add-validator, remove-validator, "
                               "set-power)")
    try:
        action = json.loads(action_json)
    except json.JSONDecodeError as exc:
        raise ClientError(f"--action is not JSON: {exc}") from exc
    out = _admin_submitter(c, key_name).send("submit_proposal", {"title": title, "action": action})
    click.echo(f"proposal {out.attr('fl', 'proposal')} submitted; voting closes at height {out.attr('fl', 'deadline')}")


@gov.command("vote")
@click.argument("proposal_id", type=int)
@click.argument("option", type=click.Choice(["yes", "no", "abstain"]))
@click.option("--key", "key_name", default=None, help="Admin key (default: the localnet's development admin).")
@pass_ctx
def gov_vote(c: Ctx, proposal_id: int, option: str, key_name: str | None) -> None:
    """Vote on a proposal for your organization (a later vote replaces it)."""
    out = _admin_submitter(c, key_name).send("vote", {"proposal_id": proposal_id, "option": option})
    click.echo(f"voted {option} on proposal {proposal_id} at height {out.height}")


@gov.command("show")
@click.argument("proposal_id", type=int, required=False)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def gov_show(c: Ctx, proposal_id: int | None, as_json: bool) -> None:
    """Show one proposal, or the latest ones."""
    from fedledger.sdk.chainview import ChainView

    path = f"/proposal/{proposal_id}" if proposal_id is not None else "/proposals"
    _print(ChainView(c.rpc()).get(path), as_json)


# ----------------------------------------------------------------------------- demo
@cli.command()
@click.option("--rounds", default=5, show_default=True)
@click.option("--clients", default=8, show_default=True)
@click.option("--validators", default=4, show_default=True)
@click.option("--store", type=click.Choice(["embedded", "kubo"]), default="embedded", show_default=True)
@click.option("--demo-home", type=click.Path(path_type=Path), default=Path(".demo"), show_default=True)
@click.option("--base-port", default=26600, show_default=True)
def demo(rounds: int, clients: int, validators: int, store: str, demo_home: Path, base_port: int) -> None:
    """Start a localnet, run federated rounds on non-IID digits with live progress, print provenance, stop."""
    from fedledger.apps.demo import DemoConfig, run_demo

    run_demo(DemoConfig(home=demo_home, validators=validators, clients=clients, rounds=rounds,
                        store="kubo" if store == "kubo" else "embedded", base_port=base_port))


# ----------------------------------------------------------------------------- shell completion
@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script: `eval "$(fedledger completion bash)"` in ~/.bashrc."""
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None  # click ships all three
    click.echo(cls(cli, {}, "fedledger", "_FEDLEDGER_COMPLETE").source())


# ----------------------------------------------------------------------------- localnet, bench
def _register_late_commands() -> None:
    from fedledger.apps.identity_cli import did, vc
    from fedledger.bench.cli import bench
    from fedledger.localnet.cli import localnet

    cli.add_command(localnet)
    cli.add_command(bench)
    cli.add_command(did)
    cli.add_command(vc)
    from fedledger.apps.anchor_cli import anchor

    cli.add_command(anchor)
    from fedledger.apps.evm_cli import evm

    cli.add_command(evm)
    from fedledger.apps.experiment.cli import experiment

    cli.add_command(experiment)
    from fedledger.apps.attest_cli import attest

    cli.add_command(attest)
    from fedledger.apps.zk_cli import zk

    cli.add_command(zk)
    from fedledger.apps.inference_cli import infer, inference, model

    cli.add_command(model)
    cli.add_command(inference)
    cli.add_command(infer)
    from fedledger.apps.ceremony_cli import genesis, node

    cli.add_command(node)
    cli.add_command(genesis)
    from fedledger.apps.valset_cli import VALSET_COMMANDS

    for command in VALSET_COMMANDS:
        gov_propose.add_command(command)


def main() -> None:
    """Console-script entry point."""
    _register_late_commands()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    cli()


if __name__ == "__main__":
    main()
