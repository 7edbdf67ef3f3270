"""Shared fixtures of the CLI-level integration tests: run `fedledger` as a user would, start and stop localnets."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fedledger.localnet import manager
from fedledger.localnet.ports import find_free_base_port
from fedledger.localnet.procs import pid_alive

REPO_ROOT = Path(__file__).resolve().parents[2]
# The console script installed next to the interpreter running the tests: exactly what a user runs.
FEDLEDGER = Path(sys.executable).parent / "fedledger"
# 4 validators use base .. base+32 (base + 10*i + {0,1,2}); Kubo uses base+3 .. base+5.
PORT_BLOCK = 40


def pinned_binary(env_var: str, name: str) -> Path | None:
    """Where `localnet up` would find an existing binary: $env_var, the checkout's bin/ (or $FEDLEDGER_BIN_DIR), PATH.

    Only existence is checked here; `localnet up` itself checks the version. Returning None lets a
    test skip instead of having `localnet up` start a multi-minute `go install`.
    """
    bin_dir = Path(os.environ.get("FEDLEDGER_BIN_DIR") or REPO_ROOT / "bin")
    for cand in (os.environ.get(env_var), bin_dir / name, shutil.which(name)):
        if cand and Path(cand).is_file():
            return Path(cand).resolve()
    return None


def down_if_running(home: Path) -> None:
    """Teardown: stop the net in `home` if it runs (or a supervisor left its run.json); a stopped net is fine."""
    from fedledger.localnet.errors import NotRunningError

    if manager.is_running(home) is not None or (home / "run.json").exists():
        try:
            manager.down(home)
        except NotRunningError:
            pass


def cli_env(**extra: str) -> dict[str, str]:
    """The environment every CLI subprocess gets: ours, pinned binaries made explicit, wide non-tty output."""
    env = dict(os.environ)
    for var, name in (("COMETBFT_BIN", "cometbft"), ("IPFS_BIN", "ipfs")):
        found = pinned_binary(var, name)
        if found is not None:
            env[var] = str(found)
    # Rich wraps at 80 columns when not on a terminal; a wide console keeps each message on one line.
    env["COLUMNS"] = "200"
    env.pop("FEDLEDGER_NODE", None)
    env.pop("FEDLEDGER_STORE", None)
    env.pop("FEDLEDGER_LOCALNET", None)
    env.update(extra)
    return env


@dataclass(frozen=True)
class CliResult:
    """One finished `fedledger` invocation."""

    argv: tuple[str, ...]
    rc: int
    stdout: str
    stderr: str
    elapsed: float

    def describe(self) -> str:
        """Everything needed to understand a failed assertion about this run."""
        return (f"$ {' '.join(self.argv)}\nexit {self.rc} after {self.elapsed:.1f}s\n"
                f"--- stdout\n{self.stdout[-4000:]}\n--- stderr\n{self.stderr[-4000:]}")


def run_fedledger(argv: list[str], *, env: dict[str, str] | None = None, timeout: float = 60) -> CliResult:
    """Run the console script with ``argv`` and capture its output; a hang fails the test with what it printed."""
    full = [str(FEDLEDGER), *argv]
    started = time.monotonic()
    proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env if env is not None else cli_env(), start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"`{' '.join(full)}` did not finish within {timeout:.0f}s\n--- stdout\n{out}\n--- stderr\n{err}")
    return CliResult(tuple(full), proc.returncode, out, err, time.monotonic() - started)


@dataclass
class Spawned:
    """A `fedledger` process running in the background, its output going to files."""

    name: str
    argv: tuple[str, ...]
    proc: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    started: float

    def finish(self, timeout: float) -> CliResult:
        """Wait for the process (killing it and failing the test after ``timeout`` seconds) and collect its output."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"{self.name} did not finish within {timeout:.0f}s:\n{self.result().describe()}")
        return self.result()

    def result(self) -> CliResult:
        """What the process printed so far, with its exit status (-999 while it runs)."""
        rc = self.proc.poll()
        return CliResult(self.argv, -999 if rc is None else rc, self.stdout_path.read_text(errors="replace"),
                         self.stderr_path.read_text(errors="replace"), time.monotonic() - self.started)


class Cli:
    """The `fedledger` CLI bound to one client home and one localnet home (`--home H --localnet N`)."""

    def __init__(self, home: Path, net: Path, logs: Path) -> None:
        self.home = home
        self.net = net
        self.logs = logs
        self.logs.mkdir(parents=True, exist_ok=True)
        self._spawned: list[Spawned] = []

    def argv(self, *args: str) -> list[str]:
        """Global options first, then the command."""
        return ["--home", str(self.home), "--localnet", str(self.net), *args]

    def run(self, *args: str, timeout: float = 60, env: dict[str, str] | None = None) -> CliResult:
        """Run one command to completion, whatever its exit status."""
        return run_fedledger(self.argv(*args), env=env, timeout=timeout)

    def ok(self, *args: str, timeout: float = 60) -> CliResult:
        """Run one command that must succeed."""
        res = self.run(*args, timeout=timeout)
        assert res.rc == 0, res.describe()
        return res

    def json(self, *args: str, timeout: float = 60) -> Any:
        """Run a command with --json that must succeed; return the parsed answer."""
        res = self.ok(*args, "--json", timeout=timeout)
        try:
            return json.loads(res.stdout)
        except ValueError as exc:
            pytest.fail(f"not JSON ({exc}):\n{res.describe()}")

    def spawn(self, name: str, *args: str) -> Spawned:
        """Start a command in the background (own session, so the test can signal it alone)."""
        full = (str(FEDLEDGER), *self.argv(*args))
        out_path, err_path = self.logs / f"{name}.out", self.logs / f"{name}.err"
        with out_path.open("wb") as out, err_path.open("wb") as err:
            proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=cli_env(),
                                    start_new_session=True)
        sp = Spawned(name, full, proc, out_path, err_path, time.monotonic())
        self._spawned.append(sp)
        return sp

    def close(self) -> None:
        """Kill (by pid) every background command this object started that is still running."""
        for sp in self._spawned:
            if sp.proc.poll() is None:
                sp.proc.kill()
                sp.proc.wait()


