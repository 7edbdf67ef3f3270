"""zk proofs of inference, measured: circuit size, setup, proving, proof size, verification in FinalizeBlock, accuracy.

`run_zk_bench(spec)` trains the model on the sklearn digits train split (cnn-mnist: the same
digits, upsampled 8x8 -> 28x28 by 3x3 repetition and a 2-pixel border, because the bench is
offline), exports its ONNX artifact, builds the ezkl circuit (hashed input, public outputs, fixed
params) against a dev SRS, proves one inference, and verifies it inside a FinalizeBlock of the
in-process state machine: a real chain with a task, two versions' worth of history, a
registered node and the registered circuit. Accuracy compares the quantized circuit's outputs
(gen_witness, no proof) with the float model on the digits test split.

Goals (issue #16): verify <= 300 ms in consensus, digits prove <= 60 s, accuracy within 0.5 pp.
The dev SRS is for measurement only, never for production (see sdk/zk/srs.py).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fedledger.abci_app.canonical import canonical_bytes
from fedledger.abci_app.context import BlockContext
from fedledger.abci_app.did.credentials import ROLES
from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.abci_app.did.vc import issue_admission_credential
from fedledger.abci_app.modules.zk import verifier
from fedledger.abci_app.state_machine import StateMachine
from fedledger.abci_app.store import CommittedStore
from fedledger.abci_app.tx import sign_tx
from fedledger.sdk.inference.onnx_export import export_onnx
from fedledger.sdk.ml.data import ClientData, load_digits_federated
from fedledger.sdk.ml.model import initial_weights
from fedledger.sdk.ml.train import evaluate, train_local
from fedledger.sdk.zk.proof import Proof, prove, witness_outputs
from fedledger.sdk.zk.setup import CircuitSetup
from fedledger.sdk.zk.srs import dev_srs
from fedledger.sdk.zk.submission import signed_proof_body

__all__ = ["GOALS", "run_zk_bench", "upsample_digits"]

GOALS = {"verify_ms": 300.0, "digits_prove_s": 60.0, "accuracy_gap_pp": 0.5}
_CHAIN = "zk-bench"
_ORG = "bench-org"
_TASK = "zk-bench"


def upsample_digits(X: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """8x8 digits as 28x28 images (3x3 blocks, 2-pixel zero border), flattened: cnn-mnist's input."""
    imgs = X.reshape(-1, 8, 8)
    big = np.kron(imgs, np.ones((3, 3), dtype=np.float32))
    return np.pad(big, ((0, 0), (2, 2), (2, 2))).reshape(len(X), 784).astype(np.float32)


def _data(spec: str) -> tuple[ClientData, ClientData]:
    (train,), test = load_digits_federated(1, alpha=1000.0, seed=0)
    if spec == "cnn-mnist":
        return (ClientData(X=upsample_digits(train.X), y=train.y), ClientData(X=upsample_digits(test.X), y=test.y))
    return train, test


def _trained(spec: str, train: ClientData, epochs: int) -> dict[str, npt.NDArray[Any]]:
    base = initial_weights(spec, 0)
    result = train_local(spec, base, train, epochs=epochs, lr=0.1, batch_size=32, seed=0)
    return {name: (base[name] + result.delta[name]).astype(np.float32) for name in base}


