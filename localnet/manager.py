"""High-level localnet control: up/down/status of a supervised local CometBFT validator network."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fedledger.localnet.cometbft import default_bin_dir, ensure_cometbft
from fedledger.localnet.config import (
    DEFAULT_CHAIN_ID,
    DEFAULT_GENESIS_TIME,
    NETSPEC_FILE,
    AppKind,
    NetSpec,
    StoreKind,
    generate,
    load_spec,
    node_ports,
    required_ports,
    store_spec_for,
    validate_params,
    write_node_configs,
)
from fedledger.localnet.errors import AlreadyRunningError, LocalnetError, NotRunningError
from fedledger.localnet.ports import check_ports_free
from fedledger.localnet.procs import pid_alive, pid_matches, signal_pid, wait_dead
from fedledger.localnet.supervisor import (
    CONTROL_FILE,
    LOCK_FILE,
    RUN_FILE,
    SUPERVISOR_LOG,
    read_control,
    read_run_state,
    write_control,
)

__all__ = [
    "NodeStatus",
    "down",
    "is_running",
    "kill_app",
    "rpc_get",
    "rpc_url",
    "start_node",
    "status",
    "stop_node",
    "store_spec",
    "up",
    "wait_for_height",
]

_RPC_TIMEOUT_S = 1.5
_SUPERVISOR_START_TIMEOUT_S = 20.0
# Remember supervisors spawned by this process so they can be reaped (no zombies, no warnings).
_SPAWNED: dict[int, subprocess.Popen[bytes]] = {}


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class NodeStatus:
    """What one node reports: liveness, chain progress and its supervisor bookkeeping."""

    index: int
    alive: bool
    height: int | None
    app_hash: str | None
    peers: int | None
    catching_up: bool | None
    restarts: int
    desired: str
    phase: str
    rpc_url: str
    app_pid: int | None = None
    cometbft_pid: int | None = None
    error: str | None = None


# ----------------------------------------------------------------------------------------------
# Process helpers
# ----------------------------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    # Supervisors this process spawned are reaped here, so they leave no zombie or ResourceWarning.
    proc = _SPAWNED.get(pid)
    if proc is not None:
        if proc.poll() is None:
            return True
        del _SPAWNED[pid]
        return False
    return pid_alive(pid)


def _recorded_children(run: Mapping[str, Any] | None) -> list[tuple[int, str]]:
    """``(pid, needle)`` of every child recorded in a run.json document."""
    if not run:
        return []
    out: list[tuple[int, str]] = []
    for node in run.get("nodes", []):
        if node.get("cometbft_pid"):
            out.append((int(node["cometbft_pid"]), "cometbft"))
        if node.get("app_pid"):
            out.append((int(node["app_pid"]), "fedledger.abci_app"))
        if node.get("ethrpc_pid"):
            out.append((int(node["ethrpc_pid"]), "fedledger.node.ethrpc"))
    if run.get("kubo_pid"):
        out.append((int(run["kubo_pid"]), "ipfs"))
    return out


def _kill_leftovers(children: Iterable[tuple[int, str]], timeout: float = 10.0) -> list[int]:
    """SIGTERM, then SIGKILL, every still-running recorded child; return the pids that had to be signalled."""
    live = [pid for pid, needle in children if pid_matches(pid, needle)]
    for pid in live:
        signal_pid(pid, signal.SIGTERM)
    wait_dead(live, timeout, _pid_alive)
    for pid in live:
        if _pid_alive(pid):
            signal_pid(pid, signal.SIGKILL)
    return live


def _lock_owner(home: Path) -> int | None:
    """Pid of the supervisor holding ``<home>/supervisor.lock``, or None when nobody holds it."""
    path = home / LOCK_FILE
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            run = read_run_state(home)
            if run and isinstance(run.get("supervisor_pid"), int):
                return int(run["supervisor_pid"])
            text = path.read_text().strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def is_running(home: Path) -> int | None:
    """Return the supervisor pid when a localnet runs in ``home``, else None."""
    return _lock_owner(home.expanduser().resolve())


def _require_running(home: Path) -> tuple[NetSpec, dict[str, Any]]:
    pid = _lock_owner(home)
    if pid is None:
        raise NotRunningError(f"no localnet is running in {home}; start one with `fedledger localnet up`")
    spec = load_spec(home)
    run = read_run_state(home)
    if run is None:
        raise NotRunningError(f"the localnet supervisor (pid {pid}) in {home} has not published run.json yet")
    return spec, run


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# ----------------------------------------------------------------------------------------------
# RPC helpers
# ----------------------------------------------------------------------------------------------


def rpc_get(url: str, path: str, params: Mapping[str, str | int] | None = None,
            timeout: float = _RPC_TIMEOUT_S) -> dict[str, Any]:
    """GET ``url/path?params`` on a CometBFT RPC and return its ``result`` object.

    Raises LocalnetError when the node does not answer or answers with an error.
    """
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    full = f"{url.rstrip('/')}/{path.lstrip('/')}{query}"
    try:
        with urllib.request.urlopen(full, timeout=timeout) as resp:  # noqa: S310 - local http only
            data = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            detail = exc.read().decode(errors="replace")[:300]
        except OSError:
            detail = ""
        raise LocalnetError(f"{full}: HTTP {exc.code} {detail}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise LocalnetError(f"{full}: {exc}") from exc
    if not isinstance(data, dict):
        raise LocalnetError(f"{full}: unexpected answer {data!r:.200}")
    if "error" in data:
        raise LocalnetError(f"{full}: RPC error {data['error']}")
    result = data.get("result")
    if not isinstance(result, dict):
        raise LocalnetError(f"{full}: answer has no result object")
    return result


def rpc_url(home: Path, i: int) -> str:
    """HTTP address of node ``i``'s CometBFT RPC."""
    return str(load_spec(home).node(i).rpc_url)


