"""CLI for decentralized inference: export a version's ONNX artifact, run an inference node, ask for answers."""

from __future__ import annotations

import hashlib
import json
import signal
import threading
from pathlib import Path
from typing import Any

import click
import numpy as np

from fedledger.apps.context import Ctx, fail, pass_ctx
from fedledger.apps.metrics_option import metrics_options, start_metrics
from fedledger.apps.zk_cli import SRS_OPTION, proven_infer, resolve_srs
from fedledger.sdk.errors import ClientError

__all__ = ["infer", "inference", "model"]


class InputFileError(ClientError):
    """The --input file is not a readable .npy array."""

    error_code = "INFERENCE_INPUT"


@click.group()
def model() -> None:
    """Model artifacts: the portable ONNX export of a version, checked against the chain."""


@model.command("export")
@click.argument("task_id")
@click.argument("version", type=int)
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Where to write.")
@click.option("--no-rebuild-check", is_flag=True,
              help="Skip rebuilding the ONNX file from the version's weights (the sha256 is still checked).")
@pass_ctx
def model_export(c: Ctx, task_id: str, version: int, out: Path, no_rebuild_check: bool) -> None:
    """Write VERSION's ONNX artifact after checking its sha256 against the chain (and that the weights rebuild it)."""
    from fedledger.sdk.chainview import ChainView
    from fedledger.sdk.inference.onnx_export import export_onnx
    from fedledger.sdk.tensors import decode_tensors

    view = ChainView(c.rpc())
    rec = view.version(task_id, version)
    artifact = rec.get("artifact")
    if artifact is None:
        fail(f"version {version} of {task_id!r} was proposed without an ONNX artifact (by an aggregator without "
             "the inference extra); nothing to export", 3)
    store = c.open_store()
    data = store.get(artifact["cid"], artifact["sha256"])
    if hashlib.sha256(data).hexdigest() != artifact["sha256"]:
        fail(f"the store returned bytes whose sha256 is not the one on chain for version {version}", 6)
    rebuilt = "skipped"
    if not no_rebuild_check:
        weights = decode_tensors(store.get(rec["cid"], rec["sha256"]))
        again = export_onnx(view.task(task_id)["model_spec"], weights)
        if hashlib.sha256(again).hexdigest() != artifact["sha256"]:
            fail(f"version {version}'s artifact is not the export of its recorded weights", 6)
        rebuilt = "the version's weights rebuild it byte for byte"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    click.echo(f"wrote {out} ({len(data)} bytes): version {version} of {task_id}, sha256 {artifact['sha256'][:16]}… "
               f"matches the chain; {rebuilt}")


@click.group()
def inference() -> None:
    """Inference nodes and task tiers."""


@inference.command("serve")
@click.option("--key", "key_name", required=True, help="The node's key (admitted with role inference).")
@click.option("--task", "task_id", required=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8100, show_default=True, help="0: any free port.")
@click.option("--advertise", default=None, help="The URL registered on chain (default: http://HOST:PORT).")
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where verified artifacts are kept for partitions (default: HOME/inference-cache).")
@click.option("--poll", default=2.0, show_default=True,
              help="Seconds between chain polls (it also wakes on every new block).")
@click.option("--max-batch", default=64, show_default=True, help="Rows per dynamic batch (1: no batching).")
@click.option("--fault", type=click.Choice(["random", "perturb", "stale"]), default=None,
              help="EXPERIMENTS ONLY: run as a lying node (see node/inference/faults.py); it will be slashed.")
@click.option("--he-stages", "he_stages", default=None, metavar="I[,J...]",
              help="Also serve these encrypted (CKKS) stages of a square-activation model, e.g. 0 or 1; hold one "
                   "stage per node so that no node holds the whole model.")
@click.option("--zk", "prove", is_flag=True,
              help="Also prove answers on request (ezkl; critical tier), with keys built per version and cached.")
