"""TEE evidence on a real localnet: AMD SEV-SNP reports submitted through the CLI, judged by the chain at block time.

The evidence is real (a Milan report and its VCEK from github.com/virtee/sev, see
tests/unit/fixtures/sevsnp/README.md). It verifies against AMD's pinned roots, but it was made in
someone else's VM, so its report data binds no DID of ours: the chain records it refused, with
that reason, and a task that requires a TEE refuses the node's registration. A forged report is
recorded refused as forged. This machine has no TEE, so the accepted path is unit-tested only,
under a test root (tests/unit/test_attest_module.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fedledger.abci_app.errors import Code
from fedledger.bench.inference_setup import InferenceChain
from fedledger.ipfs import open_store
from fedledger.localnet import manager
from fedledger.sdk.errors import TxRejectedError
from fedledger.sdk.rpc import CometRPC

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "fixtures" / "sevsnp"
TASK = "digits"


@pytest.fixture(scope="module")
def world(kit: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, InferenceChain]]:
    root = tmp_path_factory.mktemp("attest")
    with kit.running_localnet(root / "net") as net:
        cli = kit.Cli(root / "home", net.home, root / "logs")
        rpc = CometRPC(manager.rpc_url(net.home, 0))
        store = open_store(manager.store_spec(net.home) or f"embedded:{root / 'store'}")
        chain = InferenceChain(net.home, cli.home, rpc, store, {"n0": "inference", "n1": "inference"})
        chain.create_task(TASK, "mlp-digits")
        try:
            yield cli, chain
        finally:
            cli.close()


def test_real_evidence_is_judged_at_block_time_and_gates_registration(world: tuple[Any, InferenceChain],
                                                                       tmp_path: Path) -> None:
    cli, chain = world
    r = cli.run("inference", "policy", "--key", "owner", "--task", TASK, "--tier", "general", "--k", "1",
                "--require-tee", "--tee-min-tcb", "3,0,8,115")
    assert r.rc == 0 and "TEE required" in r.stdout, r.describe()
    assert chain.view.get(f"/inference-policy/{TASK}")["require_tee"]["min_tcb"]["snp"] == 8

    # no evidence at all: registration is refused
    with pytest.raises(TxRejectedError) as no_record:
        chain.subs["n0"].send("register_inference_node", {"endpoint": "http://127.0.0.1:8181", "tasks": [TASK]})
    assert no_record.value.code == Code.ATTESTATION_REQUIRED, no_record.value

    # the real report: signature and chain verify to AMD's root, but it binds someone else's data
    r = cli.run("attest", "submit", "--key", "n0", "--report", str(FIXTURES / "report_milan.hex"),
                "--vcek", str(FIXTURES / "vcek_milan.der"))
    assert r.rc == 0 and "refused (binding" in r.stdout, r.describe()
    rec = cli.run("query", "attestation", _did(chain, "n0"), "--json")
    assert rec.rc == 0, rec.describe()
    assert '"reason": "binding"' in rec.stdout and '"family": "milan"' in rec.stdout.lower(), rec.stdout
    with pytest.raises(TxRejectedError) as refused:
        chain.subs["n0"].send("register_inference_node", {"endpoint": "http://127.0.0.1:8181", "tasks": [TASK]})
    assert refused.value.code == Code.ATTESTATION_INVALID and "binding" in str(refused.value)

    # a forged report (one byte of the measurement flipped) is recorded as forged
    raw = bytearray(bytes.fromhex((FIXTURES / "report_milan.hex").read_text().strip()))
    raw[0x90] ^= 1
    forged = tmp_path / "forged.bin"
    forged.write_bytes(bytes(raw))
    r = cli.run("attest", "submit", "--key", "n1", "--report", str(forged), "--vcek", str(FIXTURES / "vcek_milan.der"))
    assert r.rc == 0 and "refused (forged_signature" in r.stdout, r.describe()

    # garbage never reaches the chain: a clear usage error
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a report")
    r = cli.run("attest", "submit", "--key", "n1", "--report", str(junk), "--vcek", str(FIXTURES / "vcek_milan.der"))
    assert r.rc == 2 and "neither a 1184-byte report" in r.stderr, r.describe()


def _did(chain: InferenceChain, name: str) -> str:
    from fedledger.abci_app.did.didkey import did_from_private_key

    return did_from_private_key(chain.keys[name].private)