def store_spec(home: Path) -> str | None:
    """Content-store spec of the net in ``home`` (for ``fedledger.ipfs.open_store``), None if there is no net."""
    try:
        spec = load_spec(home)
    except LocalnetError:
        return None
    if spec.store.kind == "kubo":
        return f"kubo:{spec.store.api_url}"
    return f"embedded:{spec.home / 'store'}"


def _query_node(url: str) -> tuple[int, str, int | None, bool, str | None]:
    st = rpc_get(url, "status")
    sync = st["sync_info"]
    height = int(sync["latest_block_height"])
    app_hash = str(sync.get("latest_app_hash", "")).lower()
    catching_up = bool(sync.get("catching_up", False))
    peers: int | None
    error: str | None = None
    try:
        peers = int(rpc_get(url, "net_info")["n_peers"])
    except (LocalnetError, KeyError, ValueError) as exc:
        peers, error = None, str(exc)
    return height, app_hash, peers, catching_up, error


def status(home: Path) -> list[NodeStatus]:
    """Status of every node in ``home``; a node whose RPC does not answer is reported as not alive."""
    home = home.expanduser().resolve()
    spec = load_spec(home)
    running = _lock_owner(home) is not None
    run = read_run_state(home) if running else None
    run_nodes = {int(n["index"]): n for n in (run or {}).get("nodes", [])}
    desired = read_control(home, spec.validators)

    def one(i: int) -> NodeStatus:
        node = spec.nodes[i]
        rn = run_nodes.get(i, {})
        common: dict[str, Any] = {
            "index": i,
            "restarts": int(rn.get("restarts", 0)),
            "desired": str(rn.get("desired", desired[i] if running else "down")),
            "phase": str(rn.get("phase", "down")),
            "rpc_url": node.rpc_url,
            "app_pid": rn.get("app_pid"),
            "cometbft_pid": rn.get("cometbft_pid"),
        }
        try:
            height, app_hash, peers, catching_up, error = _query_node(node.rpc_url)
        except (LocalnetError, KeyError, TypeError, ValueError) as exc:
            return NodeStatus(alive=False, height=None, app_hash=None, peers=None, catching_up=None,
                              error=str(exc), **common)
        return NodeStatus(alive=True, height=height, app_hash=app_hash, peers=peers,
                          catching_up=catching_up, error=error, **common)

    with ThreadPoolExecutor(max_workers=min(16, max(1, spec.validators))) as pool:
        return list(pool.map(one, range(spec.validators)))


def wait_for_height(home: Path, h: int, timeout: float, nodes: Iterable[int] | None = None) -> dict[int, int]:
    """Wait until each selected node (all by default) reports height >= ``h``; return their heights.

    Raises LocalnetError naming the laggards when ``timeout`` seconds pass first.
    """
    home = home.expanduser().resolve()
    spec = load_spec(home)
    wanted = sorted(set(range(spec.validators) if nodes is None else nodes))
    urls = {i: spec.node(i).rpc_url for i in wanted}
    heights: dict[int, int] = {}
    errors: dict[int, str] = {}
    deadline = time.monotonic() + timeout
    while True:
        for i in wanted:
            if heights.get(i, -1) >= h:
                continue
            try:
                heights[i] = int(rpc_get(urls[i], "status", timeout=1.0)["sync_info"]["latest_block_height"])
                errors.pop(i, None)
            except (LocalnetError, KeyError, ValueError, TypeError) as exc:
                errors[i] = str(exc)
        if all(heights.get(i, -1) >= h for i in wanted):
            return {i: heights[i] for i in wanted}
        if time.monotonic() >= deadline:
            lag = ", ".join(
                f"node{i}: " + (str(heights[i]) if i in heights else f"no answer ({errors.get(i, '?')})")
                for i in wanted if heights.get(i, -1) < h
            )
            raise LocalnetError(f"timed out after {timeout:.0f}s waiting for height {h}: {lag}")
        time.sleep(0.2)


