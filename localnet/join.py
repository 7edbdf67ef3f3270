"""One extra node joining a running localnet: a non-validator that catches up by block sync.

`prepare_joiner` makes the node's CometBFT home (its own keys, the net's genesis, a config that
peers with every node of the net) next to the net's nodes, on the ports the next node index
would have; `JoinedNode.start` runs its ABCI app and CometBFT as this process's children and
`stop` ends them by pid. The node starts as a full node; it signs blocks once governance votes
its validator key in (`fedledger gov propose add-validator --pub-key <its cometbft home>`).
The net's supervisor does not know of it: whoever starts it stops it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from fedledger.localnet.config import NodeSpec, load_spec, node_ports, render_node_config
from fedledger.localnet.errors import LocalnetError
from fedledger.localnet.supervisor import app_command, terminate_all

__all__ = ["JoinedNode", "prepare_joiner"]

_CMD_TIMEOUT_S = 60


def _run(cmd: list[str]) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_CMD_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LocalnetError(f"cannot run {' '.join(cmd)}: {exc}") from exc
    if proc.returncode != 0:
        raise LocalnetError(f"{' '.join(cmd)} failed with status {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return proc.stdout


@dataclass
class JoinedNode:
    """An extra node of a localnet and its two processes (None until started)."""

    home: Path
    node: NodeSpec
    cometbft_bin: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def pub_key(self) -> str:
        """The node's validator public key (base64), what add-validator takes."""
        return self.node.pub_key

    def start(self, timeout: float = 60.0) -> None:
        """Start the ABCI app, wait until it listens, then CometBFT (which block-syncs from the peers)."""
        if self.procs:
            raise LocalnetError(f"{self.node.moniker} is already started")
        spec = load_spec(self.home)
        self.node.app_home.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with self.node.app_log.open("ab") as logf:
            self.procs.append(subprocess.Popen(app_command(spec, self.node), stdin=subprocess.DEVNULL, stdout=logf,
                                               stderr=subprocess.STDOUT, cwd=str(self.node.dir), env=env))
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.node.abci_port), timeout=1):
                    break
            except OSError:
                if self.procs[0].poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise LocalnetError(f"{self.node.moniker}'s app did not listen on {self.node.abci_addr}; "
                                        f"see {self.node.app_log}") from None
                time.sleep(0.2)
        with self.node.cometbft_log.open("ab") as logf:
            self.procs.append(subprocess.Popen(
                [str(self.cometbft_bin), "node", "--home", str(self.node.cometbft_home)], stdin=subprocess.DEVNULL,
                stdout=logf, stderr=subprocess.STDOUT, cwd=str(self.node.dir), env=env))

    def stop(self) -> None:
        """Stop CometBFT, then the app (each by its own pid)."""
        terminate_all(list(reversed(self.procs)))
        self.procs = []


def prepare_joiner(home: Path, cometbft_bin: Path, index: int | None = None) -> JoinedNode:
    """Create the extra node's home under the localnet `home` (default index: the net's node count).

    Its ports are those node `index` would have (base port + 10 * index), so the caller must have
    chosen a base port leaving that block free. An existing directory for it is refused.
    """
    spec = load_spec(home)
    index = len(spec.nodes) if index is None else index
    if index < len(spec.nodes):
        raise LocalnetError(f"node{index} is one of the net's own nodes; a joiner takes index >= {len(spec.nodes)}")
    p2p, rpc, abci = node_ports(spec.base_port, index)
    node = NodeSpec(index=index, moniker=f"node{index}", node_id="", validator_address="", pub_key="",
                    dir=spec.home / f"node{index}", p2p_port=p2p, rpc_port=rpc, abci_port=abci)
    if node.dir.exists():
        raise LocalnetError(f"{node.dir} already exists; remove it or pick another index")
    _run([str(cometbft_bin), "init", "--home", str(node.cometbft_home)])
    key_file = node.cometbft_home / "config" / "priv_validator_key.json"
    try:
        key = json.loads(key_file.read_text())
        node = replace(node, validator_address=str(key["address"]), pub_key=str(key["pub_key"]["value"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LocalnetError(f"cannot read validator key {key_file}: {exc!r}") from exc
    node = replace(node, node_id=_run([str(cometbft_bin), "show-node-id", "--home",
                                       str(node.cometbft_home)]).strip())
    shutil.copyfile(spec.nodes[0].cometbft_home / "config" / "genesis.json",
                    node.cometbft_home / "config" / "genesis.json")
    config = node.cometbft_home / "config" / "config.toml"
    # render_node_config peers with every node of the spec other than this one: all of the net's.
    config.write_text(render_node_config(config.read_text(), spec, node))
    return JoinedNode(home=spec.home, node=node, cometbft_bin=cometbft_bin)
