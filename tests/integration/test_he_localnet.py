"""Encrypted (CKKS) critical-tier inference on a real 4-validator localnet, through real inference nodes and the CLI.

One chain for the module: a task of model mlp-digits-poly whose version 1 is promoted with its
ONNX artifact, its policy set to the critical tier with the ckks guarantee, and two inference
nodes (uvicorn + onnxruntime + TenSEAL) each holding one stage, cut from the verified artifact:
stage 0 in this process, stage 1 a `fedledger inference serve --he-stages 1` process.
The CLI encrypts one row, relays it through both nodes, decrypts, and reports the stage receipts;
the chain records the request. Then the real node refuses a tampered ciphertext and evaluation
contexts it must not use, each with its own 4xx code.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tenseal as ts
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.bench.inference_setup import InferenceChain
from fedledger.ipfs import open_store
from fedledger.localnet import manager
from fedledger.node.inference.he_stages import poly_stages_from_onnx
from fedledger.node.inference.service import InferenceNode
from fedledger.sdk.chainview import ChainView
from fedledger.sdk.he.keys import ClientKeys, sha256_hex
from fedledger.sdk.he.params import CKKS_PARAMS
from fedledger.sdk.he.poly import reference_forward
from fedledger.sdk.he.records import encode_frame, sign_request
from fedledger.sdk.rpc import CometRPC
from fedledger.sdk.submit import Submitter

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

TASK = "digits-he"
SPEC = "mlp-digits-poly"


@dataclass
class World:
    cli: Any
    rpc: CometRPC
    chain: InferenceChain
    nodes: dict[str, InferenceNode]
    endpoints: dict[str, str]  # node name -> the endpoint it registered on chain

    @property
    def view(self) -> ChainView:
        return self.chain.view

    def did(self, name: str) -> str:
        return did_from_private_key(self.chain.keys[name].private)


def wait_for(cond: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def source_tree() -> Iterator[None]:
    """CLI subprocesses import the package from this checkout, not from wherever the console script was installed."""
    root = str(Path(__file__).resolve().parents[2])
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = root if not before else f"{root}{os.pathsep}{before}"
    yield
    if before is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = before


@pytest.fixture(scope="module")
def world(kit: Any, source_tree: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("he")
    with kit.running_localnet(root / "net") as net:
        cli = kit.Cli(root / "home", net.home, root / "logs")
        rpc = CometRPC(manager.rpc_url(net.home, 0))
        store = open_store(manager.store_spec(net.home) or f"embedded:{root / 'store'}")
        chain = InferenceChain(net.home, cli.home, rpc, store, {"s0": "inference", "s1": "inference"})
        chain.create_task(TASK, SPEC)
        w = World(cli, rpc, chain, {}, {})
        try:
            assert chain.promote(TASK, 1) == 1
            node = InferenceNode(key=chain.keys["s0"], task_id=TASK, view=ChainView(rpc), status=rpc.status,
                                 store=store, cache_dir=cli.home / "cache" / "s0",
                                 submitter=Submitter(rpc, chain.keys["s0"]), poll=5.0, events_url=rpc.url,
                                 he_stages=(0,))
            node.start()
            w.nodes["s0"] = node
            cli.spawn("s1", "inference", "serve", "--key", "s1", "--task", TASK, "--port", "0", "--he-stages", "1")

            def registered() -> bool:
                w.endpoints = {name: n["endpoint"] for n in w.view.get("/inference-nodes")["nodes"]
                               for name in ("s0", "s1") if n["did"] == w.did(name)}
                return len(w.endpoints) == 2

            wait_for(registered, "both nodes registered on chain", timeout=60)
            wait_for(lambda: all(_health(url).get("version") == 1 for url in w.endpoints.values()),
                     "both nodes serving version 1's HE stage", timeout=60)
            yield w
        finally:
            for node in w.nodes.values():
                node.stop()
            cli.close()


def _health(url: str) -> dict[str, Any]:
    try:
        resp = httpx.get(f"{url}/v2/he/health", timeout=2)
    except httpx.HTTPError:
        return {}
    doc: dict[str, Any] = resp.json() if resp.status_code == 200 else {}
    return doc


def digits_row(seed: int = 0) -> np.ndarray:
    """A row on the 8x8 digits scale (pixel intensities 0..16, scaled to 0..1 as the tasks train on)."""
    return (np.random.default_rng(seed).integers(0, 17, size=64) / 16.0).astype(np.float32)


def test_refused_until_the_policy_lists_ckks(world: World, tmp_path: Path) -> None:
    x = tmp_path / "x.npy"
    np.save(x, digits_row())
    general = world.cli.run("infer", "--task", TASK, "--input", str(x), "--tier", "critical", "--encrypted")
    assert general.rc != 0 and "ckks" in general.stderr and "Traceback" not in general.stderr, general.describe()
    usage = world.cli.run("infer", "--task", TASK, "--input", str(x), "--tier", "critical")
    assert usage.rc == 2 and "--encrypted" in usage.stderr and "--proof" in usage.stderr, usage.describe()
    wrong = world.cli.run("infer", "--task", TASK, "--input", str(x), "--encrypted")
    assert wrong.rc == 2 and "--tier critical" in wrong.stderr, wrong.describe()


def test_encrypted_request_through_the_cli_is_recorded_on_chain(world: World, tmp_path: Path) -> None:
    world.cli.ok("inference", "policy", "--key", "owner", "--task", TASK, "--tier", "critical", "--k", "1",
                 "--guarantee", "ckks")
    health = {name: _health(url) for name, url in world.endpoints.items()}
    assert health["s0"]["stages"] == [0] and health["s1"]["stages"] == [1]  # no node holds the whole model
    assert {h["version"] for h in health.values()} == {1}
    row = digits_row(seed=4)
    x = tmp_path / "x.npy"
    np.save(x, row)
    out = world.cli.json("infer", "--task", TASK, "--input", str(x), "--tier", "critical", "--encrypted",
                         "--key", "client", timeout=180)
    # The plaintext reference: the same verified artifact's weights, as float64 and through onnxruntime.
    artifact = world.view.version(TASK, 1)["artifact"]
    data = world.chain.store.get(artifact["cid"], artifact["sha256"])
    expected = reference_forward(poly_stages_from_onnx(data, SPEC), row)
    onnx_logits = world.nodes["s0"].holder.current.model.run({"input": row[None, :]})  # type: ignore[union-attr]
    got = np.asarray(out["logits"])
    assert got.shape == (10,)
    np.testing.assert_allclose(got, expected, atol=1e-3)
    np.testing.assert_allclose(got, onnx_logits["logits"][0], atol=1e-3)
    assert out["argmax"] == int(np.argmax(expected))
    dids = [world.did("s0"), world.did("s1")]
    assert [s["endpoint"] for s in out["stages"]] == [world.endpoints["s0"], world.endpoints["s1"]]
    assert [s["node"] for s in out["stages"]] == dids
    rec = world.view.get(f"/inference-encrypted/{out['request_id']}")
    assert rec["guarantee"] == "ckks" and rec["nodes"] == dids and rec["version"] == 1 and rec["stages"] == 2
    assert rec["height"] == out["height"] and out["record"] == rec


def _frame(keys: ClientKeys, ciphertext: bytes, *, stage: int = 0, signed_ct: bytes | None = None,
           context: bytes | None = None, context_sha: str | None = None) -> bytes:
    """A request frame for stage of version 1, signed over signed_ct (default: the ciphertext sent)."""
    ctx = keys.eval_context if context is None else context
    req = sign_request(Ed25519PrivateKey.generate(), request_id=secrets.token_hex(16), model=TASK, version=1,
                       stage=stage, params=CKKS_PARAMS.label(), input_sha256=sha256_hex(signed_ct or ciphertext),
                       eval_context_sha256=context_sha or sha256_hex(ctx))
    return encode_frame({"request": {**req.unsigned(), "sig": req.sig}}, ciphertext, ctx)


def _post(world: World, body: bytes, stage: int = 0) -> httpx.Response:
    url = world.endpoints[f"s{stage}"]
    return httpx.post(f"{url}/v2/models/{TASK}/versions/1/stages/{stage}/he", content=body, timeout=60)


def test_the_real_node_refuses_tampering_and_wrong_evaluation_keys(world: World) -> None:
    keys = ClientKeys()
    ct = keys.encrypt(digits_row(seed=2))
    flipped = bytearray(ct)
    flipped[len(ct) // 2] ^= 0x01
    tampered = _post(world, _frame(keys, bytes(flipped), signed_ct=ct))
    assert tampered.status_code == 422 and tampered.json()["code"] == "HE_TAMPERED", tampered.text
    # An evaluation context swapped for another than the one the client signed.
    swapped = _post(world, _frame(keys, ct, context_sha=sha256_hex(b"another context")))
    assert swapped.status_code == 422 and swapped.json()["code"] == "HE_TAMPERED", swapped.text
    # A context that carries a secret key: a node never evaluates under one (the client would have leaked it).
    secret = ts.context(ts.SCHEME_TYPE.CKKS, CKKS_PARAMS.poly_modulus_degree,
                        coeff_mod_bit_sizes=list(CKKS_PARAMS.coeff_mod_bit_sizes))
    secret.global_scale = CKKS_PARAMS.scale
    leaked = secret.serialize(save_secret_key=True)
    wrong_key = _post(world, _frame(keys, ct, context=leaked))
    assert wrong_key.status_code == 422 and wrong_key.json()["code"] == "HE_CONTEXT", wrong_key.text
    # Stage 1 asked of the node that holds only stage 0.
    wrong_stage = _post(world, _frame(keys, ct, stage=1), stage=0)
    assert wrong_stage.status_code == 409 and wrong_stage.json()["code"] == "HE_STAGE", wrong_stage.text
    # The honest request still goes through on the same node afterwards.
    ok = _post(world, _frame(keys, ct))
    assert ok.status_code == 200, ok.text