# ----------------------------------------------------------------------------------------------
# up / down
# ----------------------------------------------------------------------------------------------


def _wipe(home: Path) -> None:
    """Remove everything a localnet generated in ``home`` (keys, chain data, logs), nothing else."""
    for child in home.glob("node*"):
        if child.is_dir() and child.name[4:].isdigit():
            shutil.rmtree(child)
    for name in (NETSPEC_FILE, RUN_FILE, CONTROL_FILE, SUPERVISOR_LOG):
        (home / name).unlink(missing_ok=True)
    ipfs = home / "ipfs"
    if ipfs.is_dir():
        shutil.rmtree(ipfs)
    for name in ("ipfs.log", "ipfs.pid", "issuer.key"):
        (home / name).unlink(missing_ok=True)
    if (home / "geth").is_dir():  # the dev anchor chain (localnet/geth.py) and its key
        shutil.rmtree(home / "geth")
    for name in ("geth.log", "geth.pid", "anchor.json", "anchor.key"):
        (home / name).unlink(missing_ok=True)
    if (home / "store").is_dir():  # the embedded content store holds this chain's payloads only
        shutil.rmtree(home / "store")


def _reuse(spec: NetSpec, validators: int, app: str, chain_id: str | None, base_port: int,
           block_time_ms: int, store: StoreKind) -> NetSpec:
    """Adapt an existing spec to new ports/block time/store; refuse changes that need a new chain."""
    hint = f"pass reset=True (`--reset`) to wipe {spec.home} and generate a new chain"
    if validators != spec.validators:
        raise LocalnetError(
            f"{spec.home} holds a net of {spec.validators} validators, not {validators}; {hint}"
        )
    if app != spec.app:
        raise LocalnetError(f"{spec.home} holds a net for app {spec.app!r}, not {app!r}; {hint}")
    if chain_id is not None and chain_id != spec.chain_id:
        raise LocalnetError(f"{spec.home} holds chain {spec.chain_id!r}, not {chain_id!r}; {hint}")
    nodes = []
    for n in spec.nodes:
        p2p, rpc, abci = node_ports(base_port, n.index)
        nodes.append(replace(n, p2p_port=p2p, rpc_port=rpc, abci_port=abci))
    new = replace(
        spec, base_port=base_port, block_time_ms=block_time_ms, nodes=tuple(nodes),
        store=store_spec_for(store, spec.home, base_port),
    )
    if new != spec:
        # Ports, peers and timeouts live in config.toml only: the chain itself is unaffected.
        write_node_configs(new)
        new.save()
    return new