class _BenchChain:
    """An in-process chain (StateMachine over a CommittedStore) driven block by block, as CometBFT would."""

    def __init__(self, folder: Path, srs_sha256: str, logrows: int) -> None:
        self.issuer = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"zk-bench-issuer").digest())
        genesis = {"identity": {"organizations": [{"id": _ORG, "name": "zk bench", "enrollment_cap": 100,
                                                   "roles": list(ROLES),
                                                   "issuers": [did_from_private_key(self.issuer)]}]},
                   "zk": {"srs_sha256": srs_sha256, "srs_logrows": logrows}}
        folder.mkdir(parents=True, exist_ok=True)
        self.sm = StateMachine(CommittedStore(folder / "state.db"), _CHAIN)
        self.sm.init_chain(_CHAIN, canonical_bytes(genesis))
        self.height = 0
        self.nonces: dict[bytes, int] = {}

    def key(self, name: str) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"zk-bench-" + name.encode()).digest())

    def tx(self, key: Ed25519PrivateKey, tx_type: str, body: dict[str, Any]) -> bytes:
        ident = key.private_bytes_raw()
        self.nonces[ident] = self.nonces.get(ident, 0) + 1
        return sign_tx(key, tx_type, body, _CHAIN, self.nonces[ident])

    def admit(self, key: Ed25519PrivateKey, role: str) -> bytes:
        did = did_from_private_key(key)
        cred = issue_admission_credential(self.issuer, did_from_private_key(self.issuer), did, _ORG, role, [],
                                          "1970-01-01T00:00:00Z", "2100-01-01T00:00:00Z",
                                          f"urn:zk-bench:{role}:{did[-8:]}")
        return self.tx(key, "admit", {"credential": cred})

    def block(self, *txs: bytes) -> float:
        """Finalize and commit one block; returns FinalizeBlock's wall time in seconds. Every tx must pass."""
        self.height += 1
        ctx = BlockContext(height=self.height, time_ns=self.height * 10**9,
                           block_hash=hashlib.sha256(b"%d" % self.height).digest(), chain_id=_CHAIN)
        start = time.perf_counter()
        results, _ = self.sm.finalize_block(ctx, list(txs))
        elapsed = time.perf_counter() - start
        self.sm.commit()
        for r in results:
            if r.code != 0:
                raise RuntimeError(f"bench chain: a tx failed with code {r.code}: {r.log}")
        return elapsed


def _ref(tag: str) -> dict[str, Any]:
    digest = hashlib.sha256(tag.encode()).hexdigest()
    return {"cid": "bafkrei" + digest[:52].translate(str.maketrans("0189", "wxyz")), "sha256": digest, "size": 100}


def _verify_in_block(folder: Path, setup: CircuitSetup, proof: Proof, spec: str) -> float:
    """Build the chain state a proof needs, then time the FinalizeBlock of a block holding the proof tx (s)."""
    verifier.configure(setup.srs.path)
    try:
        chain = _BenchChain(folder, setup.srs.sha256, setup.srs.logrows)
        owner, agg, trainer, client = (chain.key(n) for n in ("owner", "agg", "trainer", "client"))
        node = chain.key("node")
        chain.block(chain.admit(owner, "validator-admin"), chain.admit(agg, "aggregator"),
                    chain.admit(trainer, "trainer"), chain.admit(client, "auditor"), chain.admit(node, "inference"))
        chain.block(chain.tx(owner, "create_task", {
            "task_id": _TASK, "model_spec": spec, "round_size": 1, "min_contributions": 1, "deadline_blocks": 30,
            "aggregator": agg.public_key().public_bytes_raw().hex(), "initial_model": _ref("v0"),
            "privacy": {"epsilon": "8", "delta": "1e-5", "org_epsilon": None}}))
        chain.block(chain.tx(agg, "open_round", {"task_id": _TASK, "round": 1}))
        chain.block(chain.tx(trainer, "commit_contribution", {
            "task_id": _TASK, "round": 1, "base_version": 0, "num_examples": 10,
            "dp": {"noise_multiplier": "1", "sample_rate": "0.1", "steps": 10, "clip_norm": "1"}, **_ref("u")}))
        chain.block(chain.tx(agg, "close_round", {"task_id": _TASK, "round": 1}))
        chain.block(chain.tx(agg, "propose_version", {"task_id": _TASK, "round": 1, **_ref("v1"),
                                                      "contributors": [trainer.public_key().public_bytes_raw().hex()]}))
        chain.block(chain.tx(node, "register_inference_node", {"endpoint": "http://127.0.0.1:8100",
                                                                "tasks": [_TASK]}))
        chain.block(chain.tx(owner, "register_zk_circuit", {**setup.register_body(), "task_id": _TASK,
                                                            "version": 1}))
        # One proof per request: a replay is refused, so one proof gives one timed block.
        body = signed_proof_body(node, proof, task_id=_TASK, version=1, request_id="bench-1",
                                 input_mode=setup.input_mode)
        elapsed = chain.block(chain.tx(client, "submit_inference_proof", body))
        verdict = chain.sm.query(f"/zk-proof/{_TASK}/bench-1", b"", False)
        if verdict.code != 0 or b'"verdict":"valid"' not in verdict.value:
            raise RuntimeError(f"bench chain: the proof was not recorded valid: {verdict.value[:200]!r}")
        return elapsed
    finally:
        verifier.configure(None)


