"""The critical tier's rows of `fedledger bench inference`: zk-proven inference (ezkl) and two-stage CKKS.

zk: bench/zk.py per model (prove, proof size, verification inside a FinalizeBlock, the quantized
circuit's accuracy against the float model). CKKS: bench/he.py (two loopback nodes, one stage
each; latency per part, bytes, error against the plaintext polynomial model, accuracy).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["bench_critical", "critical_text"]


def bench_critical(zk_models: Sequence[str] = ("mlp-digits",), he_samples: int = 50,
                   log: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Run the zk bench for each model and the CKKS bench; returns {"zk": {model: figures}, "ckks": figures}."""
    from fedledger.bench.he import bench_he
    from fedledger.bench.zk import run_zk_bench

    zk = {}
    for spec in zk_models:
        log(f"zk: {spec} …")
        zk[spec] = run_zk_bench(spec, log=log)
    log(f"ckks: two stages, {he_samples} samples …")
    return {"zk": zk, "ckks": bench_he(samples=he_samples)}


def critical_text(r: dict[str, Any]) -> str:
    """The critical rows as text, goals beside the figures."""
    lines = []
    for spec, z in r["zk"].items():
        lines.append(f"zk {spec}: circuit 2^{z['logrows']} rows; setup {z['setup_s']} s; prove {z['prove_s']} s "
                     f"(goal <= 60 s for digits); proof {z['proof_bytes']} bytes; verify in FinalizeBlock "
                     f"{z['verify_ms_finalize_block']} ms (goal <= 300); accuracy circuit {z['circuit_accuracy']} vs "
                     f"float {z['float_accuracy']} over {z['accuracy_samples']} (gap {z['accuracy_gap_pp']} pp, "
                     "goal <= 0.5)")
    c = r["ckks"]
    lat, acc = c["latency_s"], c["accuracy"]
    lines.append(f"ckks {c['params']}: total {lat['total']['median']} s median / {lat['total']['p90']} p90 "
                 "(goal <= 1 s); "
                 f"stage0 {lat['stage0']['median']} s, stage1 {lat['stage1']['median']} s; max abs error "
                 f"{c['max_abs_error']:.2e} (goal <= 1e-3)")
    lines.append(f"ckks bytes: eval context {c['bytes']['eval_context']}, input ciphertext "
                 f"{c['bytes']['input_ciphertext']}, stage answers {c['bytes']['stage_answers']}")
    lines.append(f"ckks accuracy: encrypted {acc['encrypted_poly_samples']} on {c['samples']} samples; plaintext poly "
                 f"{acc['plaintext_poly_test']} and ReLU {acc['plaintext_relu_test']} on the {acc['test_size']}-digit "
                 "test split")
    return "\n".join(lines)
