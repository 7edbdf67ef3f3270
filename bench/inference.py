"""`fedledger bench inference`: inference latency and throughput, and lying nodes, on a real localnet with real nodes.

One run, one machine, side by side:
- onnxruntime in-process (the floor), one inference node over HTTP, the plain FastAPI +
  onnxruntime peer (bench/inference_baseline.py), consensus-verified inference with k = 3 and
  split inference over 2 node stages, for the digits model and a >= 1M-parameter CNN;
- throughput of one node with dynamic batching against the peer under the same concurrent load;
- lying nodes: 2 honest nodes and 1 liar (random outputs, a perturbed model, a stale version), in
  turn: how many of the liar's answers were outvoted, when the chain slashed it, and whether any
  honest node was ever slashed.

Every node and the peer run as their own processes (`fedledger inference serve`), on loopback,
over a 1-validator localnet (the chain is not what is measured here; receipts post in batches on
the client's reporter thread). The load generator is bench/http_load.py.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fedledger.bench.http_load import percentile, run_http_load
from fedledger.bench.inference_setup import InferenceChain
from fedledger.client.infer import VerifiedInference
from fedledger.client.receipt_reporter import ReceiptReporter
from fedledger.client.split_infer import SplitInference
from fedledger.localnet import manager
from fedledger.localnet.consortium import dev_app_state
from fedledger.localnet.ports import find_free_base_port
from fedledger.node.inference.runtime import LoadedModel
from fedledger.sdk.inference.oip_json import encode_request
from fedledger.sdk.rpc import CometRPC

__all__ = ["MODELS", "bench_inference"]

MODELS = {"digits": ("mlp-digits", 64), "cnn1m": ("cnn-mnist-1m", 784)}
LIAR_MAX_DISSENTS = 200  # the governance-set suspension rule for this run: a liar answers this often, then is out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def _ms(lat: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(lat, 0.5) * 1e3, 3), "p95_ms": round(percentile(lat, 0.95) * 1e3, 3),
            "per_s": round(len(lat) / sum(lat), 1) if lat else 0.0}


class _Procs:
    """Node and peer processes of the run, each stopped by its own pid."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        logs.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        out = (self.logs / f"{name}.log").open("wb")
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.procs.append((name, proc))
        return proc

    def stop(self, name: str | None = None) -> None:
        for n, proc in self.procs:
            if (name is None or n == name) and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _wait_ready(url: str, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} was not ready within {timeout:.0f} s")


