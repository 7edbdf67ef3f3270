"""Detached supervisor daemon that runs each node's ABCI app + cometbft pair and restarts crashed pairs.

Run as ``python -m fedledger.localnet.supervisor --home DIR``. It reads ``<home>/localnet.json``,
follows the desired node states in ``<home>/control.json``, publishes its state in
``<home>/run.json`` and stops every child (each by its own pid) on SIGTERM.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Literal

from fedledger.localnet.config import NetSpec, NodeSpec, load_spec
from fedledger.localnet.errors import LocalnetError
from fedledger.localnet.ports import port_accepts
from fedledger.localnet.zk_srs import net_srs_path

__all__ = [
    "CONTROL_FILE",
    "LOCK_FILE",
    "RUN_FILE",
    "SUPERVISOR_LOG",
    "Supervisor",
    "app_command",
    "ethrpc_command",
    "main",
    "read_control",
    "read_run_state",
    "terminate_all",
    "write_control",
]

RUN_FILE = "run.json"
CONTROL_FILE = "control.json"
LOCK_FILE = "supervisor.lock"
SUPERVISOR_LOG = "supervisor.log"

Desired = Literal["up", "down"]
Phase = Literal["down", "starting", "up", "backoff"]

_TICK_S = 0.2
_APP_START_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 10.0
_BACKOFF_BASE_S = 0.5
_BACKOFF_MAX_S = 15.0
# A pair that stayed up this long counts as healthy again: its next crash restarts without delay build-up.
_HEALTHY_AFTER_S = 30.0
_KUBO_START_TIMEOUT_S = 60.0

log = logging.getLogger("fedledger.localnet.supervisor")


def _atomic_write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def write_control(home: Path, desired: dict[int, Desired]) -> None:
    """Write the desired state of every node (``{index: "up"|"down"}``) to ``<home>/control.json``."""
    _atomic_write_json(home / CONTROL_FILE, {"nodes": {str(i): d for i, d in sorted(desired.items())}})


def read_control(home: Path, count: int) -> dict[int, Desired]:
    """Read the desired node states; nodes missing from the file (or no file at all) default to "up"."""
    desired: dict[int, Desired] = {i: "up" for i in range(count)}
    try:
        data = json.loads((home / CONTROL_FILE).read_text())
    except FileNotFoundError:
        return desired
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable %s: %s", CONTROL_FILE, exc)
        return desired
    nodes = data.get("nodes", {}) if isinstance(data, dict) else {}
    if isinstance(nodes, dict):
        for key, value in nodes.items():
            if str(key).isdigit() and int(key) in desired and value in ("up", "down"):
                desired[int(key)] = value
    return desired


def read_run_state(home: Path) -> dict[str, Any] | None:
    """Return the parsed ``<home>/run.json`` or None when there is none (or it is unreadable)."""
    try:
        data = json.loads((home / RUN_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def app_command(spec: NetSpec, node: NodeSpec) -> list[str]:
    """Command line of node's ABCI application process (with the net's zk SRS, when its genesis pins one)."""
    cmd = [
        sys.executable, "-m", "fedledger.abci_app",
        "--home", str(node.app_home),
        "--addr", node.abci_addr,
        "--chain-id", spec.chain_id,
        "--metrics-port", str(node.app_metrics_port),  # the localnet always observes (abci_app/observer.py)
    ]
    srs = net_srs_path(spec.home)
    return cmd + ["--zk-srs", str(srs)] if srs is not None else cmd


def ethrpc_command(node: NodeSpec) -> list[str]:
    """Command line of node's Ethereum JSON-RPC server (answers from the node's CometBFT RPC)."""
    return [sys.executable, "-m", "fedledger.node.ethrpc", "--node", node.rpc_url, "--port", str(node.evm_rpc_port)]


def terminate_all(procs: Sequence[subprocess.Popen[bytes]], timeout: float = _STOP_TIMEOUT_S) -> None:
    """SIGTERM every live process (by its own pid), wait up to ``timeout``, then SIGKILL stragglers."""
    live = [p for p in procs if p.poll() is None]
    for p in live:
        try:
            p.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(p.poll() is None for p in live):
        time.sleep(0.05)
    for p in live:
        if p.poll() is None:
            log.warning("pid %d ignored SIGTERM for %.0fs; sending SIGKILL", p.pid, timeout)
            try:
                p.kill()
            except ProcessLookupError:
                pass
    for p in live:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.error("pid %d did not die after SIGKILL", p.pid)


@dataclass
class _Node:
    spec: NodeSpec
    desired: Desired = "up"
    phase: Phase = "down"
    app: subprocess.Popen[bytes] | None = None
    comet: subprocess.Popen[bytes] | None = None
    ethrpc: subprocess.Popen[bytes] | None = None  # the node's Ethereum JSON-RPC (fedledger app only)
    restarts: int = 0
    failures: int = 0
    next_start: float = 0.0
    app_deadline: float = 0.0
    up_since: float | None = None
    last_exit: str | None = None

    def children(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in (self.ethrpc, self.comet, self.app) if p is not None]


class Supervisor:
    """Owns every child process of one localnet home and keeps their state in line with control.json."""

    def __init__(self, spec: NetSpec, cometbft_bin: Path, ipfs_bin: Path | None = None) -> None:
        self.spec = spec
        self.home = spec.home
        self.cometbft_bin = cometbft_bin
        self.ipfs_bin = ipfs_bin
        self.nodes = [_Node(n) for n in spec.nodes]
        self.stopping = False
        self.kubo: Any = None
        self.kubo_pid: int | None = None
        self._last_run_state: str | None = None

    # -- child management -----------------------------------------------------------------------

    def _spawn(self, cmd: list[str], log_path: Path, cwd: Path) -> subprocess.Popen[bytes]:
        # The child gets its own copy of the log descriptor; ours is closed right after the fork.
        with open(log_path, "ab") as logf:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            logf.write(f"\n===== {stamp} supervisor starting: {' '.join(cmd)}\n".encode())
            logf.flush()
            env = dict(os.environ, PYTHONUNBUFFERED="1")
            return subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                cwd=str(cwd), env=env, close_fds=True,
            )

    def _start_app(self, node: _Node) -> None:
        spec = node.spec
        spec.app_home.mkdir(parents=True, exist_ok=True)
        node.app = self._spawn(app_command(self.spec, spec), spec.app_log, spec.dir)
        node.app_deadline = time.monotonic() + _APP_START_TIMEOUT_S
        node.phase = "starting"
        log.info("node%d: started app pid %d on %s", spec.index, node.app.pid, spec.abci_addr)

    def _start_cometbft(self, node: _Node) -> None:
        spec = node.spec
        cmd = [str(self.cometbft_bin), "node", "--home", str(spec.cometbft_home)]
        node.comet = self._spawn(cmd, spec.cometbft_log, spec.dir)
        node.phase = "up"
        node.up_since = time.monotonic()
        log.info("node%d: started cometbft pid %d (rpc %s)", spec.index, node.comet.pid, spec.rpc_url)
        if self.spec.app == "fedledger":
            self._start_ethrpc(node)

    def _start_ethrpc(self, node: _Node) -> None:
        spec = node.spec
        node.ethrpc = self._spawn(ethrpc_command(spec), spec.dir / "ethrpc.log", spec.dir)
        log.info("node%d: started Ethereum JSON-RPC pid %d on %s", spec.index, node.ethrpc.pid, spec.evm_rpc_url)

    def _stop_node(self, node: _Node) -> None:
        if node.ethrpc is not None:
            terminate_all([node.ethrpc])
        # cometbft first, so it does not treat the vanishing app as a fatal error worth logging.
        if node.comet is not None:
            terminate_all([node.comet])
        if node.app is not None:
            terminate_all([node.app])
        node.comet = None
        node.app = None
        node.ethrpc = None
        node.up_since = None

    def _fail(self, node: _Node, reason: str) -> None:
        now = time.monotonic()
        if node.up_since is not None and now - node.up_since >= _HEALTHY_AFTER_S:
            node.failures = 0
        log.warning("node%d: %s; stopping the pair and restarting it", node.spec.index, reason)
        node.last_exit = reason
        self._stop_node(node)
        node.failures += 1
        node.restarts += 1
        delay = min(_BACKOFF_BASE_S * 2 ** (node.failures - 1), _BACKOFF_MAX_S)
        node.next_start = now + delay
        node.phase = "backoff"
        log.info("node%d: restart #%d in %.1fs", node.spec.index, node.restarts, delay)

    @staticmethod
    def _exit_text(what: str, proc: subprocess.Popen[bytes]) -> str:
        code = proc.returncode
        how = f"signal {-code}" if code is not None and code < 0 else f"status {code}"
        return f"{what} (pid {proc.pid}) exited with {how}"

    def _step_node(self, node: _Node) -> None:
        if node.desired == "down":
            if node.phase != "down":
                log.info("node%d: stopping (desired down)", node.spec.index)
                self._stop_node(node)
                node.phase = "down"
                node.failures = 0
            return
        now = time.monotonic()
        if node.phase in ("down", "backoff"):
            if now < node.next_start:
                return
            if self.spec.app == "kvstore":
                self._start_cometbft(node)
            else:
                self._start_app(node)
            return
        if node.phase == "starting":
            assert node.app is not None
            if node.app.poll() is not None:
                why = self._exit_text("app", node.app)
                self._fail(node, f"{why} before listening (see {node.spec.app_log})")
            elif port_accepts(node.spec.abci_port):
                self._start_cometbft(node)
            elif now > node.app_deadline:
                limit = f"{_APP_START_TIMEOUT_S:.0f}s"
                self._fail(node, f"app did not listen on {node.spec.abci_addr} within {limit}")
            return
        # phase == "up": both halves must stay alive.
        if node.app is not None and node.app.poll() is not None:
            self._fail(node, self._exit_text("app", node.app))
        elif node.comet is not None and node.comet.poll() is not None:
            self._fail(node, self._exit_text("cometbft", node.comet) + f" (see {node.spec.cometbft_log})")
        elif node.ethrpc is not None and node.ethrpc.poll() is not None:
            # The JSON-RPC server holds no state: restart it alone.
            log.warning("node%d: %s; restarting it", node.spec.index, self._exit_text("ethrpc", node.ethrpc))
            self._start_ethrpc(node)

    # -- Kubo -----------------------------------------------------------------------------------

    def _start_kubo(self) -> None:
        store = self.spec.store
        if store.kind != "kubo":
            return
        from fedledger.localnet import kubo  # the Kubo helper is only needed for store="kubo"

        if self.ipfs_bin is None:
            from fedledger.localnet.cometbft import default_bin_dir

            self.ipfs_bin = kubo.ensure_ipfs_binary(default_bin_dir(), log=log.info)
        if store.ipfs_path is None or store.api_port is None or store.gateway_port is None:
            raise LocalnetError(f"store spec in {self.spec.spec_file} lacks the Kubo path or ports")
        self.kubo = kubo.KuboDaemon(
            store.ipfs_path, store.api_port, store.gateway_port, self.ipfs_bin, swarm_port=store.swarm_port
        )
        self.kubo.init()
        self.kubo_pid = int(self.kubo.start(_KUBO_START_TIMEOUT_S))
        log.info("kubo: started pid %s, api %s", self.kubo_pid, self.kubo.api_url)

    def _stop_kubo(self) -> None:
        if self.kubo is None:
            return
        try:
            self.kubo.stop()
            log.info("kubo: stopped")
        except Exception:  # noqa: BLE001 - shutdown must go on whatever Kubo does
            log.exception("kubo: stop failed")
        self.kubo = None
        self.kubo_pid = None

    # -- state publication ----------------------------------------------------------------------

    def run_state(self) -> dict[str, Any]:
        """The JSON document published as run.json."""
        return {
            "supervisor_pid": os.getpid(),
            "home": str(self.home),
            "chain_id": self.spec.chain_id,
            "app": self.spec.app,
            "stopping": self.stopping,
            "kubo_pid": self.kubo_pid,
            "nodes": [
                {
                    "index": n.spec.index,
                    "desired": n.desired,
                    "phase": n.phase,
                    "app_pid": n.app.pid if n.app is not None and n.app.poll() is None else None,
                    "cometbft_pid": n.comet.pid if n.comet is not None and n.comet.poll() is None else None,
                    "ethrpc_pid": n.ethrpc.pid if n.ethrpc is not None and n.ethrpc.poll() is None else None,
                    "restarts": n.restarts,
                    "last_exit": n.last_exit,
                }
                for n in self.nodes
            ],
        }

    def _publish(self) -> None:
        state = self.run_state()
        text = json.dumps(state, sort_keys=True)
        if text != self._last_run_state:
            _atomic_write_json(self.home / RUN_FILE, state)
            self._last_run_state = text

    # -- main loop ------------------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("received signal %d; shutting down", signum)
        self.stopping = True

    def shutdown(self) -> None:
        """Stop every child: all cometbft processes, then all apps, then Kubo; remove run.json."""
        self.stopping = True
        comets = [n.comet for n in self.nodes if n.comet is not None]
        apps = [n.app for n in self.nodes if n.app is not None]
        ethrpcs = [n.ethrpc for n in self.nodes if n.ethrpc is not None]
        log.info("stopping %d cometbft and %d app processes", len(comets), len(apps))
        terminate_all(ethrpcs)
        terminate_all(comets)
        terminate_all(apps)
        for n in self.nodes:
            n.comet = None
            n.app = None
            n.ethrpc = None
            n.phase = "down"
        self._stop_kubo()
        try:
            (self.home / RUN_FILE).unlink()
        except FileNotFoundError:
            pass
        log.info("supervisor stopped")

    def run(self) -> int:
        """Supervise until SIGTERM/SIGINT; return the process exit status."""
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        log.info(
            "supervisor pid %d: %d nodes, chain %s, app %s, store %s",
            os.getpid(), len(self.nodes), self.spec.chain_id, self.spec.app, self.spec.store.kind,
        )
        try:
            self._publish()
            self._start_kubo()
            while not self.stopping:
                desired = read_control(self.home, len(self.nodes))
                for node in self.nodes:
                    if self.stopping:
                        break
                    if node.desired != desired[node.spec.index]:
                        node.desired = desired[node.spec.index]
                        node.next_start = 0.0
                        log.info("node%d: desired %s", node.spec.index, node.desired)
                    self._step_node(node)
                self._publish()
                time.sleep(_TICK_S)
        except Exception:
            log.exception("supervisor failed")
            self.shutdown()
            return 1
        self.shutdown()
        return 0


def _acquire_lock(home: Path, inherited_fd: int | None) -> int:
    if inherited_fd is not None:
        fd = inherited_fd
    else:
        fd = os.open(home / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        # Re-locking an inherited, already locked descriptor succeeds (same open file description).
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise LocalnetError(f"another supervisor already runs in {home}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m fedledger.localnet.supervisor``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", required=True, type=Path, help="localnet home directory")
    parser.add_argument("--cometbft", type=Path, default=None, help="cometbft binary (default: locate it)")
    parser.add_argument("--ipfs", type=Path, default=None, help="Kubo ipfs binary (store=kubo only)")
    parser.add_argument("--lock-fd", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    home: Path = args.home.expanduser().resolve()
    logging.basicConfig(
        filename=str(home / SUPERVISOR_LOG),
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    # Kubo's readiness polling goes through httpx, which logs every request at INFO.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        lock_fd = _acquire_lock(home, args.lock_fd)
        spec = load_spec(home)
        cometbft_bin: Path | None = args.cometbft
        if cometbft_bin is None:
            from fedledger.localnet.cometbft import default_bin_dir, ensure_cometbft

            cometbft_bin = ensure_cometbft(default_bin_dir(), log=log.info)
    except LocalnetError as exc:
        log.error("%s", exc)
        print(f"supervisor: {exc}", file=sys.stderr)
        return 2
    try:
        return Supervisor(spec, cometbft_bin, args.ipfs).run()
    finally:
        os.close(lock_fd)


if __name__ == "__main__":
    sys.exit(main())