def run_zk_bench(spec: str = "mlp-digits", *, work_dir: Path | None = None, epochs: int = 20,
                 accuracy_samples: int | None = None, srs_logrows: int | None = None,
                 log: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Measure one model's zk pipeline; returns a dict of figures (see the module docstring)."""
    tmp = None
    if work_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="fedledger-zk-bench-")
        work_dir = Path(tmp.name)
    try:
        train, test = _data(spec)
        t0 = time.perf_counter()
        weights = _trained(spec, train, epochs)
        float_acc = evaluate(spec, weights, test).accuracy
        log(f"{spec}: trained {epochs} epochs in {time.perf_counter() - t0:.1f} s, float accuracy {float_acc:.4f}")
        artifact = export_onnx(spec, weights)
        logrows = srs_logrows or (15 if spec == "mlp-digits" else 20)
        t0 = time.perf_counter()
        srs = dev_srs(work_dir / f"dev-srs-{logrows}", logrows)
        srs_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        # A fresh folder, so that setup is measured, not read back from an earlier run's cache.
        setup = CircuitSetup.build(_TASK, 1, "hashed", artifact, srs, Path(tempfile.mkdtemp(dir=work_dir)))
        setup_s = time.perf_counter() - t0
        log(f"{spec}: circuit 2^{setup.facts.logrows} rows, setup {setup_s:.1f} s")
        x = test.X[0]
        t0 = time.perf_counter()
        proof = prove(setup, x)
        prove_s = time.perf_counter() - t0
        log(f"{spec}: proof {len(proof.proof)} bytes in {prove_s:.1f} s")
        direct = verifier.ZkVerifier(srs.path)
        try:
            t0 = time.perf_counter()
            ok, _ = direct.verify(setup.settings, setup.vk, {"instances": [list(proof.instances)],
                                                             "proof": list(proof.proof)})
            verify_direct_ms = (time.perf_counter() - t0) * 1000
        finally:
            direct.close()
        block_s = _verify_in_block(work_dir / "chain", setup, proof, spec)
        n = len(test.X) if accuracy_samples is None else min(accuracy_samples, len(test.X))
        t0 = time.perf_counter()
        circuit_pred = np.array([int(np.argmax(witness_outputs(setup, test.X[i]))) for i in range(n)])
        witness_s = time.perf_counter() - t0
        float_sub = evaluate(spec, weights, ClientData(X=test.X[:n], y=test.y[:n])).accuracy
        circuit_acc = float((circuit_pred == test.y[:n]).mean())
        pk_bytes = setup.pk_path.stat().st_size
        shutil.rmtree(setup.folder, ignore_errors=True)  # the pk alone is hundreds of MB
        return {
            "spec": spec, "logrows": setup.facts.logrows, "srs_logrows": logrows, "dev_srs_s": round(srs_s, 2),
            "setup_s": round(setup_s, 2), "prove_s": round(prove_s, 2), "proof_bytes": len(proof.proof),
            "proof_tx_instances": len(proof.instances), "vk_bytes": len(setup.vk), "pk_bytes": pk_bytes,
            "settings_bytes": len(setup.settings), "verify_ok": ok, "verify_ms_direct": round(verify_direct_ms, 1),
            "verify_ms_finalize_block": round(block_s * 1000, 1), "accuracy_samples": n,
            "float_accuracy": round(float_sub, 4), "circuit_accuracy": round(circuit_acc, 4),
            "accuracy_gap_pp": round((float_sub - circuit_acc) * 100, 2),
            "witness_s_per_sample": round(witness_s / n, 3),
            "float_accuracy_full_test": round(float_acc, 4), "goals": GOALS,
        }
    finally:
        if tmp is not None:
            tmp.cleanup()