def _pid_is(pid: int, needle: str) -> bool:
    """Alive and, where /proc shows it, still the same program (a recycled pid is not a survivor)."""
    if not pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return True
    return needle in cmdline


@dataclass
class Localnet:
    """A net started with `fedledger localnet up`, and every process it was ever seen to run."""

    home: Path
    store: str
    base_port: int = 0
    up_result: CliResult | None = None
    seen: set[tuple[int, str]] = field(default_factory=set)

    def run_state(self) -> dict[str, Any]:
        """The supervisor's run.json (live pids)."""
        data: dict[str, Any] = json.loads((self.home / "run.json").read_text())
        return data

    def record_pids(self) -> None:
        """Remember the pids run.json names now (the supervisor may restart children later)."""
        try:
            run = self.run_state()
        except (OSError, ValueError):
            return
        if isinstance(run.get("supervisor_pid"), int):
            self.seen.add((run["supervisor_pid"], "fedledger.localnet.supervisor"))
        if run.get("kubo_pid"):
            self.seen.add((int(run["kubo_pid"]), "ipfs"))
        for node in run.get("nodes", []):
            if node.get("app_pid"):
                self.seen.add((int(node["app_pid"]), "fedledger.abci_app"))
            if node.get("cometbft_pid"):
                self.seen.add((int(node["cometbft_pid"]), "cometbft"))


def _start(net: Localnet, attempts: int = 3) -> None:
    """`fedledger localnet up` on a free block of ports (retrying if another process grabs one first)."""
    if pinned_binary("COMETBFT_BIN", "cometbft") is None:
        pytest.skip("no cometbft binary ($COMETBFT_BIN, bin/ or PATH): run `make binaries`")
    if net.store == "kubo" and pinned_binary("IPFS_BIN", "ipfs") is None:
        pytest.skip("no ipfs (Kubo) binary ($IPFS_BIN, bin/ or PATH): run `make binaries`")
    for attempt in range(attempts):
        net.base_port = find_free_base_port(PORT_BLOCK)
        argv = ["localnet", "up", "--home", str(net.home), "--base-port", str(net.base_port)]
        if net.store != "embedded":
            argv += ["--store", net.store]
        res = run_fedledger(argv, timeout=120)
        net.up_result = res
        net.record_pids()
        if res.rc == 0:
            return
        if "already in use" not in res.stderr or attempt == attempts - 1:
            break
    assert net.up_result is not None
    pytest.fail(f"localnet up failed:\n{net.up_result.describe()}")


def stop_localnet(net: Localnet) -> None:
    """`fedledger localnet down`, then check that no process the net ever ran survives."""
    net.record_pids()
    res = run_fedledger(["localnet", "down", "--home", str(net.home)], timeout=60)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_pid_is(p, n) for p, n in net.seen):
        time.sleep(0.1)
    survivors = sorted((p, n) for p, n in net.seen if _pid_is(p, n))
    for pid, _ in survivors:  # leave nothing behind even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert res.rc == 0, res.describe()
    assert not survivors, f"processes of the net survived `localnet down`: {survivors}"
    assert manager.is_running(net.home) is None, "the supervisor lock is still held after `localnet down`"
    alive = [n.index for n in manager.status(net.home) if n.alive]
    assert not alive, f"nodes {alive} still answer RPC after `localnet down`"


@contextlib.contextmanager
def running_localnet(home: Path, store: str = "embedded") -> Iterator[Localnet]:
    """A 4-validator net in ``home`` for the body; always `localnet down` after, checking nothing survives."""
    net = Localnet(home=home, store=store)
    try:
        _start(net)
        yield net
    finally:
        # Down also after a failed `up`: it may have left a supervisor running.
        if net.seen or manager.is_running(home) is not None or (home / "run.json").exists():
            stop_localnet(net)


class Kit:
    """The helpers of this file, handed to tests as the `kit` fixture (test modules do not import conftest)."""

    fedledger = FEDLEDGER
    Cli = Cli
    run = staticmethod(run_fedledger)
    env = staticmethod(cli_env)
    running_localnet = staticmethod(running_localnet)
    pid_alive = staticmethod(pid_alive)


@pytest.fixture(scope="session")
def kit() -> type[Kit]:
    """Helpers to run the `fedledger` CLI and localnets from integration tests."""
    return Kit
