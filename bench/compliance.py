"""zkDPS cost, measured: norm-bound circuit setup per task, proving per client, proof bytes, verification in consensus.

`run_compliance_bench()` trains one mlp-digits client on the sklearn digits train split, clips its
flat update (4,810 parameters) to C, builds the task's norm circuit (once per task: settings,
compile, vk/pk), proves the clipped update, then drives an in-process chain whose task requires
norm proofs: one block with one commit (one ezkl verification in FinalizeBlock) and one block
with `clients` commits (a round's verifications). The round block reuses the one proof for every
trainer (the chain does not refuse a repeated proof; ezkl's verification cost does not depend on
the update), so proving 100 distinct updates is not needed to time 100 verifications.

The dev SRS is for measurement only, never for production (see sdk/zk/srs.py). A 4,810-entry
circuit needs 2^18 rows (its Poseidon hash of the input is most of them), one more than the 2^17
localnet SRS. Run: `python -m fedledger.bench.compliance [--clients 100] [--dim 4810]`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from fedledger.abci_app.canonical import canonical_bytes
from fedledger.abci_app.did.credentials import ROLES
from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.abci_app.modules.zk import verifier
from fedledger.abci_app.state_machine import StateMachine
from fedledger.abci_app.store import CommittedStore
from fedledger.bench.zk import _CHAIN, _ORG, _BenchChain, _ref  # the zk bench's in-process chain driver
from fedledger.sdk.compliance.circuit import slack
from fedledger.sdk.compliance.prover import NormCircuit, prove_norm
from fedledger.sdk.flat import flatten_model
from fedledger.sdk.ml.data import load_digits_federated
from fedledger.sdk.ml.model import initial_weights
from fedledger.sdk.ml.train import train_local
from fedledger.sdk.zk.srs import dev_srs

__all__ = ["run_compliance_bench"]

_TASK = "dps-bench"


def _clipped_update(dim: int, clip: float) -> np.ndarray:
    """A real mlp-digits update (one client, 2 epochs), flattened and clipped to L2 norm `clip`."""
    (train,), _ = load_digits_federated(1, alpha=1000.0, seed=0)
    result = train_local("mlp-digits", initial_weights("mlp-digits", 0), train, epochs=2, lr=0.1, batch_size=32,
                         seed=0)
    vec, _ = flatten_model(result.delta)
    if vec.shape[0] != dim:
        vec = np.resize(vec, dim)  # only for --dim other than the model's: the first entries, tiled
    norm = float(np.linalg.norm(vec))
    return (vec * min(1.0, clip / norm) * (1 - 1e-4)).astype(np.float32)


class _RoundChain(_BenchChain):
    """The zk bench's chain with an enrollment cap that admits a 100-trainer round (its genesis caps at 100)."""

    def __init__(self, folder: Path, srs_sha256: str, logrows: int, cap: int) -> None:
        super().__init__(folder / "unused", srs_sha256, logrows)
        genesis = {"identity": {"organizations": [{"id": _ORG, "name": "dps bench", "enrollment_cap": cap,
                                                   "roles": list(ROLES),
                                                   "issuers": [did_from_private_key(self.issuer)]}]},
                   "zk": {"srs_sha256": srs_sha256, "srs_logrows": logrows}}
        folder.mkdir(parents=True, exist_ok=True)
        self.sm = StateMachine(CommittedStore(folder / "state.db"), _CHAIN)
        self.sm.init_chain(_CHAIN, canonical_bytes(genesis))


