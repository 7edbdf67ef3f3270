"""`fedledger bench evm`: policy-call latency inside FinalizeBlock, and EVM tx throughput on a localnet.

1. Policy calls, in process: a chain with the default AdmissionPolicy and PromotionPolicy from
   contracts/build. Each sample is one decision point as FinalizeBlock runs it: open the EVM at
   the working state, call the contract with the fixed gas budget, and record the decision
   (commit the call's state, receipt, logs). Also the cost of a whole admit tx in FinalizeBlock
   with and without the admission policy. Goal: ≤ 5 ms per policy call.
2. Throughput, on a 4-validator localnet: bound senders send EIP-1559 txs that each increment a
   counter and emit a log, through CometBFT's RPC (the chain's EVM envelope); committed tx/s, and
   the share of the block interval spent in py-evm, from node 0's "evm block" log lines.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["COUNTER_RUNTIME", "bench_evm", "policy_latency", "throughput"]

TOPIC = bytes(range(32))
# slot0 += 1; LOG1(topic TOPIC, data = new value)  (the EVM work of a typical small contract call)
COUNTER_RUNTIME = bytes.fromhex("600054600101806000556000527f") + TOPIC + bytes.fromhex("60206000a100")
_EVM_LOG = re.compile(r"evm block (\d+): (\d+) txs, ([0-9.]+) ms in py-evm")


def _deploy_code(runtime: bytes) -> bytes:
    n = len(runtime)
    return (bytes([0x61]) + n.to_bytes(2, "big") + bytes([0x60, 14, 0x60, 0x00, 0x39, 0x61]) + n.to_bytes(2, "big")
            + bytes([0x60, 0x00, 0xF3]) + runtime)


def _stats(samples_ns: list[int]) -> dict[str, float]:
    ms = sorted(s / 1e6 for s in samples_ns)
    return {"n": len(ms), "mean_ms": round(statistics.fmean(ms), 3), "p50_ms": round(statistics.median(ms), 3),
            "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 3), "max_ms": round(ms[-1], 3)}


# ----------------------------------------------------------------------------- 1. policy calls
def policy_latency(samples: int = 200) -> dict[str, Any]:
    """Latency of the default admission and promotion policy calls as FinalizeBlock makes them."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from fedledger.abci_app.canonical import canonical_bytes
    from fedledger.abci_app.context import BlockContext
    from fedledger.abci_app.did.didkey import did_from_private_key
    from fedledger.abci_app.did.vc import issue_admission_credential
    from fedledger.abci_app.evm_engine.policy import consult_admission, consult_promotion
    from fedledger.abci_app.state_machine import StateMachine
    from fedledger.abci_app.store import CommittedStore
    from fedledger.abci_app.tx import sign_tx
    from fedledger.localnet.evm_genesis import default_evm_section

    issuer = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"bench-issuer").digest())
    issuer_did = did_from_private_key(issuer)
    chain_id = "bench-evm"

    def genesis(policies: bool) -> bytes:
        state: dict[str, Any] = {"identity": {"organizations": [{
            "id": "org", "name": "Org", "enrollment_cap": 10 * samples + 10, "issuers": [issuer_did]}]}}
        state["evm"] = default_evm_section() if policies else {}
        return canonical_bytes(state)

    def ctx(height: int) -> BlockContext:
        return BlockContext(height=height, time_ns=1_700_000_000 * 10**9 + height * 10**9,
                            block_hash=hashlib.sha256(b"%d" % height).digest(), chain_id=chain_id)

    def admits(tag: str, n: int) -> list[bytes]:
        out = []
        for i in range(n):
            key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"{tag}{i}".encode()).digest())
            cred = issue_admission_credential(issuer, issuer_did, did_from_private_key(key), "org", "trainer", [],
                                              "2020-01-01T00:00:00Z", "2100-01-01T00:00:00Z", f"urn:bench:{tag}:{i}")
            out.append(sign_tx(key, "admit", {"credential": cred}, chain_id, 1))
        return out

    result: dict[str, Any] = {}
    store = CommittedStore(":memory:")
    sm = StateMachine(store, chain_id)
    sm.init_chain(chain_id, genesis(True))
    sm.finalize_block(ctx(1), [])
    sm.commit()
    # The decision points alone, on a working state (as inside FinalizeBlock), `samples` times each.
    admission, promotion = [], []
    metrics = {"canary_accuracy_ppm": 900_000, "backdoor_asr_ppm": 20_000, "min_canary_accuracy_ppm": 500_000,
               "max_backdoor_asr_ppm": 200_000, "attestations": 2, "weight": 2_000_000}
    gas: dict[str, int] = {}
    for i in range(samples):
        working = store.working()
        t0 = time.perf_counter_ns()
        session = consult_admission(working, ctx(2), subject=f"did:key:z{i}", issuer=issuer_did, organization="org",
                                    role="trainer", tasks=[], valid_from=0, valid_until=2**40)
        assert session is not None
        session.record(working)
        admission.append(time.perf_counter_ns() - t0)
        gas["admission"] = session.decisions[0].outcome.gas_used
        t0 = time.perf_counter_ns()
        asked = consult_promotion(working, ctx(2), "task", i + 1, metrics)
        assert asked is not None
        asked[1].record(working)
        promotion.append(time.perf_counter_ns() - t0)
        gas["promotion"] = asked[0].outcome.gas_used
    result["admission_policy"] = {**_stats(admission), "gas": gas["admission"]}
    result["promotion_policy"] = {**_stats(promotion), "gas": gas["promotion"]}
    store.close()
    # Whole admit txs in FinalizeBlock, with the default policy and without any (blocks of 20).
    per_tx: dict[str, float] = {}
    for name, policies in (("with_policy", True), ("without_policy", False)):
        store = CommittedStore(":memory:")
        sm = StateMachine(store, chain_id)
        sm.init_chain(chain_id, genesis(policies))
        txs = admits(name, samples)
        elapsed = 0
        for h, start in enumerate(range(0, samples, 20), start=1):
            t0 = time.perf_counter_ns()
            results, _ = sm.finalize_block(ctx(h), txs[start:start + 20])
            elapsed += time.perf_counter_ns() - t0
            sm.commit()
            assert all(r.code == 0 for r in results), [r.log for r in results if r.code]
        per_tx[name] = round(elapsed / samples / 1e6, 3)
        store.close()
    result["admit_tx_ms"] = {**per_tx, "policy_overhead_ms": round(per_tx["with_policy"] - per_tx["without_policy"],
                                                                    3)}
    result["goal_ms"] = 5
    result["goal_met"] = max(result["admission_policy"]["p50_ms"], result["promotion_policy"]["p50_ms"]) <= 5
    return result


