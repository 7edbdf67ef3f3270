"""`fedledger bench anchor`: gas per anchor tx by batch size, and checkpoint → confirmed-anchor time on geth --dev.

One run starts a one-validator FedLedger localnet with its dev anchor chain (`geth --dev`, a
block a second), deploys CheckpointAnchor, then:

* **gas:** anchors the Merkle root of batches of 1, 100 and 10,000 synthetic checkpoints and
  reads gasUsed from each receipt. The tx carries only the 32-byte root and the height range, so
  the batch size changes nothing on chain; the goal is <= 30k gas whatever the size. When the
  pinned solc-js is installed, the same is measured for a variant that also keeps each root in
  storage (the alternative the contract's design rejects), in the same run;
* **latency:** `samples` times, waits for a new block of the FedLedger chain (its checkpoint
  is readable from that moment), anchors it with `anchor_once` and reports the time to the
  anchor tx's last needed confirmation and to the anchor record on the FedLedger chain.
"""

from __future__ import annotations

import importlib.util
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["bench_anchor"]

BATCHES = (1, 100, 10_000)
GAS_GOAL = 30_000


def _storage_variant() -> bytes | None:
    """Creation code of CheckpointAnchor plus `anchoredAt[root] = block.number`, or None without solc-js."""
    contracts = Path(__file__).resolve().parents[1] / "contracts"
    if not (contracts / "node_modules" / ".bin" / "solcjs").is_file():
        return None
    spec = importlib.util.spec_from_file_location("contracts_build", contracts / "build.py")
    if spec is None or spec.loader is None:
        return None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    source = (contracts / "src" / "CheckpointAnchor.sol").read_text(encoding="utf-8")
    source = source.replace("contract CheckpointAnchor {", "contract StoredAnchor {\n"
                            "    mapping(bytes32 => uint256) public anchoredAt;", 1)
    store = "        anchoredAt[root] = block.number;\n"
    source = source.replace("        emit Anchored(", store + "        emit Anchored(", 1)
    _, output = build.compile_sources({"StoredAnchor.sol": source}, contracts)
    return bytes.fromhex(output["contracts"]["StoredAnchor.sol"]["StoredAnchor"]["evm"]["bytecode"]["object"])


def _summary(values: list[float]) -> dict[str, Any]:
    return {"samples": [round(v, 3) for v in values], "p50": round(statistics.median(values), 3),
            "max": round(max(values), 3)}


def bench_anchor(samples: int = 5, confirmations: int = 1, base_port: int | None = None,
                 log: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Run the benchmark (see the module docstring) and return its figures."""
    from dataclasses import replace

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from fedledger.abci_app.binary_merkle import MerkleTree
    from fedledger.localnet import manager
    from fedledger.localnet.dev import dev_credential
    from fedledger.localnet.geth import DEV_CHAIN_FILE, GETH_VERSION
    from fedledger.localnet.ports import find_free_base_port
    from fedledger.node.anchor.checkpoints import Checkpoint, RPCCheckpoints, leaves
    from fedledger.node.anchor.config import load_config
    from fedledger.node.anchor.contract import anchor_calldata
    from fedledger.node.anchor.public import PublicChain
    from fedledger.node.anchor.service import AnchorService, ChainRecorder
    from fedledger.sdk.keys import Key
    from fedledger.sdk.rpc import CometRPC
    from fedledger.sdk.submit import Submitter

    with tempfile.TemporaryDirectory(prefix="fedledger-bench-anchor-") as tmp:
        home = Path(tmp) / "net"
        log(f"starting a 1-validator localnet and geth {GETH_VERSION} --dev in {home}")
        spec = manager.up(home, 1, base_port=base_port or find_free_base_port(40), block_time_ms=300,
                          anchor_chain=True, log=log)
        try:
            cfg = replace(load_config(home / DEV_CHAIN_FILE, env={}), confirmations=confirmations)
            public = PublicChain(cfg)
            deployed = public.deploy()
            cfg = cfg.with_contract(deployed.address)
            public = PublicChain(cfg)
            sender = public.sender()
            result: dict[str, Any] = {
                "benchmark": "anchor", "geth": GETH_VERSION, "public_chain_id": public.chain_id(),
                "dev_period_s": 1, "confirmations": confirmations, "deploy_gas": deployed.gas_used,
                "gas_goal": GAS_GOAL, "gas_per_anchor": {}, "tree_build_ms": {}, "storage_variant_gas": None,
            }
            trees: dict[int, bytes] = {}
            for n in BATCHES:
                started = time.perf_counter()
                checkpoints = [Checkpoint(spec.chain_id, h, f"{h:064x}") for h in range(1, n + 1)]
                trees[n] = MerkleTree(leaves(checkpoints)).root
                result["tree_build_ms"][str(n)] = round((time.perf_counter() - started) * 1000, 2)
                done = sender.send(deployed.address, anchor_calldata(spec.chain_id, trees[n], 1, n))
                result["gas_per_anchor"][str(n)] = done.receipt.gas_used
                log(f"batch of {n}: {done.receipt.gas_used} gas")
            result["meets_gas_goal"] = max(result["gas_per_anchor"].values()) <= GAS_GOAL
            variant = _storage_variant()
            if variant is not None:
                stored = sender.send(None, variant).receipt.contract_address
                assert stored is not None
                result["storage_variant_gas"] = {
                    str(n): sender.send(stored, anchor_calldata(spec.chain_id, trees[n], 1, n)).receipt.gas_used
                    for n in BATCHES}
                log(f"with the root in storage: {result['storage_variant_gas']}")

            # Checkpoint -> confirmed anchor, on the real chain: anchor each new height as soon as it is readable.
            rpc = CometRPC(spec.nodes[0].rpc_url)
            admin = Submitter(rpc, Key("bench-anchor-admin", Ed25519PrivateKey.generate()))
            admin.send("admit", {"credential": dev_credential(home, admin.key, "validator-admin")})
            service = AnchorService(public, RPCCheckpoints(rpc), ChainRecorder(admin))
            first = service.anchor_once()  # the backlog since genesis
            assert first is not None
            to_confirmed, to_recorded, checkpoints_per_anchor = [], [], []
            for _ in range(samples):
                height = rpc.height()
                while rpc.height() == height:
                    time.sleep(0.02)
                readable = time.monotonic()  # a new header: the previous height's checkpoint exists now
                anchored = service.anchor_once()
                assert anchored is not None
                to_confirmed.append(time.monotonic() - readable - (anchored.seconds - anchored.confirm_seconds))
                to_recorded.append(time.monotonic() - readable)
                checkpoints_per_anchor.append(anchored.checkpoints)
                log(f"heights {anchored.from_height}..{anchored.to_height}: confirmed after {to_confirmed[-1]:.2f}s")
            result["checkpoint_to_confirmed_s"] = _summary(to_confirmed)
            result["checkpoint_to_recorded_s"] = _summary(to_recorded)
            result["checkpoints_per_anchor"] = checkpoints_per_anchor
            rpc.close()
            return result
        finally:
            manager.down(home)
