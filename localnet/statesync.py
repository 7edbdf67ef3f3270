"""Join a running localnet with a fresh, non-validator node that catches up by state sync (or block sync).

The joiner gets its own directory, ports and keys, the net's genesis, every validator as a persistent
peer and a ``[statesync]`` section whose trust height and hash come from a running validator's
``/commit``: CometBFT's light client verifies the snapshot's app hash against that root of trust, and
the app (abci_app/snapshots.py) accepts the snapshot only if its rebuilt Merkle root matches.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from fedledger.localnet.config import (
    NetSpec,
    NodeSpec,
    TomlValue,
    _run,
    node_ports,
    render_node_config,
    set_toml_values,
)
from fedledger.localnet.errors import LocalnetError
from fedledger.localnet.manager import rpc_get
from fedledger.localnet.ports import find_free_base_port
from fedledger.localnet.zk_srs import net_srs_path

__all__ = ["Joiner", "render_statesync", "start_joiner", "trust_point"]

# How far below the tip the trust height sits: the light client needs headers at and after it.
_TRUST_BACKOFF = 2


def trust_point(rpc_url: str, backoff: int = _TRUST_BACKOFF) -> tuple[int, str]:
    """Return (height, block hash) of a recent committed block of the node at ``rpc_url``."""
    latest = rpc_get(rpc_url, "commit")
    tip = int(latest["signed_header"]["header"]["height"])
    height = max(1, tip - backoff)
    commit = rpc_get(rpc_url, "commit", {"height": height})
    return height, str(commit["signed_header"]["commit"]["block_id"]["hash"])


def render_statesync(text: str, rpc_servers: list[str], trust_height: int, trust_hash: str,
                     trust_period: str = "168h") -> str:
    """Return config.toml ``text`` with state sync enabled against the given light-client root of trust."""
    if len(rpc_servers) < 2:
        raise LocalnetError("state sync needs at least two rpc_servers (CometBFT cross-checks the light client)")
    updates: dict[str, dict[str, TomlValue]] = {"statesync": {
        "enable": True,
        "rpc_servers": ",".join(s.replace("http://", "") for s in rpc_servers),
        "trust_height": trust_height,
        "trust_hash": trust_hash,
        "trust_period": trust_period,
        # Localhost peers answer fast; short timeouts keep a stuck attempt from eating the join budget.
        "discovery_time": "5s",
        "chunk_request_timeout": "10s",
        "chunk_fetchers": "4",
    }}
    return set_toml_values(text, updates)


@dataclass
class Joiner:
    """A running joiner node: its spec and the two processes (app, cometbft) this module started."""

    node: NodeSpec
    app: subprocess.Popen[bytes]
    comet: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)

    def stop(self, timeout: float = 20) -> None:
        """Stop cometbft, then the app (SIGTERM, then SIGKILL after ``timeout``)."""
        for proc in (self.comet, self.app):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout)


def start_joiner(spec: NetSpec, cometbft_bin: Path, *, statesync: bool = True, directory: Path | None = None,
                 snapshot_interval: int = 0) -> Joiner:
    """Create and start a fresh non-validator node for ``spec`` that joins by state sync (or block sync).

    ``directory`` defaults to ``<net home>/joiner``; it is wiped first. The node's ports come from a
    free port block. ``snapshot_interval`` is the joiner's own snapshot interval (0: it serves none).
    """
    index = len(spec.nodes)
    d = directory or spec.home / "joiner"
    shutil.rmtree(d, ignore_errors=True)
    base = find_free_base_port(10)
    p2p, rpc, abci = node_ports(base, 0)
    home = d / "cometbft"
    _run([str(cometbft_bin), "init", "--home", str(home)])
    node_id = _run([str(cometbft_bin), "show-node-id", "--home", str(home)]).strip()
    node = NodeSpec(index=index, moniker=f"joiner{index}", node_id=node_id, validator_address="", pub_key="",
                    dir=d, p2p_port=p2p, rpc_port=rpc, abci_port=abci)
    shutil.copyfile(spec.nodes[0].cometbft_home / "config" / "genesis.json", home / "config" / "genesis.json")
    cfg = home / "config" / "config.toml"
    # The joiner is not in spec.nodes, so render_node_config peers it with every validator.
    text = render_node_config(cfg.read_text(), spec, node)
    if statesync:
        height, block_hash = trust_point(spec.nodes[0].rpc_url)
        text = render_statesync(text, [n.rpc_url for n in spec.nodes[:2]], height, block_hash)
    cfg.write_text(text)
    node.app_home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    app_cmd = [sys.executable, "-m", "fedledger.abci_app", "--home", str(node.app_home), "--addr", node.abci_addr,
               "--chain-id", spec.chain_id, "--snapshot-interval", str(snapshot_interval)]
    srs = net_srs_path(spec.home)  # the same pinned SRS the validators verify zk proofs with
    if srs is not None:
        app_cmd += ["--zk-srs", str(srs)]
    with open(node.app_log, "ab") as log:
        app = subprocess.Popen(app_cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                               cwd=str(d))
    time.sleep(1.0)  # the app must listen before cometbft dials it (cometbft retries, but logs noise)
    with open(node.cometbft_log, "ab") as log:
        comet = subprocess.Popen([str(cometbft_bin), "node", "--home", str(home)], stdin=subprocess.DEVNULL,
                                 stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(d))
    return Joiner(node=node, app=app, comet=comet)