# ----------------------------------------------------------------------------- 2. throughput
def _evm_log_lines(app_log: Path, first: int, last: int) -> dict[int, tuple[int, float]]:
    out: dict[int, tuple[int, float]] = {}
    for line in app_log.read_text(errors="replace").splitlines():
        m = _EVM_LOG.search(line)
        if m and first <= int(m.group(1)) <= last:
            out[int(m.group(1))] = (int(m.group(2)), float(m.group(3)))
    return out


def throughput(validators: int = 4, senders: int = 40, txs_per_sender: int = 25, concurrency: int = 8,
               batch: int = 20, block_time_ms: int = 300, base_port: int = 27700,
               log: Callable[[str], None] = print) -> dict[str, Any]:
    """Committed EVM tx/s on a localnet and the share of block time spent in py-evm (node 0)."""
    from eth_account import Account
    from eth_account.messages import encode_defunct
    from eth_utils.address import to_checksum_address
    from eth_utils.crypto import keccak

    from fedledger.abci_app.did.didkey import did_from_private_key
    from fedledger.abci_app.evm_engine.binding import binding_message
    from fedledger.abci_app.evm_engine.ethtx import wrap
    from fedledger.bench.load import run_load
    from fedledger.localnet import manager
    from fedledger.localnet.consortium import dev_app_state
    from fedledger.localnet.dev import dev_credential
    from fedledger.sdk.keys import Key
    from fedledger.sdk.rpc import CometRPC
    from fedledger.sdk.submit import Submitter

    tmp = Path(tempfile.mkdtemp(prefix="fedledger-bench-evm-"))
    home = tmp / "net"
    home.mkdir()
    try:
        manager.up(home, validators=validators, base_port=base_port, block_time_ms=block_time_ms,
                   app_state=dev_app_state(home), log=lambda m: None)
        urls = [manager.rpc_url(home, i) for i in range(validators)]
        rpc = CometRPC(urls[0])
        chain_id = str(rpc.status()["node_info"]["network"])
        evm_chain = int(json.loads(rpc.abci_query("/evm/params").value)["chain_id"])
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        keys = [Key(f"evm{i}", Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"evm-bench-%d" % i).digest()))
                for i in range(senders)]
        accounts = [Account.from_key(hashlib.sha256(b"evm-bench-eth-%d" % i).digest()) for i in range(senders)]
        subs = [Submitter(rpc, k, chain_id) for k in keys]
        pending = [(s, s.broadcast("admit", {"credential": dev_credential(home, k, "trainer")}))
                   for s, k in zip(subs, keys, strict=True)]
        for s, h in pending:
            s.wait(h)
        pending = []
        for s, k, a in zip(subs, keys, accounts, strict=True):
            sig = Account.sign_message(encode_defunct(primitive=binding_message(
                chain_id, did_from_private_key(k.private), a.address)), a.key).signature
            pending.append((s, s.broadcast("bind_evm_address", {"address": a.address.lower(),
                                                                 "signature": "0x" + bytes(sig).hex()})))
        for s, h in pending:
            s.wait(h)
        log(f"evm: {senders} members admitted and bound")

        def signed(account: Any, nonce: int, **fields: Any) -> bytes:
            tx = {"type": 2, "chainId": evm_chain, "nonce": nonce, "maxFeePerGas": 0, "maxPriorityFeePerGas": 0,
                  "value": 0, **fields}
            return bytes(Account.sign_transaction(tx, account.key).raw_transaction)

        deploy = signed(accounts[0], 0, gas=200_000, data=_deploy_code(COUNTER_RUNTIME))
        import rlp

        counter = keccak(rlp.encode([bytes.fromhex(accounts[0].address[2:]), 0]))[12:]
        _send_and_wait(rpc, wrap(deploy))
        to = to_checksum_address(counter)
        lanes = [[wrap(signed(a, n + (1 if i == 0 else 0), gas=50_000, to=to)) for n in range(txs_per_sender)]
                 for i, a in enumerate(accounts)]
        first = rpc.height() + 1
        result = run_load(urls, lanes, concurrency, batch)
        time.sleep(2 * block_time_ms / 1000)  # node 0 finalizes (and logs) the last block too
        last = rpc.height()
        log(f"evm: {result.committed} EVM txs at {result.tps} tx/s over {result.duration_s} s")
        codes: dict[str, int] = {}
        for height in range(first, last + 1):
            for r in rpc.call("block_results", height=str(height)).get("txs_results") or []:
                codes[str(r.get("code", 0))] = codes.get(str(r.get("code", 0)), 0) + 1
        # Block intervals from the headers; py-evm time from node 0's log, over blocks holding EVM txs.
        lines = _evm_log_lines(home / "node0" / "app.log", first, last)
        times = {height: rpc.block(height)["block"]["header"]["time"]
                 for height in range(min(lines, default=first) - 1, max(lines, default=first) + 1)}
        intervals = [_interval_ms(times[height - 1], times[height]) for height in sorted(lines) if height - 1 in times]
        evm_ms = sum(ms for _, ms in lines.values())
        rpc.close()
        return {
            **result.as_dict(), "result_codes": codes, "validators": validators, "senders": senders,
            "block_time_ms": block_time_ms,
            "evm_blocks": len(lines), "evm_txs_logged": sum(n for n, _ in lines.values()),
            "py_evm_ms_per_tx": round(evm_ms / max(1, sum(n for n, _ in lines.values())), 3),
            "py_evm_ms_per_block": round(evm_ms / max(1, len(lines)), 1),
            "block_interval_ms": round(statistics.fmean(intervals), 1) if intervals else None,
            "py_evm_share_of_block_time": round(evm_ms / sum(intervals), 3) if intervals else None,
        }
    finally:
        try:
            manager.down(home)
        except Exception:  # noqa: BLE001 - the net may not have come up
            pass
        shutil.rmtree(tmp, ignore_errors=True)