@SRS_OPTION
@metrics_options
@pass_ctx
def inference_serve(c: Ctx, key_name: str, task_id: str, host: str, port: int, advertise: str | None,
                    cache_dir: Path | None, poll: float, max_batch: int, fault: str | None,
                    he_stages: str | None, prove: bool, srs_path: Path | None, metrics_port: int | None,
                    metrics_addr: str) -> None:
    """Serve TASK's last good version over the Open Inference Protocol v2, signing a receipt for every answer."""
    from fedledger.node.inference.faults import make_fault
    from fedledger.node.inference.service import InferenceNode
    from fedledger.sdk.chainview import ChainView
    from fedledger.sdk.metrics import TimedStore

    stages = _parse_stages(he_stages) if he_stages is not None else None
    srs = resolve_srs(c, srs_path) if prove else None
    start_metrics(metrics_port, metrics_addr)
    rpc = c.rpc()
    key = c.keys.load(key_name)
    if fault is not None:
        click.secho(f"warning: this node lies ({fault}); honest nodes will outvote it and the chain will slash it",
                    fg="red", err=True)
    node = InferenceNode(key=key, task_id=task_id, view=ChainView(rpc), status=rpc.status,
                         store=TimedStore(c.open_store()),
                         cache_dir=cache_dir or c.home / "inference-cache", submitter=c.submitter(key_name),
                         host=host, port=port, poll=poll, advertise=advertise, max_batch=max_batch,
                         transform=make_fault(fault) if fault else None, events_url=rpc.url, he_stages=stages,
                         zk_srs=srs)
    url = node.start()
    click.echo(f"serving {task_id} version {node.version} on {url} (OIP v2: {url}/v2/models/{task_id}); Ctrl-C stops")
    if stages is not None:
        click.echo(f"  encrypted stages {','.join(map(str, stages))} (health: {url}/v2/he/health)")
    if srs is not None:
        click.echo(f"  proving on request: POST {url}/v2/models/{task_id}/versions/V/prove")
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        while not done.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        node.stop()


@inference.command("policy")
@click.option("--key", "key_name", required=True, help="The task owner's key.")
@click.option("--task", "task_id", required=True)
@click.option("--tier", type=click.Choice(["general", "critical"]), required=True)
@click.option("--k", "k", type=click.IntRange(1, 9), default=3, show_default=True, help="Nodes per request.")
@click.option("--guarantee", "guarantees", multiple=True, type=click.Choice(["ckks", "zk"]),
              help="critical tier: a guarantee that satisfies the task (repeat for several; any one suffices).")
@click.option("--require-tee", is_flag=True,
              help="Nodes must hold a valid, unexpired AMD SEV-SNP attestation bound to their key to register.")
@click.option("--tee-measurement", "measurements", multiple=True, metavar="HEX96",
              help="With --require-tee: an allowed launch measurement (repeat; none given: any measurement).")
@click.option("--tee-min-tcb", default="0,0,0,0", show_default=True, metavar="BL,TEE,SNP,UCODE",
              help="With --require-tee: the lowest TCB levels accepted.")
@pass_ctx
def inference_policy(c: Ctx, key_name: str, task_id: str, tier: str, k: int, guarantees: tuple[str, ...],
                     require_tee: bool, measurements: tuple[str, ...], tee_min_tcb: str) -> None:
    """Set which inference tier TASK requires, how many nodes answer each request, and whether nodes need a TEE."""
    if tier == "critical" and not guarantees:
        raise click.UsageError("a critical tier needs at least one --guarantee (zk, ckks)")
    if tier == "general" and guarantees:
        raise click.UsageError("--guarantee belongs to the critical tier")
    if measurements and not require_tee:
        raise click.UsageError("--tee-measurement needs --require-tee")
    body: dict[str, object] = {"task_id": task_id, "tier": tier, "k": k}
    if guarantees:
        body["guarantees"] = sorted(set(guarantees))
    if require_tee:
        body["require_tee"] = _tee_requirement(measurements, tee_min_tcb)
    result = c.submitter(key_name).send("set_inference_policy", body)
    extra = f", guarantees {'+'.join(sorted(set(guarantees)))}" if guarantees else ""
    extra += ", TEE required" if require_tee else ""
    click.echo(f"task {task_id}: tier {tier}, k = {k}{extra} (height {result.height})")


def _tee_requirement(measurements: tuple[str, ...], min_tcb: str) -> dict[str, object]:
    """The policy's require_tee object from the CLI's options (the chain re-checks every field)."""
    parts = min_tcb.split(",")
    if len(parts) != 4 or not all(p.strip().isdigit() and int(p) <= 255 for p in parts):
        raise click.BadParameter("expected four levels 0-255 such as 3,0,8,115", param_hint="--tee-min-tcb")
    bl, tee, snp, ucode = (int(p) for p in parts)
    ms = sorted({m.lower() for m in measurements})
    if not all(len(m) == 96 and all(ch in "0123456789abcdef" for ch in m) for m in ms):
        raise click.BadParameter("a launch measurement is 96 hex characters (SHA-384)", param_hint="--tee-measurement")
    return {"measurements": ms, "min_tcb": {"bootloader": bl, "tee": tee, "snp": snp, "microcode": ucode}}


def _parse_stages(text: str) -> tuple[int, ...]:
    """--he-stages "0,1" as (0, 1); a usage error for anything but comma-separated stage indices."""
    parts = [p.strip() for p in text.split(",")]
    if not parts or not all(p.isdigit() and int(p) < 8 for p in parts):
        raise click.BadParameter(f"{text!r} is not a comma-separated list of stage indices 0-7",
                                 param_hint="--he-stages")
    return tuple(sorted({int(p) for p in parts}))


