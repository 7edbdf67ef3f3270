"""The localnet `fedledger bench …` subcommands at toy size, run as a user runs them (console script, --json).

Each bench brings up (and tears down) its own real localnet, so no net can be shared between them;
the sizes are the smallest that still exercise every phase, to keep CI's wall time to minutes. What
is asserted is what docs/BENCHMARKS.md claims of the output, never a speed:
- chain: every commitment tx committed with FinalizeBlock code 0, none refused in CheckTx, on both
  FedLedger and the kvstore peer; the ratio field present and positive; the issue's targets;
- governance: the admission and commitment runs complete with code 0, the debit target is 5 ms;
- evm: every EVM tx committed with code 0, the default policies' gas, the py-evm share in (0, 1];
- anchor: gas per anchor for 1, 100 and 10,000 checkpoints within the 30,000 goal, nearly flat in
  the batch size, and far below the variant that stores each root.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fedledger.localnet.ports import find_free_base_port

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
FEDLEDGER = Path(sys.executable).parent / "fedledger"


def _binary(env_var: str, name: str) -> str | None:
    for cand in (os.environ.get(env_var), str(REPO_ROOT / "bin" / name), shutil.which(name)):
        if cand and Path(cand).is_file():
            return str(Path(cand).resolve())
    return None


def bench_json(*args: str, timeout: float, needs: tuple[str, ...] = ("cometbft",)) -> Any:
    """Run `fedledger bench <args> --json` as a subprocess; its parsed stdout (stderr shown on failure)."""
    env = dict(os.environ)
    for var, name in (("COMETBFT_BIN", "cometbft"), ("IPFS_BIN", "ipfs"), ("GETH_BIN", "geth")):
        found = _binary(var, name)
        if found is None and name in needs:
            pytest.skip(f"no {name} binary (${var}, bin/ or PATH): run `make binaries`")
        if found is not None:
            env[var] = found
    for var in ("FEDLEDGER_NODE", "FEDLEDGER_STORE", "FEDLEDGER_LOCALNET"):
        env.pop(var, None)
    proc = subprocess.run([str(FEDLEDGER), "bench", *args, "--json"], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, env=env, timeout=timeout, check=False)
    assert proc.returncode == 0, f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n" \
                                 f"{proc.stderr[-3000:]}"
    return json.loads(proc.stdout)


def all_code_zero(run: dict[str, Any], expected: int) -> None:
    """Every one of `expected` txs was accepted by CheckTx, committed, and executed with code 0."""
    assert run["sent"] == run["accepted"] == run["committed"] == expected, run
    assert run["rejected_checktx"] == 0
    assert run["result_codes"] == {"0": expected}, run["result_codes"]
    assert run["blocks"] >= 1 and run["tps"] > 0 and run["duration_s"] > 0


@pytest.mark.timeout(420)
def test_bench_chain_toy() -> None:
    trainers, tasks = 4, 4
    out = bench_json("chain", "--validators", "2", "--trainers", str(trainers), "--tasks", str(tasks),
                     "--rate", "40", "--concurrency", "2", "--batch", "4", "--block-time", "300",
                     "--base-port", str(find_free_base_port(40)), timeout=400)
    assert out["benchmark"] == "chain" and out["validators"] == 2 and out["signers"] == trainers
    half = tasks // 2
    fed = out["fedledger"]
    assert fed["admission"]["result_codes"] == {"0": fed["admission"]["committed"]}
    assert fed["admission"]["committed"] == fed["admission"]["sent"] >= trainers
    all_code_zero(fed["saturation"], trainers * half)
    all_code_zero(fed["at_rate"], trainers * (tasks - half))
    kv = out["kvstore"]
    all_code_zero(kv["saturation"], trainers * half * 10)  # kv_factor: kvstore gets 10x the saturation txs
    all_code_zero(kv["at_rate"], trainers * (tasks - half))
    assert out["tx_bytes"] > 0
    assert out["ratio_tps_vs_kvstore"] == round(fed["saturation"]["tps"] / kv["saturation"]["tps"], 3) > 0
    assert out["targets"] == {"tps": 300, "ratio": 0.5, "p50_ms": 500, "p95_ms": 1000}


@pytest.mark.timeout(420)
def test_bench_governance_toy() -> None:
    out = bench_json("governance", "--trainers", "4", "--debits", "5", "--base-port", str(find_free_base_port(40)),
                     timeout=400)
    assert out["benchmark"] == "governance"
    assert out["targets"] == {"debit_ms": 5, "tps": 200}
    assert out["accountant"]["debits"] == 5 and out["accountant"]["target_ms"] == 5.0
    adm, com = out["admission"], out["commitment"]
    assert adm["committed"] == adm["sent"] and adm["result_codes"] == {"0": adm["committed"]}
    all_code_zero(com, 4 * 3)  # tasks=6: half of every signer's lane is the saturation run


@pytest.mark.timeout(420)
def test_bench_evm_toy() -> None:
    senders, txs = 2, 3
    out = bench_json("evm", "--samples", "3", "--senders", str(senders), "--txs", str(txs), "--concurrency", "2",
                     "--base-port", str(find_free_base_port(40)), timeout=400)
    calls = out["policy_calls"]
    assert calls["admission_policy"]["gas"] == 5842 and calls["promotion_policy"]["gas"] == 4612
    net = out["throughput"]
    assert net["committed"] == net["sent"] == senders * txs
    assert net["rejected_checktx"] == 0
    assert net["result_codes"] == {"0": senders * txs}, net["result_codes"]
    assert net["tps"] > 0 and net["validators"] == 4
    assert net["evm_txs_logged"] >= 1  # node 0's "evm block … ms in py-evm" lines were found
    if net["py_evm_share_of_block_time"] is not None:
        assert 0 < net["py_evm_share_of_block_time"] <= 1


@pytest.mark.timeout(420)
def test_bench_anchor_toy() -> None:
    out = bench_json("anchor", "--samples", "1", "--base-port", str(find_free_base_port(40)), timeout=400,
                     needs=("cometbft", "geth"))
    assert out["benchmark"] == "anchor" and out["public_chain_id"] == 1337 and out["confirmations"] == 1
    gas = {int(n): g for n, g in out["gas_per_anchor"].items()}
    assert sorted(gas) == [1, 100, 10_000]
    # The docs: ≤ 30,000 gas whatever the batch (24,876 / 24,888 / 24,900): one root, never per checkpoint.
    assert out["gas_goal"] == 30_000 and out["meets_gas_goal"] is True
    assert all(20_000 < g <= 30_000 for g in gas.values())
    assert gas[10_000] - gas[1] < 100
    stored = out["storage_variant_gas"]
    if stored is not None:  # the rejected design: a fresh storage slot per anchor costs ~110k more
        assert all(int(stored[n]) - gas[int(n)] > 100_000 for n in stored)
    assert out["checkpoints_per_anchor"][0] >= 1
    confirmed, recorded = out["checkpoint_to_confirmed_s"], out["checkpoint_to_recorded_s"]
    assert len(confirmed["samples"]) == len(recorded["samples"]) == 1
    assert 0 < confirmed["p50"] <= recorded["p50"]  # recording on FedLedger comes after the confirmation
