"""Test support for zk: a dev SRS and real ezkl setups of mlp-digits for two versions, built once per module.

Set FEDLEDGER_ZK_TEST_CACHE to a folder to keep the SRS, keys and proofs between runs (setups are
the expensive part); by default everything lives in pytest's tmp folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fedledger.abci_app.canonical import canonical_bytes
from fedledger.abci_app.did.credentials import ROLES
from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.sdk.errors import TxRejectedError
from fedledger.sdk.inference.onnx_export import export_onnx
from fedledger.sdk.ml.model import initial_weights
from fedledger.sdk.rpc import AbciQueryResult
from fedledger.sdk.zk.proof import Proof, prove
from fedledger.sdk.zk.setup import CircuitSetup
from fedledger.sdk.zk.srs import SrsFile, dev_srs
from tests.inference_support import TASK, InferenceWorld
from tests.support import DP, ISSUER, ORG, Chain, Signer, model_ref

LOGROWS = 15  # mlp-digits needs 2^15 rows (measured), so the test SRS is exactly that big
INPUT = np.random.RandomState(7).rand(64).astype(np.float32)  # one digits-shaped input in [0, 1]


@dataclass(frozen=True)
class ZkKit:
    """The dev SRS, a setup per version (different weights), and one proof of version 1 on INPUT."""

    srs: SrsFile
    v1: CircuitSetup
    v2: CircuitSetup
    proof_v1: Proof


def build_kit(folder: Path) -> ZkKit:
    """Build (or reuse from $FEDLEDGER_ZK_TEST_CACHE) the SRS, both setups and the proof."""
    cache = Path(os.environ.get("FEDLEDGER_ZK_TEST_CACHE") or folder)
    srs = dev_srs(cache / f"dev-srs-{LOGROWS}", LOGROWS)
    v1 = CircuitSetup.build("digits", 1, "hashed", export_onnx("mlp-digits", initial_weights("mlp-digits", 1)), srs,
                            cache)
    v2 = CircuitSetup.build("digits", 2, "hashed", export_onnx("mlp-digits", initial_weights("mlp-digits", 2)), srs,
                            cache)
    return ZkKit(srs=srs, v1=v1, v2=v2, proof_v1=prove(v1, INPUT))


def zk_genesis(srs_sha256: str, logrows: int = LOGROWS) -> bytes:
    """The inference test organization, plus the zk section pinning the SRS."""
    return canonical_bytes({
        "identity": {"organizations": [{"id": ORG, "name": "Test org", "enrollment_cap": 100, "roles": list(ROLES),
                                        "issuers": [did_from_private_key(ISSUER)]}]},
        "zk": {"srs_sha256": srs_sha256, "srs_logrows": logrows}})


def propose_version_2(w: InferenceWorld) -> None:
    """A second round and proposal on an InferenceWorld's task, so that it has versions 1 and 2."""
    chain = w.chain
    chain.ok(w.agg.tx("open_round", {"task_id": TASK, "round": 2}))
    chain.ok(*[t.tx("commit_contribution", {"task_id": TASK, "round": 2, "base_version": 0, "num_examples": 10,
                                             "dp": DP, **model_ref(f"w{i}")}) for i, t in enumerate(w.trainers)])
    chain.ok(w.agg.tx("close_round", {"task_id": TASK, "round": 2}))
    chain.ok(w.agg.tx("propose_version", {"task_id": TASK, "round": 2, **model_ref("v2"),
                                          "contributors": sorted(t.hex for t in w.trainers)}))


class InProcessQueries:
    """ChainView's query source over an in-process Chain (what a node's RPC answers, minus the network)."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain

    def abci_query(self, path: str, data: bytes = b"", prove: bool = False, height: int = 0) -> AbciQueryResult:
        res = self.chain.sm.query(path, data, prove)
        return AbciQueryResult(code=res.code, log=res.log, key=b"", value=res.value, proof=b"",
                               height=self.chain.height, path=path, data=data)


class InProcessSender:
    """A TxSender that signs with a test Signer and runs each tx in its own block of the in-process chain."""

    def __init__(self, chain: Chain, signer: Signer) -> None:
        self.chain, self.signer = chain, signer

    def send(self, tx_type: str, body: dict[str, Any], timeout: float = 30.0) -> Any:
        (result,) = self.chain.block(self.signer.tx(tx_type, body))
        if result.code != 0:
            raise TxRejectedError("FinalizeBlock", result.code, result.log)
        return result