def up(
    home: Path,
    validators: int = 4,
    store: StoreKind = "embedded",
    block_time_ms: int = 300,
    base_port: int = 26600,
    app: AppKind = "fedledger",
    wait: bool = True,
    timeout: float = 60,
    *,
    chain_id: str | None = None,
    reset: bool = False,
    bin_dir: Path | None = None,
    genesis_time: str = DEFAULT_GENESIS_TIME,
    app_state: Mapping[str, Any] | None = None,
    log: Callable[[str], None] = _stderr,
    anchor_chain: bool = False,
    ceremony: bool = False,
) -> NetSpec:
    """Start (generating on first use) a local network of ``validators`` nodes supervised in the background.

    Reuses an existing home so the chain continues; ``reset=True`` wipes it first. With ``wait``,
    returns once every node reports height >= 2 (LocalnetError after ``timeout`` seconds).
    With ``anchor_chain``, also starts the dev anchor chain (``geth --dev`` on port base + 6, see
    localnet/geth.py); if it cannot start, the net is stopped again and the error raised.
    With ``ceremony``, a new net is generated by the consortium ceremony's steps instead, one
    organization per node (localnet/ceremony_net.py).
    """
    validate_params(validators, chain_id or DEFAULT_CHAIN_ID, base_port, block_time_ms, app, store)
    home = home.expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    bin_dir = bin_dir if bin_dir is not None else default_bin_dir()

    lock_fd = os.open(home / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AlreadyRunningError(str(home), _lock_owner_pid_hint(home)) from None
        # No supervisor holds the lock: children recorded in a stale run.json are orphans of a
        # supervisor that was killed outright; they would hold our ports.
        leftovers = _kill_leftovers(_recorded_children(read_run_state(home)))
        if leftovers:
            log(f"stopped {len(leftovers)} orphaned process(es) of a previous run: {leftovers}")
        (home / RUN_FILE).unlink(missing_ok=True)
        if reset:
            _wipe(home)

        cometbft_bin = ensure_cometbft(bin_dir, log=log)
        ipfs_bin: Path | None = None
        if store == "kubo":
            from fedledger.localnet.kubo import ensure_ipfs_binary

            ipfs_bin = ensure_ipfs_binary(bin_dir)

        if (home / NETSPEC_FILE).exists():
            spec = _reuse(load_spec(home), validators, app, chain_id, base_port, block_time_ms, store)
            check_ports_free(required_ports(spec))
            log(f"continuing the existing chain {spec.chain_id} in {home}")
        elif ceremony:
            from fedledger.localnet.ceremony_net import generate_by_ceremony

            spec = generate_by_ceremony(home, validators, chain_id or DEFAULT_CHAIN_ID, base_port, block_time_ms,
                                        cometbft_bin, store=store, app=app, genesis_time=genesis_time)
            log(f"generated {validators} organizations' hosts by the genesis ceremony in {home}")
        else:
            spec = generate(
                home, validators, chain_id or DEFAULT_CHAIN_ID, base_port, block_time_ms, app,
                store=store, genesis_time=genesis_time, app_state=app_state, cometbft_bin=cometbft_bin,
            )
            log(f"generated {validators} validators for chain {spec.chain_id} in {home}")

        write_control(home, {n.index: "up" for n in spec.nodes})
        cmd = [
            sys.executable, "-m", "fedledger.localnet.supervisor", "--home", str(home),
            "--cometbft", str(cometbft_bin), "--lock-fd", str(lock_fd),
        ]
        if ipfs_bin is not None:
            cmd += ["--ipfs", str(ipfs_bin)]
        with open(home / SUPERVISOR_LOG, "ab") as out:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd=str(home), start_new_session=True, pass_fds=(lock_fd,),
            )
        _SPAWNED[proc.pid] = proc
    finally:
        # The supervisor holds the lock through its inherited copy of the descriptor.
        os.close(lock_fd)

    deadline = time.monotonic() + _SUPERVISOR_START_TIMEOUT_S
    while True:
        run = read_run_state(home)
        if run is not None and run.get("supervisor_pid") == proc.pid:
            break
        if proc.poll() is not None:
            raise LocalnetError(
                f"the localnet supervisor exited with status {proc.returncode}; "
                f"{home / SUPERVISOR_LOG}:\n{_log_tail(home / SUPERVISOR_LOG)}"
            )
        if time.monotonic() > deadline:
            raise LocalnetError(
                f"the localnet supervisor (pid {proc.pid}) did not start; see {home / SUPERVISOR_LOG}"
            )
        time.sleep(0.1)
    log(f"localnet supervisor pid {proc.pid}; nodes' RPC: " + ", ".join(n.rpc_url for n in spec.nodes))

    if wait:
        deadline = time.monotonic() + timeout
        while True:
            # Short slices, so a supervisor that gives up (e.g. Kubo failed) is reported at once.
            try:
                wait_for_height(home, 2, min(2.0, max(0.1, deadline - time.monotonic())))
                break
            except LocalnetError as exc:
                if proc.poll() is not None:
                    raise LocalnetError(
                        f"the localnet supervisor exited with status {proc.returncode}; "
                        f"{home / SUPERVISOR_LOG}:\n{_log_tail(home / SUPERVISOR_LOG)}"
                    ) from exc
                if time.monotonic() >= deadline:
                    raise LocalnetError(
                        f"not every node reached height 2 within {timeout:.0f}s (last check: {exc}). "
                        f"The net is still running: inspect {home}/node*/cometbft.log and app.log, "
                        f"then `fedledger localnet down --home {home}`"
                    ) from exc
    if anchor_chain:
        from fedledger.localnet.geth import GETH_PORT_OFFSET, start_dev_chain

        try:
            start_dev_chain(home, spec.base_port + GETH_PORT_OFFSET, bin_dir, log)
        except BaseException:
            down(home)
            raise
    return spec


