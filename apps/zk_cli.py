"""`fedledger zk setup` and the zk half of `fedledger infer --tier critical --proof`.

`zk setup` builds a promoted version's circuit from its verified artifact (sdk/zk/setup.py) and
registers its settings and vk on chain: the vk's sha256 is the commitment to the weights. `infer
--proof` asks a node serving the task to prove one inference, verifies the proof here against
the chain's vk with the chain's SRS, posts it (with --key), and prints the chain's verdict.

The SRS is the one the chain pins (query /zk-params): --zk-srs PATH, or the localnet's dev SRS.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import click
import numpy as np

from fedledger.abci_app.errors import ChainRejectedError, ConfigError, UnavailableError
from fedledger.apps.context import Ctx, pass_ctx

__all__ = ["SRS_OPTION", "proven_infer", "resolve_srs", "zk"]

SRS_OPTION = click.option("--zk-srs", "srs_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                          default=None, help="The SRS the chain pins (default: the localnet's development SRS).")


class SrsMissingError(ConfigError):
    """No SRS file was given and the localnet has none."""

    error_code = "ZK_SRS_MISSING"


class NoProverError(UnavailableError):
    """No active inference node serving the task answered a proving request."""

    error_code = "ZK_NO_PROVER"


def resolve_srs(c: Ctx, path: Path | None) -> Any:
    """The SRS file, checked against the sha256 the chain pins (ZkSRSError if it is another one)."""
    from fedledger.localnet.zk_srs import net_srs_path
    from fedledger.sdk.chainview import ChainView
    from fedledger.sdk.zk.srs import load_srs

    pinned = ChainView(c.rpc()).get("/zk-params")
    if not pinned["srs_sha256"]:
        raise SrsMissingError("this chain pins no SRS (genesis section zk), so it verifies no proof")
    path = path or net_srs_path(c.localnet)
    if path is None:
        raise SrsMissingError(f"no SRS file: pass --zk-srs PATH (the file whose sha256 is {pinned['srs_sha256']})")
    return load_srs(path, int(pinned["srs_logrows"]), pinned["srs_sha256"])


@click.group()
def zk() -> None:
    """Zero-knowledge proofs of inference (ezkl): circuits per version."""


@zk.command("setup")
@click.option("--key", "key_name", required=True, help="The task's owner or aggregator key.")
@click.option("--task", "task_id", required=True)
@click.option("--version", "version", type=int, default=None, help="Default: the task's last good version.")
@click.option("--input-mode", type=click.Choice(["hashed", "private"]), default="hashed", show_default=True,
              help="hashed: the proof binds the input's Poseidon hash; private: nothing about the input is public.")
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where keys are kept (default: HOME/zk-cache).")
@SRS_OPTION
@pass_ctx
def zk_setup(c: Ctx, key_name: str, task_id: str, version: int | None, input_mode: str, cache_dir: Path | None,
             srs_path: Path | None) -> None:
    """Build VERSION's circuit from its verified artifact and register its settings and vk on chain."""
    from fedledger.sdk.chainview import ChainView
    from fedledger.sdk.zk.setup import CircuitSetup

    view = ChainView(c.rpc())
    version = view.last_good(task_id) if version is None else version
    record = view.version(task_id, version)
    artifact = record.get("artifact")
    if not artifact:
        raise NoArtifactError(f"version {version} of {task_id!r} has no ONNX artifact to build a circuit from")
    data = c.open_store().get(artifact["cid"], artifact["sha256"])  # the store checks the chain's sha256
    srs = resolve_srs(c, srs_path)
    click.echo(f"building the {input_mode} circuit of {task_id} v{version} (2^{srs.logrows}-row SRS) …", err=True)
    setup = CircuitSetup.build(task_id, version, input_mode, data, srs, cache_dir or c.home / "zk-cache")
    result = c.submitter(key_name).send("register_zk_circuit", setup.register_body())
    click.echo(f"registered {task_id} v{version} {input_mode}: 2^{setup.facts.logrows} rows, vk sha256 "
               f"{setup.vk_sha256[:16]}… (the weights' commitment), settings {setup.settings_sha256[:16]}… "
               f"(height {result.height})")


class NoArtifactError(ChainRejectedError):
    """The version carries no ONNX artifact."""

    error_code = "ZK_NO_ARTIFACT"


def proven_infer(c: Ctx, task_id: str, arr: np.ndarray, input_mode: str, key_name: str | None,
                 srs_path: Path | None, wait_s: float, as_json: bool) -> None:
    """--tier critical --proof: one proven inference from a node serving the task, verified here, posted with --key."""
    import httpx

    from fedledger.abci_app.modules.zk.verifier import ZkVerifier
    from fedledger.client.infer import TierError
    from fedledger.client.zk_infer import ProverUnavailableError, ZkInferenceClient
    from fedledger.sdk.chainview import ChainView

    view = ChainView(c.rpc())
    policy = view.get(f"/inference-policy/{task_id}")
    if policy["tier"] != "critical" or "zk" not in policy.get("guarantees", []):
        raise TierError(f"task {task_id!r}'s policy does not accept zk proofs (tier {policy['tier']}, guarantees "
                        f"{policy.get('guarantees', [])})")
    version = view.last_good(task_id)
    if not view.exists(f"/zk-circuit/{task_id}/{version}/{input_mode}"):
        raise NoCircuitError(f"version {version} of {task_id!r} has no registered {input_mode} circuit: its owner "
                             f"runs `fedledger zk setup --task {task_id} --version {version}`")
    srs = resolve_srs(c, srs_path)
    nodes = [n for n in view.get("/inference-nodes")["nodes"] if n["status"] == "active" and task_id in n["tasks"]]
    sender = c.submitter(key_name) if key_name else None
    verifier = ZkVerifier(srs.path)
    request_id = secrets.token_hex(16)
    failures: list[str] = []
    try:
        for node in nodes:
            with httpx.Client(base_url=node["endpoint"], timeout=30.0) as http:
                client = ZkInferenceClient(http, view, verifier, task_id, task_id, sender)
                try:
                    result = client.infer(version, arr, request_id, input_mode, timeout_s=wait_s)
                except ProverUnavailableError as exc:
                    failures.append(f"{node['endpoint']}: {exc}")
                    continue
            _print(task_id, version, node, request_id, result, as_json)
            return
    finally:
        verifier.close()
    raise NoProverError(f"no node serving {task_id!r} proved the inference ({len(nodes)} tried): "
                        + "; ".join(failures)[:600])


class NoCircuitError(ChainRejectedError):
    """The promoted version has no registered circuit for the input mode."""

    error_code = "ZK_NO_CIRCUIT"


def _print(task_id: str, version: int, node: dict[str, Any], request_id: str, result: Any, as_json: bool) -> None:
    outputs = list(result.outputs)
    summary = {"task": task_id, "version": version, "request_id": request_id, "node": node["did"],
               "endpoint": node["endpoint"], "outputs": outputs, "argmax": int(np.argmax(outputs)),
               "input_hash": result.proof.input_hash,
               "proof_bytes": len(result.proof.proof), "record": result.record}
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"{task_id} v{version}: proven by {node['did'][-12:]} ({node['endpoint']}), verified here against the "
               f"chain's vk; argmax {summary['argmax']}")
    if result.record is not None:
        click.echo(f"  on chain: verdict {result.record['verdict']}, guarantee {result.record['guarantee']}, height "
                   f"{result.record['height']} (fedledger query zk proof {task_id} {request_id})")
    else:
        click.echo("  not posted (give --key to file the proof on chain)")