def _send_and_wait(rpc: Any, tx: bytes, timeout_s: float = 30.0) -> None:
    """broadcast_tx_sync, then poll /tx until the tx is in a block; RuntimeError if refused or late."""
    res = rpc.broadcast_tx_sync(tx)
    if int(res.get("code", 0)) != 0:
        raise RuntimeError(f"tx refused: {res.get('log')}")
    deadline = time.monotonic() + timeout_s
    while rpc.tx(hashlib.sha256(tx).hexdigest()) is None:
        if time.monotonic() > deadline:
            raise RuntimeError("tx not committed in time")
        time.sleep(0.1)


def _interval_ms(earlier: str, later: str) -> float:
    """Milliseconds between two CometBFT header times (RFC 3339 with nanoseconds)."""
    def ns(text: str) -> int:
        from datetime import datetime

        head, _, frac = text.rstrip("Z").partition(".")
        whole = int(datetime.fromisoformat(head + "+00:00").timestamp())
        return whole * 10**9 + int((frac or "0").ljust(9, "0")[:9])

    return (ns(later) - ns(earlier)) / 1e6


def bench_evm(samples: int = 200, localnet: bool = True, log: Callable[[str], None] = print,
              **kwargs: Any) -> dict[str, Any]:
    """Both parts; `localnet=False` runs the in-process policy latency only."""
    out: dict[str, Any] = {"benchmark": "evm", "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                           "policy_calls": policy_latency(samples)}
    log(f"evm: admission policy p50 {out['policy_calls']['admission_policy']['p50_ms']} ms, promotion policy p50 "
        f"{out['policy_calls']['promotion_policy']['p50_ms']} ms")
    if localnet:
        out["throughput"] = throughput(log=log, **kwargs)
    return out
