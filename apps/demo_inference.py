"""The demo's last act: serve the final version on three inference nodes and answer one consensus-verified request."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from fedledger.client.infer import VerifiedInference
from fedledger.client.receipt_reporter import ReceiptReporter
from fedledger.node.inference.service import InferenceNode
from fedledger.sdk.chainview import ChainView
from fedledger.sdk.errors import ClientError
from fedledger.sdk.keys import Key
from fedledger.sdk.rpc import CometRPC
from fedledger.sdk.submit import Submitter
from fedledger.sdk.term import working

__all__ = ["serve_and_infer"]


def serve_and_infer(console: Console, home: Path, rpcs: list[CometRPC], store: Any, nodes: list[Key], reporter: Key,
                    task_id: str, rows: np.ndarray, labels: np.ndarray) -> None:
    """Start one node per key (admitted with role inference), wait until all serve the last good version, ask k=3."""
    view = ChainView(rpcs[0])
    target = view.last_good(task_id)
    started: list[InferenceNode] = []
    try:
        with working(console, f"starting {len(nodes)} inference nodes (onnxruntime behind OIP v2) for version "
                                    f"{target}…"):
            for i, key in enumerate(nodes):
                rpc = rpcs[i % len(rpcs)]
                node = InferenceNode(key=key, task_id=task_id, view=ChainView(rpc), status=rpc.status, store=store,
                                     cache_dir=home / "inference-cache" / key.name, submitter=Submitter(rpc, key),
                                     events_url=rpc.url)
                node.start()
                started.append(node)
            deadline = time.monotonic() + 60
            while any(n.version != target for n in started):
                if time.monotonic() > deadline:
                    raise ClientError(f"inference nodes did not load version {target} within 60 s: "
                                      f"{[n.version for n in started]}")
                time.sleep(0.2)
        for node in started:
            console.print(f"  inference node {node.key.name}: {node.url}  serving version {node.version}")
        sub = Submitter(rpcs[0], reporter)
        posting = ReceiptReporter(sub, task_id, store=store)
        client = VerifiedInference(view, rpcs[0].status, task_id, k=3, sink=posting)
        try:
            answer = client.infer({client.input_name(): rows.astype(np.float32)})
        finally:
            client.close()
        posting.close()
        predicted = np.asarray(next(iter(answer.outputs.values()))).argmax(axis=-1)
        console.print(f"[bold]consensus-verified inference[/]: {answer.tally.outcome} of {len(answer.answers)} "
                      f"nodes on version {answer.version}; predicted {predicted.tolist()} for true "
                      f"{labels.tolist()}")
        batch = posting.posted[-1] if posting.posted else None
        if batch is None or batch.error is not None:
            raise ClientError(f"the receipts were not posted: {batch.error if batch else 'nothing to post'}")
        on_chain = view.get(f"/inference-request/{answer.request_hash}")
        console.print(f"  receipts on chain: batch {batch.batch} at height {batch.height}, Merkle root "
                      f"{on_chain['root'][:16]}…, nodes agreeing {len(on_chain['majority'])}, dissenters "
                      f"{len(on_chain['dissenters'])}")
        console.print(f"  `fedledger query inference request {answer.request_hash}` shows it with a proof")
    finally:
        for node in started:
            node.stop()
