"""`python -m bench.he`: encrypted (CKKS) two-stage inference of the digits MLP on real loopback nodes.

Trains mlp-digits (ReLU) and mlp-digits-poly (square) the same way (sdk/he/training.py, seed 0),
starts one uvicorn node per stage of the polynomial model, and runs `samples` test-split digits
through client encrypt -> stage 0 -> stage 1 -> decrypt. Reports, as JSON: latency per part
(median and p90, seconds), ciphertext and evaluation-context bytes, the first request's cost (it
carries the context), the max abs error against the plaintext polynomial model, and accuracy:
encrypted on the samples, plaintext poly on the same samples and on the whole test split, ReLU on
the whole test split. Goals: error <= 1e-3, <= 1 s per inference.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx
import numpy as np
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fedledger.client.he_infer import HEClient, Hop
from fedledger.node.inference.he_server import HEStageNode, create_he_app
from fedledger.sdk.he.keys import ClientKeys
from fedledger.sdk.he.params import CKKS_PARAMS
from fedledger.sdk.he.poly import reference_forward, split_stages
from fedledger.sdk.he.training import digits_split, train_digits

__all__ = ["bench_he", "main"]

MODEL, VERSION = "mlp-digits-poly", 1
ERROR_GOAL, LATENCY_GOAL_S = 1e-3, 1.0


@contextmanager
def _serve(node: HEStageNode) -> Iterator[str]:
    """node's app under uvicorn in a thread on a free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(create_he_app(node), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(400):
        try:
            httpx.get(f"{url}/v2/he/health", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median": round(statistics.median(ordered), 4), "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 4)}


def bench_he(samples: int = 50, seed: int = 0) -> dict[str, Any]:
    """Run the benchmark and return its figures."""
    relu = train_digits("mlp-digits", seed)
    poly = train_digits(MODEL, seed)
    stages = split_stages(MODEL, poly.weights)
    _, test = digits_split(seed)
    n = min(samples, len(test))
    t = time.perf_counter()
    keys = ClientKeys()
    keygen_s = time.perf_counter() - t
    with ExitStack() as stack:
        urls = [stack.enter_context(_serve(HEStageNode(MODEL, VERSION, st, Ed25519PrivateKey.generate())))
                for st in stages]
        hops = [Hop(url, st.index) for url, st in zip(urls, stages, strict=True)]
        with HEClient(Ed25519PrivateKey.generate(), keys) as client:
            first = client.infer(test.X[0], hops, MODEL, VERSION, 10)
            parts: dict[str, list[float]] = {"encrypt": [], "stage0": [], "stage1": [], "decrypt": [], "total": []}
            errors, enc_pred, ref_pred = [], [], []
            ct_sizes: list[int] = []
            for i in range(n):
                t = time.perf_counter()
                result = client.infer(test.X[i], hops, MODEL, VERSION, 10)
                parts["total"].append(time.perf_counter() - t)
                parts["encrypt"].append(result.encrypt_seconds)
                parts["decrypt"].append(result.decrypt_seconds)
                for call in result.calls:
                    parts[f"stage{call.stage}"].append(call.seconds)
                ref = reference_forward(stages, test.X[i])
                errors.append(float(np.abs(result.logits - ref).max()))
                enc_pred.append(int(np.argmax(result.logits)))
                ref_pred.append(int(np.argmax(ref)))
                ct_sizes = [result.input_ciphertext_bytes] + [c.response_bytes for c in result.calls]
    labels = test.y[:n]
    return {
        "params": CKKS_PARAMS.label(), "samples": n, "keygen_s": round(keygen_s, 3),
        "latency_s": {name: _stats(values) for name, values in parts.items()},
        "first_request_s": {f"stage{c.stage}": round(c.seconds, 3) for c in first.calls},
        "bytes": {"eval_context": len(keys.eval_context), "input_ciphertext": ct_sizes[0],
                  "stage_answers": ct_sizes[1:], "first_request_stage0": first.calls[0].request_bytes},
        "max_abs_error": max(errors),
        "accuracy": {
            "encrypted_poly_samples": float(np.mean(np.array(enc_pred) == labels)),
            "plaintext_poly_samples": float(np.mean(np.array(ref_pred) == labels)),
            "argmax_agreement_samples": float(np.mean(np.array(enc_pred) == np.array(ref_pred))),
            "plaintext_poly_test": poly.test_accuracy, "plaintext_relu_test": relu.test_accuracy,
            "test_size": len(test),
        },
        "goals": {"error_le_1e-3": max(errors) <= ERROR_GOAL,
                  "median_total_le_1s": statistics.median(parts["total"]) <= LATENCY_GOAL_S},
    }


def main(argv: list[str] | None = None) -> None:
    """Command line: print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(json.dumps(bench_he(args.samples, args.seed), indent=2))


if __name__ == "__main__":
    main()