def _lock_owner_pid_hint(home: Path) -> int | None:
    run = read_run_state(home)
    if run and isinstance(run.get("supervisor_pid"), int):
        return int(run["supervisor_pid"])
    try:
        text = (home / LOCK_FILE).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def down(home: Path, timeout: float = 20) -> None:
    """Stop the network in ``home``: SIGTERM the supervisor, wait, and make sure no child survives.

    Raises NotRunningError when nothing runs there.
    """
    home = home.expanduser().resolve()
    from fedledger.localnet.geth import stop_dev_chain

    geth_stopped = stop_dev_chain(home)  # the dev anchor chain, when `up` started one
    pid = _lock_owner(home)
    run = read_run_state(home)
    children = _recorded_children(run)
    if pid is None:
        leftovers = _kill_leftovers(children)
        (home / RUN_FILE).unlink(missing_ok=True)
        if leftovers or geth_stopped:
            return
        raise NotRunningError(f"no localnet is running in {home}")
    if pid > 0:
        signal_pid(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout

    def supervisor_gone() -> bool:
        # The lock is released a moment before the process exits: wait for both.
        return _lock_owner(home) is None and (pid <= 0 or not _pid_alive(pid))

    while time.monotonic() < deadline and not supervisor_gone():
        time.sleep(0.05)
    if pid > 0 and _pid_alive(pid):
        # The supervisor did not finish within the timeout: take over its job.
        signal_pid(pid, signal.SIGKILL)
        wait_dead([pid], 5.0, _pid_alive)
    # Re-read: the supervisor may have restarted a pair after our first read.
    children = sorted(set(children) | set(_recorded_children(read_run_state(home))))
    _kill_leftovers(children, timeout=5.0)
    survivors = [p for p, needle in children if pid_matches(p, needle)]
    if pid > 0 and _pid_alive(pid):
        survivors.append(pid)
    (home / RUN_FILE).unlink(missing_ok=True)
    if survivors:
        raise LocalnetError(f"processes {survivors} of the localnet in {home} survived SIGKILL")


# ----------------------------------------------------------------------------------------------
# Per-node control
# ----------------------------------------------------------------------------------------------


def _set_desired(home: Path, i: int, state: str, timeout: float) -> None:
    home = home.expanduser().resolve()
    spec, _ = _require_running(home)
    spec.node(i)
    desired = read_control(home, spec.validators)
    desired[i] = "up" if state == "up" else "down"
    write_control(home, desired)
    deadline = time.monotonic() + timeout
    while True:
        run = read_run_state(home)
        node = next((n for n in (run or {}).get("nodes", []) if n.get("index") == i), None)
        if node is not None and node.get("desired") == state:
            if state == "down" and node.get("phase") == "down" and not node.get("cometbft_pid") \
                    and not node.get("app_pid"):
                return
            if state == "up" and node.get("phase") == "up" and node.get("cometbft_pid"):
                return
        if _lock_owner(home) is None:
            raise NotRunningError(f"the localnet in {home} stopped while waiting for node{i} to go {state}")
        if time.monotonic() > deadline:
            raise LocalnetError(f"node{i} did not go {state} within {timeout:.0f}s (state: {node})")
        time.sleep(0.1)


def stop_node(home: Path, i: int, timeout: float = 30) -> None:
    """Stop node ``i`` (cometbft, then its app) and keep it down until start_node."""
    _set_desired(home, i, "down", timeout)


def start_node(home: Path, i: int, timeout: float = 60) -> None:
    """Start node ``i`` again (app first, then cometbft) and wait until its RPC answers."""
    deadline = time.monotonic() + timeout
    _set_desired(home, i, "up", timeout)
    url = rpc_url(home, i)
    while True:
        try:
            rpc_get(url, "status", timeout=1.0)
            return
        except LocalnetError as exc:
            if time.monotonic() > deadline:
                raise LocalnetError(f"node{i} was started but its RPC does not answer: {exc}") from exc
        time.sleep(0.2)


def kill_app(home: Path, i: int) -> int:
    """SIGKILL node ``i``'s app process (crash test); the supervisor restarts the pair. Returns the pid."""
    home = home.expanduser().resolve()
    spec, run = _require_running(home)
    spec.node(i)
    if spec.app == "kvstore":
        raise LocalnetError("this net runs cometbft's builtin kvstore app: there is no app process to kill")
    node = next((n for n in run.get("nodes", []) if n.get("index") == i), None)
    pid = node.get("app_pid") if node else None
    if not pid or not pid_matches(int(pid), "fedledger.abci_app"):
        raise NotRunningError(f"node{i} has no running app process (state: {node})")
    os.kill(int(pid), signal.SIGKILL)
    return int(pid)
