"""Helpers for the HE tests: a trained polynomial digits model, and real stage nodes on loopback ports.

Each node is a uvicorn server running node/inference/he_server.py's app in its own thread on a
free 127.0.0.1 port; `he_nodes` starts one per stage and stops them all afterwards.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import httpx
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.node.inference.he_server import DEFAULT_MAX_HE_BODY_BYTES, HEStageNode, create_he_app
from fedledger.sdk.he.poly import PolyStage

MODEL = "mlp-digits-poly"
VERSION = 3


@dataclass(frozen=True)
class RunningNode:
    """A started node: its base URL, stage and DID."""

    url: str
    stage: int
    did: str


def free_port() -> int:
    """A port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(node: HEStageNode, max_body_bytes: int = DEFAULT_MAX_HE_BODY_BYTES) -> Iterator[str]:
    """Run node's app under uvicorn in a thread; yield its base URL; stop it on exit."""
    port = free_port()
    config = uvicorn.Config(create_he_app(node, max_body_bytes=max_body_bytes), host="127.0.0.1", port=port,
                            log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/v2/he/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    else:
        server.should_exit = True
        raise RuntimeError("HE node did not start")
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def he_nodes(stages: tuple[PolyStage, ...],
             max_body_bytes: int = DEFAULT_MAX_HE_BODY_BYTES) -> Iterator[list[RunningNode]]:
    """One node per stage, each holding only its own stage and its own fresh DID key; all stopped on exit."""
    with ExitStack() as stack:
        nodes = []
        for stage in stages:
            key = Ed25519PrivateKey.generate()
            node = HEStageNode(model=MODEL, version=VERSION, stage=stage, key=key)
            url = stack.enter_context(serve(node, max_body_bytes))
            nodes.append(RunningNode(url=url, stage=stage.index, did=did_from_private_key(key)))
        yield nodes
