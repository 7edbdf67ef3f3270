"""`fedledger demo`: a 4-validator localnet, 8 torch clients on non-IID digits, an aggregator, live progress.

Everything is real: CometBFT validators, the FedLedger ABCI app, the content store, signed txs,
the websocket-following aggregator. The demo ends by printing the final model's provenance and
stopping the network it started.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from fedledger.client.receipt import ContributionReceipt
from fedledger.client.runner import run_client
from fedledger.sdk.chainview import ChainView, NotFoundOnChain
from fedledger.sdk.errors import ClientError
from fedledger.sdk.keys import Key, KeyStore
from fedledger.sdk.ml.dpsgd import DPConfig
from fedledger.sdk.rpc import CometRPC
from fedledger.sdk.submit import Submitter
from fedledger.sdk.term import interactive, output_console, print_fitted, working

__all__ = ["DemoConfig", "run_demo"]

TASK = "digits"


@dataclass
class DemoConfig:
    """Sizes of the demo (kept small so it runs in a few minutes on 2 cores)."""

    home: Path = Path(".demo")
    validators: int = 4
    clients: int = 8
    rounds: int = 5
    alpha: float = 0.5
    block_time_ms: int = 300
    base_port: int = 26600
    store: Literal["embedded", "kubo"] = "embedded"
    deadline_blocks: int = 60
    evaluators: int = 2  # the default lifecycle quorum: two evaluators at starting reputation
    min_accuracy_ppm: int = 200_000
    epsilon: str = "10"  # per-participant budget on the task
    delta: str = "1e-5"
    noise_multiplier: str = "1"  # DP-SGD σ of every client
    sample_rate: str = "0.1"  # DP-SGD Poisson rate q: 3 epochs = 30 steps, ε ≈ 4.8 per round, ≈ 9.6 after 5
    anchor: bool = True  # end by anchoring checkpoints (to geth --dev unless FEDLEDGER_ANCHOR_RPC is set), then verify


@dataclass
class _Live:
    """Shared progress state, written by worker threads and read by the display."""

    receipts: list[ContributionReceipt] = field(default_factory=list)
    accuracy: dict[int, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _admit_all(home: Path, rpcs: list[CometRPC], keys: list[tuple[Key, str]]) -> None:
    """Issue each key a development credential and broadcast every admission first, then wait for all."""
    from fedledger.localnet.dev import dev_credential

    pending = []
    for i, (key, role) in enumerate(keys):
        sub = Submitter(rpcs[i % len(rpcs)], key)
        pending.append((sub, sub.broadcast("admit", {"credential": dev_credential(home, key, role)})))
    for sub, h in pending:
        sub.wait(h)


def run_demo(cfg: DemoConfig, console: Console | None = None) -> int:
    """Run the whole demo; returns the final model version number."""
    from fedledger.ipfs import open_store
    from fedledger.localnet import manager
    from fedledger.node.aggregator import Aggregator
    from fedledger.sdk.ml.data import load_digits_federated
    from fedledger.sdk.ml.model import initial_weights
    from fedledger.sdk.ml.train import evaluate
    from fedledger.sdk.tensors import decode_tensors, encode_tensors

    console = console or output_console()
    if cfg.home.exists():
        if manager.is_running(cfg.home):
            manager.down(cfg.home)
        shutil.rmtree(cfg.home)
    console.rule("[bold]FedLedger demo")
    dev_chain = cfg.anchor and not os.environ.get("FEDLEDGER_ANCHOR_RPC")
    if dev_chain and not _geth_available():
        console.print("[yellow]no geth (run `make install`) and no Go to build it: the demo will not anchor")
        cfg.anchor = dev_chain = False
    with working(console, f"starting {cfg.validators} CometBFT validators + FedLedger ABCI apps on 127.0.0.1…"):
        manager.up(cfg.home, validators=cfg.validators, store=cfg.store, block_time_ms=cfg.block_time_ms,
                   base_port=cfg.base_port, anchor_chain=dev_chain)
    try:
        rpcs = [CometRPC(manager.rpc_url(cfg.home, i)) for i in range(cfg.validators)]
        console.print(f"network up: RPC {', '.join(r.url for r in rpcs)}; logs in {cfg.home}/node*/")
        store = open_store(manager.store_spec(cfg.home) or f"embedded:{cfg.home / 'store'}")
        keystore = KeyStore(cfg.home)
        owner = keystore.create("aggregator")
        trainers = [keystore.create(f"client{i}") for i in range(cfg.clients)]
        evaluators = [keystore.create(f"evaluator{i}") for i in range(cfg.evaluators)]
        anchorer = keystore.create("anchorer")  # a validator admin: it records the anchors
        servers = [keystore.create(f"inference{i}") for i in range(3)]
        shards, test = load_digits_federated(cfg.clients, alpha=cfg.alpha, seed=0)
        with working(console, "admitting participants with W3C credentials and creating the task…"):
            _admit_all(cfg.home, rpcs, [(owner, "aggregator")] + [(t, "trainer") for t in trainers]
                       + [(e, "evaluator") for e in evaluators] + [(anchorer, "validator-admin")]
                       + [(k, "inference") for k in servers])
            payload = encode_tensors(initial_weights("mlp-digits", 0))
            cid = store.put(payload)
            Submitter(rpcs[0], owner).send("create_task", {
                "task_id": TASK, "model_spec": "mlp-digits", "round_size": cfg.clients,
                "min_contributions": max(1, cfg.clients // 2), "deadline_blocks": cfg.deadline_blocks,
                "aggregator": owner.public_hex,
                "initial_model": {"cid": cid, "sha256": hashlib.sha256(payload).hexdigest(), "size": len(payload)},
                "privacy": {"epsilon": cfg.epsilon, "delta": cfg.delta, "org_epsilon": None},
                # A version is promoted unless it collapses or carries a backdoor: DP rounds start low.
                "lifecycle": {"min_canary_accuracy_ppm": cfg.min_accuracy_ppm, "max_backdoor_asr_ppm": 200_000},
            })
        state = _Live()
        stop = threading.Event()
        agg = Aggregator(Submitter(CometRPC(rpcs[0].url), owner), store, TASK, max_rounds=cfg.rounds)

        def aggregator_thread() -> None:
            try:
                asyncio.run(agg.run(poll_s=0.5))
            except Exception as exc:  # surfaced in the display and the summary
                state.errors.append(f"aggregator: {exc}")
            finally:
                stop.set()

        def client_thread(i: int) -> None:
            def record(_: str, receipt: ContributionReceipt | None) -> None:
                if receipt is not None:
                    with state.lock:
                        state.receipts.append(receipt)
            try:
                sub = Submitter(CometRPC(rpcs[i % len(rpcs)].url), trainers[i])
                run_client(sub, store, TASK, shards[i],
                           DPConfig(noise_multiplier=cfg.noise_multiplier, sample_rate=cfg.sample_rate),
                           rounds=cfg.rounds, should_stop=stop.is_set, on_event=record)
            except Exception as exc:
                state.errors.append(f"client{i}: {exc}")

        def evaluator_thread(i: int) -> None:
            # Each evaluator holds its own half of the held-out data as its canary set.
            from fedledger.node.evaluator import Evaluator
            from fedledger.node.probes import TriggerProbe
            from fedledger.sdk.ml.data import ClientData

            canary = ClientData(test.X[i::cfg.evaluators], test.y[i::cfg.evaluators])
            try:
                ev = Evaluator(Submitter(CometRPC(rpcs[(i + 1) % len(rpcs)].url), evaluators[i]), store, TASK,
                               canary=canary, probe=TriggerProbe(target_label=0))
                asyncio.run(ev.run(poll_s=0.5, until=stop.is_set))
            except Exception as exc:
                state.errors.append(f"evaluator{i}: {exc}")

        threads = [threading.Thread(target=aggregator_thread, daemon=True)]
        threads += [threading.Thread(target=evaluator_thread, args=(i,), daemon=True) for i in range(cfg.evaluators)]
        threads += [threading.Thread(target=client_thread, args=(i,), daemon=True) for i in range(cfg.clients)]
        for t in threads:
            t.start()
        view = ChainView(rpcs[0])
        progress = Progress(TextColumn("[bold]rounds"), BarColumn(), TextColumn("{task.completed}/{task.total}"))
        bar = progress.add_task("rounds", total=cfg.rounds)

        columns = ("round", "status", "commits", "opened at", "closed at", "version", "decision",
                   "test accuracy", "commit latency p50", "max ε spent")

        def rows() -> list[tuple[str, ...]]:
            task = view.task(TASK)
            out: list[tuple[str, ...]] = []
            for r in range(1, task["current_round"] + 1):
                rec = view.round(TASK, r)
                lat = [x.latency_s for x in state.receipts if x.round == r]
                acc = state.accuracy.get(rec["version"]) if rec["version"] else None
                decision = view.version(TASK, rec["version"])["status"] if rec["version"] else "-"
                eps = [x.epsilon for x in state.receipts if x.round == r]
                out.append((str(r), rec["status"], str(rec["contributions"]), str(rec["opened_height"]),
                            str(rec["closed_height"] or "-"), str(rec["version"] or "-"), decision,
                            f"{acc:.1%}" if acc is not None else "-",
                            f"{statistics.median(lat) * 1000:.0f} ms" if lat else "-",
                            f"{max(eps):.2f} / {cfg.epsilon}" if eps else "-"))
            return out

        def table(body: list[tuple[str, ...]]) -> Table:
            tab = Table(title=f"task {TASK}: {cfg.clients} clients, non-IID digits (Dirichlet α={cfg.alpha}), "
                              f"chain height {rpcs[0].height()}")
            for col in columns:
                tab.add_column(col)
            for row in body:
                tab.add_row(*row)
            return tab

        def track_accuracy() -> int:
            latest = int(view.task(TASK)["latest_version"])
            if latest not in state.accuracy:
                rec = view.version(TASK, latest)
                state.accuracy[latest] = evaluate("mlp-digits", decode_tensors(store.get(rec["cid"], rec["sha256"])),
                                                  test).accuracy
            return latest

        if interactive(console):
            with Live(console=console, refresh_per_second=4) as live:
                while not stop.is_set():
                    progress.update(bar, completed=max(0, track_accuracy()))
                    live.update(Group(table(rows()), progress, *[f"[red]{e}" for e in state.errors]))
                    time.sleep(0.5)
                latest = track_accuracy()
                progress.update(bar, completed=latest)
                live.update(Group(table(rows()), progress))
        else:
            # A pipe or a CI log: no live redraws. One plain line each time a round's row changes,
            # every column named, then the whole table at the width its figures need.
            shown: dict[str, tuple[str, ...]] = {}
            reported = 0
            while True:
                done = stop.is_set()
                latest = track_accuracy()
                for row in rows():
                    if shown.get(row[0]) != row:
                        shown[row[0]] = row
                        console.print(" · ".join(f"{c} {v}" for c, v in zip(columns, row, strict=True)),
                                      soft_wrap=True, highlight=False)
                for e in state.errors[reported:]:
                    console.print(f"[red]{e}", soft_wrap=True)
                reported = len(state.errors)
                if done:
                    break
                time.sleep(0.5)
            print_fitted(console, table(rows()))
        for t in threads:
            t.join(timeout=30)
        if state.errors:
            raise ClientError("demo failed: " + "; ".join(state.errors))
        _print_provenance(console, view, latest, {k.public_hex: k.name for k in [owner, *trainers]},
                          state.accuracy.get(latest))
        if cfg.anchor:
            _anchor_and_verify(console, cfg.home, rpcs[0], anchorer)
        from fedledger.apps.demo_inference import serve_and_infer

        serve_and_infer(console, cfg.home, rpcs, store, servers, anchorer, TASK, test.X[:8], test.y[:8])
        return latest
    finally:
        with working(console, "stopping the network…"):
            manager.down(cfg.home)
        console.print(f"network stopped; logs kept in {cfg.home}")


def _print_provenance(console: Console, view: ChainView, version: int, names: dict[str, str],
                      accuracy: float | None) -> None:
    try:
        lineage = view.lineage(TASK, version)
    except NotFoundOnChain:
        console.print("[red]no model version was produced")
        return
    v = lineage["version"]
    console.rule(f"[bold]provenance of {TASK} version {version}")
    console.print(f"model {v['cid']}  sha256 {v['sha256']}  ({v['size']} bytes)")
    console.print(f"proposed by {names.get(v['proposer'], v['proposer'][:16])} at height {v['height']} from round "
                  f"{v['round']}, parent version {v['parent']}, {v['total_examples']} examples"
                  + (f", test accuracy {accuracy:.1%}" if accuracy is not None else ""))
    tab = Table(title="included contributions (exactly those the chain recorded)")
    for col in ("participant", "key", "payload CID", "examples", "height"):
        tab.add_column(col)
    for c in lineage["contributions"]:
        tab.add_row(names.get(c["participant"], "?"), c["participant"][:16] + "…", c["cid"],
                    str(c["num_examples"]), str(c["height"]))
    print_fitted(console, tab)
    chain = " ← ".join(f"v{a['version']}@{a['height']}" for a in lineage["ancestors"])
    console.print(f"ancestry: v{version}@{v['height']} ← {chain}")


def _geth_available() -> bool:
    """Whether the dev anchor chain can start: the pinned geth is installed, or Go can build it."""
    from fedledger.localnet.binaries import find_pinned
    from fedledger.localnet.cometbft import default_bin_dir
    from fedledger.localnet.geth import check_geth

    found = find_pinned("GETH_BIN", default_bin_dir(), "geth", check_geth, log=lambda _m: None)
    return found is not None or shutil.which("go") is not None


def _anchor_and_verify(console: Console, home: Path, rpc: CometRPC, key: Key) -> None:
    """Anchor every checkpoint so far to the public (here: dev) chain, then verify the last promoted version's."""
    from fedledger.localnet.geth import DEV_CHAIN_FILE
    from fedledger.node.anchor.checkpoints import RPCCheckpoints
    from fedledger.node.anchor.config import load_config, save_contract
    from fedledger.node.anchor.public import PublicChain
    from fedledger.node.anchor.service import AnchorService, ChainRecorder
    from fedledger.node.anchor.verify import build_bundle, verify_bundle

    cfg = load_config(dev_chain_file=home / DEV_CHAIN_FILE)
    console.rule("[bold]anchoring to a public chain")
    with working(console, f"anchoring the checkpoints to chain {cfg.rpc_url} ({cfg.source})…"):
        public = PublicChain(cfg)
        if cfg.contract is None:
            deployed = public.deploy()
            save_contract(cfg, deployed.address)
            cfg = cfg.with_contract(deployed.address)
            console.print(f"deployed CheckpointAnchor at {deployed.address} ({deployed.gas_used} gas)")
            public = PublicChain(cfg)
        result = AnchorService(public, RPCCheckpoints(rpc), ChainRecorder(Submitter(rpc, key))).anchor_once()
    if result is not None:
        console.print(f"anchored heights {result.from_height}..{result.to_height} (root {result.root[:18]}…) in tx "
                      f"{result.tx_hash} on chain {result.public_chain_id}: {result.gas_used} gas, confirmed "
                      f"{result.confirm_seconds:.1f}s after reading the checkpoints, recorded at height "
                      f"{result.recorded_height}")
    version = int(ChainView(rpc).get(f"/lifecycle/{TASK}")["last_good"])
    verdict = verify_bundle(build_bundle(rpc, TASK, version), public.eth, contract=cfg.contract)
    for check in verdict.checks:
        console.print(f"{'[green]ok[/]  ' if check.ok else '[red]FAIL[/]'} {check.name}: {check.detail}",
                      soft_wrap=True)
    if not verdict.ok:
        raise ClientError(f"the anchor of {TASK} v{version} did not verify")
    console.print(f"[bold green]VERIFIED[/]: {TASK} v{version}, the last promoted version, is anchored on chain "
                  f"{public.chain_id()}: its checkpoint's Merkle proof leads to the root in the live tx receipt")