def _chain_blocks(folder: Path, circuit: NormCircuit, proof_body: dict[str, Any], clients: int) -> dict[str, float]:
    verifier.configure(circuit.setup.srs.path)
    try:
        chain = _RoundChain(folder, circuit.setup.srs.sha256, circuit.setup.srs.logrows, clients + 10)
        owner, agg = chain.key("owner"), chain.key("agg")
        trainers = [chain.key(f"trainer-{i}") for i in range(clients)]
        chain.block(chain.admit(owner, "validator-admin"), chain.admit(agg, "aggregator"),
                    *[chain.admit(t, "trainer") for t in trainers])
        for task in (_TASK + "-1", _TASK + "-n"):  # round_size = every trainer, so each is selected
            chain.block(chain.tx(owner, "create_task", {
                "task_id": task, "model_spec": "mlp-digits", "round_size": clients, "min_contributions": 1,
                "deadline_blocks": 30, "aggregator": agg.public_key().public_bytes_raw().hex(),
                "initial_model": _ref("v0"), "privacy": None, "norm_proof": circuit.task_param()}))
            chain.block(chain.tx(agg, "open_round", {"task_id": task, "round": 1}))

        def commit(task: str, i: int) -> bytes:
            return chain.tx(trainers[i], "commit_contribution", {
                "task_id": task, "round": 1, "base_version": 0, "num_examples": 10, "dp": None, **_ref(f"u{i}"),
                "norm_proof": proof_body})

        one = chain.block(commit(_TASK + "-1", 0))
        rnd = chain.block(*[commit(_TASK + "-n", i) for i in range(clients)])
        sample = commit(_TASK + "-1", 1)
        return {"block_1_commit_ms": one * 1000, f"block_{clients}_commits_ms": rnd * 1000,
                "per_commit_in_round_ms": rnd * 1000 / clients, "commit_tx_bytes": float(len(sample))}
    finally:
        verifier.configure(None)


def run_compliance_bench(*, dim: int = 4810, clip: str = "1.0", clients: int = 100, logrows: int = 18,
                         srs_path: Path | None = None, work_dir: Path | None = None) -> dict[str, Any]:
    """Measure one task's setup, one client's proof and the chain's verification; returns the figures."""
    own = work_dir is None
    folder = Path(tempfile.mkdtemp(prefix="fedledger-dps-bench-")) if own else Path(work_dir)  # type: ignore[arg-type]
    try:
        srs = dev_srs(srs_path or Path.home() / ".cache" / "fedledger" / f"zk-dev-{logrows}.srs", logrows)
        update = _clipped_update(dim, float(clip))
        start = time.perf_counter()
        circuit = NormCircuit.build(_TASK, clip, dim, srs, folder / "setup")
        setup_s = time.perf_counter() - start
        start = time.perf_counter()
        proof = prove_norm(circuit, update)
        prove_s = time.perf_counter() - start
        v = verifier.ZkVerifier(srs.path)
        try:
            body = {"instances": [list(proof.proof.instances)], "proof": list(proof.proof.proof)}
            v.verify(circuit.setup.settings, circuit.setup.vk, body)  # first call writes the vk/settings files
            times = []
            for _ in range(5):
                t = time.perf_counter()
                ok, _ = v.verify(circuit.setup.settings, circuit.setup.vk, body)
                times.append(time.perf_counter() - t)
                assert ok
        finally:
            v.close()
        chain = _chain_blocks(folder / "chain", circuit, proof.body(), clients)
        return {"dim": dim, "clip": clip, "clients": clients, "srs_logrows": logrows,
                "circuit_logrows": circuit.setup.facts.logrows, "setup_s": round(setup_s, 2),
                "prove_s": round(prove_s, 2), "proof_bytes": len(proof.proof.proof),
                "vk_bytes": len(circuit.setup.vk), "pk_bytes": circuit.setup.pk_path.stat().st_size,
                "create_task_norm_param_bytes": len(json.dumps(circuit.task_param())),
                "verify_ms_median": round(sorted(times)[len(times) // 2] * 1000, 1),
                "update_norm": round(float(np.linalg.norm(update)), 6), "slack": slack(clip, dim),
                **{k: round(val, 1) for k, val in chain.items()}}
    finally:
        if own:
            shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    """CLI: print the figures as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--dim", type=int, default=4810)
    ap.add_argument("--clip", default="1.0")
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--logrows", type=int, default=18)
    ap.add_argument("--work-dir", type=Path, default=None)
    args = ap.parse_args()
    print(json.dumps(run_compliance_bench(dim=args.dim, clip=args.clip, clients=args.clients, logrows=args.logrows,
                                          work_dir=args.work_dir), indent=1))


if __name__ == "__main__":
    main()