def _load_input(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputFileError(f"{path} is not a readable .npy array: {exc}") from exc
    if not isinstance(arr, np.ndarray):
        raise InputFileError(f"{path} holds several arrays; give one .npy array")
    return arr


@click.command()
@click.option("--task", "task_id", required=True)
@click.option("--input", "input_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="A .npy array (float32 rows for the task models).")
@click.option("--input-name", default=None, help="The model input it feeds (default: the model's only input).")
@click.option("--k", "k", type=click.IntRange(1, 9), default=None, help="Nodes to ask (default: the task policy's).")
@click.option("--key", "key_name", default=None, help="A member key: post the receipts to the chain with it.")
@click.option("--split", "parts", type=click.IntRange(2, 8), default=None,
              help="Split inference in PARTS parts: run the first here, the rest on nodes (each stage on k nodes, "
                   "default 1).")
@click.option("--tier", type=click.Choice(["general", "critical"]), default="general", show_default=True,
              help="general: consensus-verified answers; critical: needs --encrypted or --proof.")
@click.option("--proof", is_flag=True,
              help="critical tier: a node proves the inference (ezkl); the proof is checked here against the "
                   "chain's vk and, with --key, filed on chain, where every validator verifies it.")
@click.option("--input-mode", type=click.Choice(["hashed", "private"]), default="hashed", show_default=True,
              help="--proof: hashed binds the input's Poseidon hash into the proof; private makes nothing public.")
@click.option("--wait", "wait_s", type=float, default=300.0, show_default=True, help="--proof: seconds to wait.")
@SRS_OPTION
@click.option("--encrypted", is_flag=True,
              help="critical tier: CKKS-encrypted inference through one node per stage (the task's policy must "
                   "list the ckks guarantee); with --key the stage receipts are reported on chain.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def infer(c: Ctx, task_id: str, input_path: Path, input_name: str | None, k: int | None, key_name: str | None,
          parts: int | None, tier: str, proof: bool, input_mode: str, wait_s: float, srs_path: Path | None,
          encrypted: bool, as_json: bool) -> None:
    """Ask k chain-selected inference nodes, verify their signed receipts, and print the majority's answer."""
    from fedledger.client.infer import VerifiedInference
    from fedledger.client.receipt_reporter import ReceiptReporter
    from fedledger.sdk.chainview import ChainView

    if (encrypted or proof) and tier != "critical":
        raise click.UsageError("--encrypted and --proof belong to the critical tier: add --tier critical")
    if tier == "critical" and encrypted == proof:
        raise click.UsageError("--tier critical needs one guarantee: --encrypted (CKKS) or --proof (zk)")
    arr = _load_input(input_path)
    if proof:
        if parts is not None or k is not None or input_name is not None:
            raise click.UsageError("--proof asks one node: --split, --k and --input-name do not apply")
        proven_infer(c, task_id, arr, input_mode, key_name, srs_path, wait_s, as_json)
        return
    if encrypted:
        if parts is not None or k is not None or input_name is not None:
            raise click.UsageError("--encrypted runs one node per stage: --split, --k and --input-name do not apply")
        _encrypted(c, task_id, arr, key_name, as_json)
        return
    rpc = c.rpc()
    reporter = ReceiptReporter(c.submitter(key_name), task_id, store=c.open_store()) if key_name else None
    if parts is not None:
        _split(c, rpc, task_id, arr, input_name, parts, k or 1, reporter, as_json)
        return
    client = VerifiedInference(ChainView(rpc), rpc.status, task_id, k=k, sink=reporter)
    try:
        name = input_name or client.input_name()
        answer = client.infer({name: arr.astype(client.input_dtype(name), copy=False)})
    finally:
        client.close()
    posted: Any = None
    if reporter is not None:
        reporter.close()
        posted = [p.__dict__ for p in reporter.posted]
    argmax = {n: np.asarray(v).argmax(axis=-1).tolist() for n, v in answer.outputs.items() if v.ndim >= 1}
    summary = {
        "task": task_id, "version": answer.version, "request_id": answer.request_id,
        "outputs": {n: v.tolist() for n, v in answer.outputs.items()}, "argmax": argmax,
        "outcome": answer.tally.outcome, "majority": list(answer.tally.majority),
        "dissenters": list(answer.dissenters), "failed": [list(f) for f in answer.failed],
        "selected_at_height": answer.selection_height, "receipts": [r.hash for r in answer.receipts],
        "request_hash": answer.request_hash, "posted": posted,
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"{task_id} v{answer.version}: {answer.tally.outcome} of {len(answer.answers)} nodes "
               f"(selected at height {answer.selection_height})")
    for n, v in argmax.items():
        click.echo(f"  {n} argmax: {v}")
    for a in answer.answers:
        mark = "dissent" if a.did in answer.dissenters else ("failed: " + a.error if a.error else "agreed")
        click.echo(f"  {a.did[-12:]} {a.endpoint}  {mark}{'  (stale)' if a.stale else ''}")
    if posted:
        for p in posted:
            click.echo(f"  receipts: batch {p['batch']} at height {p['height']}" if p["error"] is None
                       else f"  receipts NOT posted: {p['error']}")
    click.echo(f"  request hash {answer.request_hash} (fedledger query inference request {answer.request_hash[:12]}…)")


def _split(c: Ctx, rpc: Any, task_id: str, arr: np.ndarray, input_name: str | None, parts: int, k: int,
           reporter: Any, as_json: bool) -> None:
    from fedledger.client.split_infer import SplitInference
    from fedledger.sdk.chainview import ChainView

    client = SplitInference(ChainView(rpc), rpc.status, c.open_store(), task_id, parts=parts, k=k, sink=reporter)
    try:
        name = input_name or client.input_names[0]
        answer = client.infer({name: arr.astype(np.float32, copy=False)})
    finally:
        client.close()
    posted = None
    if reporter is not None:
        reporter.close()
        posted = [p.__dict__ for p in reporter.posted]
    hops = [{"segment": h.segment, "nodes": list(h.nodes), "outcome": h.tally.outcome,
             "dissenters": list(h.tally.dissenters), "failed": [list(f) for f in h.failed],
             "stage_saw_shape": list(h.sent_shape), "receipts": [r.hash for r in h.receipts],
             "prev": h.receipts[0].prev if h.receipts else ""} for h in answer.hops]
    argmax = {n: np.asarray(v).argmax(axis=-1).tolist() for n, v in answer.outputs.items()}
    summary = {"task": task_id, "version": answer.version, "request_id": answer.request_id, "cuts": list(client.cuts),
               "outputs": {n: v.tolist() for n, v in answer.outputs.items()}, "argmax": argmax,
               "hops": hops, "posted": posted}
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"{task_id} v{answer.version} split in {parts} parts at {', '.join(client.cuts)}; the head ran here")
    for h in hops:
        click.echo(f"  stage {h['segment']}: {h['outcome']} of {len(h['nodes'])} nodes; it saw a tensor of shape "
                   f"{h['stage_saw_shape']}, never the input")
    for n, v in argmax.items():
        click.echo(f"  {n} argmax: {v}")


def _encrypted(c: Ctx, task_id: str, arr: np.ndarray, key_name: str | None, as_json: bool) -> None:
    """--tier critical --encrypted: CKKS inference stage by stage, reported on chain with --key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from fedledger.client.critical_infer import EncryptedInference
    from fedledger.sdk.chainview import ChainView

    if not (arr.ndim == 1 or (arr.ndim == 2 and arr.shape[0] == 1)):
        raise InputFileError(f"--encrypted takes one input row (shape [F] or [1, F]), got shape {list(arr.shape)}")
    # Requests are signed with the member key when there is one, else with a throwaway key (nodes need a signer).
    did_key = c.keys.load(key_name).private if key_name else Ed25519PrivateKey.generate()
    with EncryptedInference(ChainView(c.rpc()), task_id, did_key) as client:
        if not as_json:
            click.echo(f"{task_id} v{client.version}: encrypting under a fresh CKKS key pair; "
                       f"{client.n_stages} stages", err=True)
        answer = client.infer(arr.reshape(-1), submitter=c.submitter(key_name) if key_name else None)
    logits = answer.logits.tolist()
    summary = {
        "task": task_id, "version": answer.version, "request_id": answer.request_id, "guarantee": "ckks",
        "logits": logits, "argmax": int(np.argmax(answer.logits)),
        "stages": [{"stage": h.stage, "node": h.node_did, "endpoint": h.url, "seconds": round(call.seconds, 4),
                    "request_bytes": call.request_bytes, "response_bytes": call.response_bytes}
                   for h, call in zip(answer.hops, answer.result.calls, strict=True)],
        "receipts": [r.hash() for r in answer.result.receipts], "height": answer.height, "record": answer.record,
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"{task_id} v{answer.version}: argmax {summary['argmax']} over CKKS, request {answer.request_id}")
    for st in summary["stages"]:
        click.echo(f"  stage {st['stage']}: {st['node'][-12:]} {st['endpoint']} ({st['seconds']:.2f} s)")
    if answer.height is not None:
        click.echo(f"  recorded on chain at height {answer.height} (fedledger query: /inference-encrypted/"
                   f"{answer.request_id})")
