"""A consortium built in network namespaces purely through the ceremony CLI: what DEPLOY.md walks, automated.

Every organization's steps run inside its own namespace (`ip netns exec … fedledger node init`,
`genesis hash`, `node start`); only public cards and the genesis file cross between hosts. The
integration tests and `fedledger bench faults` drive it, then read each host's CometBFT RPC over
the bridge.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fedledger.localnet.config import node_ports
from fedledger.localnet.errors import LocalnetError
from fedledger.localnet.netns import NetHost, NetnsLab

__all__ = ["ConsortiumLab", "LabHost", "fedledger_script"]

_CLI_TIMEOUT_S = 180.0


def fedledger_script() -> Path:
    """The `fedledger` console script next to the running interpreter (what an operator would run)."""
    return Path(sys.executable).parent / "fedledger"


@dataclass(frozen=True)
class LabHost:
    """One organization of the lab: its namespace, its home (private to it) and its RPC address."""

    net: NetHost
    org: str
    home: Path
    rpc_url: str


class ConsortiumLab:
    """Run the ceremony for ``lab``'s hosts (organizations org0, org1, …) under ``workdir``."""

    def __init__(self, lab: NetnsLab, workdir: Path, *, base_port: int = 26600, block_time_ms: int = 500,
                 env: dict[str, str] | None = None, log: Callable[[str], None] = lambda _m: None) -> None:
        self.lab = lab
        self.workdir = workdir
        self.base_port = base_port
        self.block_time_ms = block_time_ms
        self.env = dict(os.environ) if env is None else env
        self.log = log
        _, rpc, _ = node_ports(base_port, 0)
        self.hosts = tuple(LabHost(h, f"org{h.index}", workdir / f"host{h.index}", f"http://{h.ip}:{rpc}")
                           for h in lab.hosts)
        self.genesis_sha: str | None = None
        self.started: list[int] = []

    def fedledger(self, index: int | None, args: Sequence[str], timeout: float = _CLI_TIMEOUT_S) -> str:
        """Run `fedledger ARGS` inside host ``index``'s namespace (the root one for None); its stdout.

        LocalnetError with everything it printed when it exits non-zero or hangs.
        """
        argv = [str(fedledger_script()), *args]
        if index is not None:
            argv = self.hosts[index].net.exec_argv(argv)
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=self.env, check=False,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise LocalnetError(f"`{' '.join(argv)}` did not finish within {timeout:.0f}s") from exc
        if proc.returncode != 0:
            raise LocalnetError(f"`{' '.join(argv)}` exited {proc.returncode}:\n{proc.stdout[-2000:]}\n"
                                f"{proc.stderr[-2000:]}")
        return proc.stdout

    def init_all(self) -> list[dict[str, object]]:
        """`node init` on every host, in its namespace; returns the cards they printed."""
        cards = []
        for h in self.hosts:
            out = self.fedledger(h.net.index, ["node", "init", "--org", h.org, "--home", str(h.home),
                                               "--host", h.net.ip, "--base-port", str(self.base_port)])
            cards.append(json.loads(out))
        return cards

    def assemble(self, by: int = 0) -> str:
        """Organization ``by`` assembles the genesis from everyone's card; each one gets a copy and checks
        the hash itself before it may start. Returns the agreed sha256."""
        shared = self.workdir / "genesis.json"
        cards = [str(h.home / "card.json") for h in self.hosts]
        sha = self.fedledger(by, ["genesis", "assemble", *cards, "--out", str(shared), "--force"]).strip()
        for h in self.hosts:
            copy = h.home / "genesis.json"
            copy.write_bytes(shared.read_bytes())  # "sent" to the host
            got = self.fedledger(h.net.index, ["genesis", "hash", str(copy), "--expect", sha]).strip()
            if got != sha:
                raise LocalnetError(f"{h.org} computed genesis hash {got}, not {sha}")
        self.genesis_sha = sha
        return sha

    def peers_of(self, index: int, port: int | None = None) -> str:
        """The other hosts' p2p addresses, from their public cards (on ``port`` instead, e.g. a relay's)."""
        addrs = []
        for h in self.hosts:
            if h.net.index != index:
                card = json.loads((h.home / "card.json").read_text())
                address = str(card["p2p_address"])
                addrs.append(address if port is None else f"{address.rpartition(':')[0]}:{port}")
        return ",".join(addrs)

    def start(self, index: int, peer_port: int | None = None) -> None:
        """`node start` on host ``index`` with the agreed genesis hash (peers dialled on ``peer_port``)."""
        if self.genesis_sha is None:
            raise LocalnetError("assemble the genesis before starting hosts")
        h = self.hosts[index]
        self.fedledger(index, ["node", "start", "--home", str(h.home), "--genesis", str(h.home / "genesis.json"),
                               "--genesis-hash", self.genesis_sha, "--peers", self.peers_of(index, peer_port),
                               "--block-time", str(self.block_time_ms), "--rpc-host", "0.0.0.0"])
        self.started.append(index)

    def ceremony(self) -> str:
        """init, assemble, check and start every host; returns the genesis sha256."""
        self.init_all()
        sha = self.assemble()
        for h in self.hosts:
            self.start(h.net.index)
        return sha

    def stop(self, index: int) -> None:
        """`node stop` on host ``index``."""
        self.fedledger(index, ["node", "stop", "--home", str(self.hosts[index].home)], timeout=60)
        self.started = [i for i in self.started if i != index]

    def stop_all(self) -> list[str]:
        """`node stop` on every started host; returns the failures (the lab's teardown kills what is left)."""
        problems = []
        for i in sorted(set(self.started)):
            try:
                self.fedledger(i, ["node", "stop", "--home", str(self.hosts[i].home)], timeout=60)
            except LocalnetError as exc:
                problems.append(str(exc))
        self.started.clear()
        return problems

    # -- observation ----------------------------------------------------------------------------

    def height(self, index: int) -> int | None:
        """Host ``index``'s latest committed height, None when its RPC does not answer."""
        from fedledger.localnet.manager import rpc_get

        try:
            return int(rpc_get(self.hosts[index].rpc_url, "status", timeout=2.0)["sync_info"]["latest_block_height"])
        except (LocalnetError, KeyError, TypeError, ValueError):
            return None

    def app_hash_after(self, index: int, height: int) -> str:
        """The app hash host ``index`` committed after block ``height`` (the header of block height+1)."""
        from fedledger.localnet.manager import rpc_get

        header = rpc_get(self.hosts[index].rpc_url, "block", {"height": height + 1}, timeout=3.0)["block"]["header"]
        return str(header["app_hash"]).lower()

    def wait_height(self, minimum: int, hosts: Iterable[int], timeout: float) -> dict[int, int]:
        """Wait until every host in ``hosts`` reports height >= ``minimum``; LocalnetError names the laggards."""
        wanted = sorted(set(hosts))
        deadline = time.monotonic() + timeout
        while True:
            heights = {i: self.height(i) for i in wanted}
            if all((v or 0) >= minimum for v in heights.values()):
                return {i: int(v or 0) for i, v in heights.items()}
            if time.monotonic() > deadline:
                raise LocalnetError(f"hosts did not reach height {minimum} within {timeout:.0f}s: {heights}; "
                                    f"see {self.workdir}/host*/cometbft.log")
            time.sleep(0.5)