def bench_inference(*, requests: int = 4000, concurrency: int = 32, sequential: int = 300,
                    lying_requests: int = 10_000, log: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Run the benchmark (see the module docstring) and return its figures."""
    tmp = Path(tempfile.mkdtemp(prefix="fedledger-bench-inference-"))
    net, home = tmp / "net", tmp / "home"
    procs = _Procs(tmp / "logs")
    fedledger = [sys.executable, "-m", "fedledger.apps.cli"]
    try:
        state = dev_app_state(net)
        state["inference"] = {"max_dissents": LIAR_MAX_DISSENTS}
        log("starting a 1-validator localnet…")
        manager.up(net, validators=1, base_port=find_free_base_port(10), app_state=state, log=lambda _m: None)
        rpc = CometRPC(manager.rpc_url(net, 0))
        store_spec = manager.store_spec(net) or f"embedded:{tmp / 'store'}"
        from fedledger.ipfs import open_store

        store = open_store(store_spec)
        nodes = {f"{m}-{i}": "inference" for m in MODELS for i in range(3)}
        liars = {f"liar-{f}": "inference" for f in ("random", "perturb", "stale")}
        chain = InferenceChain(net, home, rpc, store, {**nodes, **liars, "lie-0": "inference",
                                                       "lie-1": "inference"})
        for task, (spec, _) in MODELS.items():
            chain.create_task(task, spec)
            chain.promote(task, 1)
        chain.create_task("lying", "mlp-digits")
        chain.promote("lying", 1)
        base = [*fedledger, "--home", str(home), "--node", rpc.url, "--store", store_spec, "inference", "serve"]

        def serve(key: str, task: str, *extra: str) -> str:
            port = _free_port()
            procs.start(key, [*base, "--key", key, "--task", task, "--port", str(port), *extra])
            return f"http://127.0.0.1:{port}"

        urls = {key: serve(key, key.split("-")[0]) for key in nodes}
        for url in urls.values():
            _wait_ready(url)
        out: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                               "models": {}}
        for task, (spec, width) in MODELS.items():
            log(f"model {spec}…")
            out["models"][task] = _bench_model(chain, rpc, store, procs, task, spec, width, urls[f"{task}-0"],
                                               requests, concurrency, sequential, tmp)
        log("lying nodes…")
        out["lying"] = _bench_lying(chain, rpc, serve, procs.stop, lying_requests, log)
        return out
    finally:
        procs.stop()
        try:
            manager.down(net)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _bench_model(chain: InferenceChain, rpc: CometRPC, store: Any, procs: _Procs, task: str, spec: str, width: int,
                 node_url: str, requests: int, concurrency: int, sequential: int, tmp: Path) -> dict[str, Any]:
    rec = chain.view.version(task, chain.view.last_good(task))
    data = store.get(rec["artifact"]["cid"], rec["artifact"]["sha256"])
    model = LoadedModel.from_bytes(data, name=task, version="1")
    x = np.random.default_rng(0).normal(size=(1, width)).astype(np.float32)
    floor = _timed(lambda: model.run({"input": x}), max(sequential, 1000))
    body = encode_request({"input": x}, request_id="bench")
    path = f"/v2/models/{task}/infer"
    onnx_path = tmp / f"{task}.onnx"
    onnx_path.write_bytes(data)
    port = _free_port()
    procs.start(f"peer-{task}", [sys.executable, "-m", "fedledger.bench.inference_baseline", str(onnx_path), task,
                                 str(port)])
    _wait_ready_peer(port, path, body)
    node_port = int(node_url.rsplit(":", 1)[1])
    figures: dict[str, Any] = {"spec": spec, "parameters": int(sum(int(np.prod(t.shape)) for t in
                                                                   _weights_of(store, rec).values())),
                               "in_process": _ms(floor)}
    # Same load, back to back, twice each in alternation (the machine is noisy).
    for label, p in (("node", node_port), ("peer", port), ("node_2", node_port), ("peer_2", port)):
        run_http_load("127.0.0.1", p, path, body, total=200, concurrency=4)  # warm up
        one = run_http_load("127.0.0.1", p, path, body, total=sequential, concurrency=1)
        many = run_http_load("127.0.0.1", p, path, body, total=requests, concurrency=concurrency)
        figures[f"http_{label}"] = {"sequential": one.summary(), "concurrent": many.summary()}
    procs.stop(f"peer-{task}")
    reporter = ReceiptReporter(chain.subs["client"], task, interval=0.5)
    for k in (1, 3):
        client = VerifiedInference(chain.view, rpc.status, task, k=k, sink=reporter if k == 3 else None)
        try:
            for _ in range(20):
                client.infer({"input": x})
            lat = _timed(lambda c=client: c.infer({"input": x}), sequential)  # type: ignore[misc]
        finally:
            client.close()
        figures[f"verified_k{k}"] = _ms(lat)
    reporter.flush(120)
    reporter.close()
    figures["receipts_posted"] = {"batches": len(reporter.posted),
                                  "errors": [p.error for p in reporter.posted if p.error][:3]}
    split = SplitInference(chain.view, rpc.status, store, task, parts=3, k=1)
    try:
        for _ in range(20):
            split.infer({"input": x})
        figures["split_2_nodes"] = _ms(_timed(lambda: split.infer({"input": x}), sequential))
        figures["split_cuts"] = list(split.cuts)
    finally:
        split.close()
    one_node = figures["verified_k1"]["p50_ms"]
    figures["ratios"] = {
        "cbv_k3_p50_over_one_node_p50": round(figures["verified_k3"]["p50_ms"] / one_node, 3) if one_node else None,
        "node_over_peer_throughput": round(
            (figures["http_node"]["concurrent"]["requests_per_s"] + figures["http_node_2"]["concurrent"]
             ["requests_per_s"]) / max(1e-9, figures["http_peer"]["concurrent"]["requests_per_s"]
                                       + figures["http_peer_2"]["concurrent"]["requests_per_s"]), 3),
        "node_over_peer_sequential_p50": round(
            (figures["http_node"]["sequential"]["p50_ms"] + figures["http_node_2"]["sequential"]["p50_ms"])
            / max(1e-9, figures["http_peer"]["sequential"]["p50_ms"] + figures["http_peer_2"]["sequential"]
                  ["p50_ms"]), 3),
    }
    return figures


def _weights_of(store: Any, rec: Any) -> dict[str, Any]:
    from fedledger.sdk.tensors import decode_tensors

    return dict(decode_tensors(store.get(rec["cid"], rec["sha256"])))


def _wait_ready_peer(port: int, path: str, body: bytes, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if run_http_load("127.0.0.1", port, path, body, total=1, concurrency=1).errors == 0:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the peer server on port {port} did not start")


def _bench_lying(chain: InferenceChain, rpc: CometRPC, serve: Callable[..., str], stop: Callable[[str], None],
                 total: int, log: Callable[[str], None]) -> dict[str, Any]:
    task = "lying"
    honest_urls = [serve("lie-0", task), serve("lie-1", task)]
    for url in honest_urls:
        _wait_ready(url)
    from fedledger.abci_app.did.didkey import did_from_private_key

    honest_dids = {did_from_private_key(chain.keys[n].private) for n in ("lie-0", "lie-1")}
    phases: dict[str, Any] = {}
    per_phase = max(1, total // 3)
    x_rng = np.random.default_rng(1)
    for fault in ("random", "perturb", "stale"):
        key = f"liar-{fault}"
        liar_did = did_from_private_key(chain.keys[key].private)
        url = serve(key, task, "--fault", fault)
        _wait_ready(url)
        if fault == "stale":  # the liar keeps version 1's model and labels it with the new version
            version = chain.promote(task, 2)
            _wait_version(url, task, version)
        reporter = ReceiptReporter(chain.subs["client"], task, interval=0.5)
        asked = outvoted = wrong_accepted = failures = selected = 0
        client = VerifiedInference(chain.view, rpc.status, task, k=3, sink=reporter)
        started = time.monotonic()
        try:
            if fault == "stale":
                for u in honest_urls:
                    _wait_version(u, task, chain.view.last_good(task))
                client.refresh()
            for i in range(per_phase):
                if i % 50 == 0:
                    client.refresh()  # the draw at the latest block; a suspended liar drops out here
                answer = client.infer({"input": x_rng.normal(size=(1, 64)).astype(np.float32)})
                dids = {a.did for a in answer.answers if a.receipt is not None}
                selected += liar_did in {a.did for a in answer.answers}
                if liar_did in dids:
                    asked += 1
                    outvoted += liar_did in answer.dissenters
                    wrong_accepted += liar_did in answer.tally.majority and bool(answer.dissenters)
                failures += len(answer.failed)
        finally:
            client.close()
            stop(key)  # one liar at a time: two liars in one draw could leave no majority at all
        reporter.flush(300)
        reporter.close()
        slashes = _all_slashes(chain)
        mine = [s for s in slashes if s["node"] == liar_did]
        heights = {p.batch: p.height for p in reporter.posted}
        node = chain.view.get(f"/inference-node/{liar_did}")
        phases[fault] = {
            "requests": per_phase, "seconds": round(time.monotonic() - started, 1),
            "liar_selected": selected, "liar_answers_counted": asked, "liar_outvoted": outvoted,
            "liar_outvoted_pct": round(100.0 * outvoted / asked, 2) if asked else None,
            "liar_answers_in_majority": wrong_accepted,
            "liar_slashes": len(mine),
            "slashed_in_batch_block": sum(1 for s in mine if heights.get(s["batch"]) == s["height"]),
            "liar_status": node["status"], "liar_suspended_reason": node["suspended_reason"],
            "batches": len(reporter.posted), "batch_errors": [p.error for p in reporter.posted if p.error][:3],
            "failed_node_answers": failures,
        }
        log(f"  {fault}: {json.dumps(phases[fault])}")
    slashes = _all_slashes(chain)
    return {"requests": per_phase * 3, "max_dissents": LIAR_MAX_DISSENTS, "phases": phases,
            "honest_slashes": sum(1 for s in slashes if s["node"] in honest_dids)}


def _all_slashes(chain: InferenceChain) -> list[dict[str, Any]]:
    count = int(chain.view.get("/inference-slashes/1")["count"])
    out: list[dict[str, Any]] = []
    start = 1
    while start <= count:
        page = chain.view.get(f"/inference-slashes/{start}")["slashes"]
        out += page
        start += max(1, len(page))
    return out


def _wait_version(url: str, task: str, version: int, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"{url}/v2/models/{task}", timeout=2)
            if r.status_code == 200 and str(version) in r.json()["versions"]:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not serve version {version} within {timeout:.0f} s")
