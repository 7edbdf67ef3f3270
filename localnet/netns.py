"""Hosts as Linux network namespaces on one bridge: the tests' and `bench faults`' stand-in for machines.

`NetnsLab` creates one namespace per host, each with its own address on a veth pair plugged into a
bridge in the root namespace, and removes all of it (its processes, namespaces, links, bridge) on
exit, whatever happened inside the ``with`` block. Faults are link changes: `link_down` cuts a
host off the bridge (a partition), `netem` delays its packets (a WAN). Every command is checked: a
failure is a NetnsError carrying the command and what it printed. Needs root and iproute2.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from fedledger.localnet.errors import NetnsError
from fedledger.localnet.procs import pid_alive

__all__ = ["NetHost", "NetnsLab", "Runner", "netem_unavailable_reason", "netns_unavailable_reason", "run_checked"]

Runner = Callable[[Sequence[str]], str]
_CMD_TIMEOUT_S = 30.0
_PREFIX = 24


def run_checked(argv: Sequence[str]) -> str:
    """Run ``argv`` and return its stdout; NetnsError with its stderr when it fails or cannot start."""
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=_CMD_TIMEOUT_S, check=False,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetnsError(f"cannot run {' '.join(argv)}: {exc}") from exc
    if proc.returncode != 0:
        raise NetnsError(f"{' '.join(argv)} failed with status {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return proc.stdout


def netns_unavailable_reason(runner: Runner = run_checked) -> str | None:
    """Why this machine cannot make network namespaces (None when it can): not root, no iproute2, refused."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add); this process runs as uid " + str(os.geteuid())
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    probe = f"fl-probe-{os.getpid()}"
    try:
        runner(["ip", "netns", "add", probe])
    except NetnsError as exc:
        return f"cannot create a network namespace: {exc}"
    try:
        runner(["ip", "netns", "del", probe])
    except NetnsError as exc:
        return f"cannot delete a network namespace: {exc}"
    return None


def netem_unavailable_reason(runner: Runner = run_checked) -> str | None:
    """Why `tc netem` cannot delay packets here (None when it can): no tc, or the kernel lacks sch_netem."""
    if shutil.which("tc") is None:
        return "iproute2's `tc` is not installed"
    probe = f"fl-netem-{os.getpid()}"
    try:
        runner(["ip", "netns", "add", probe])
    except NetnsError as exc:
        return f"cannot create a network namespace: {exc}"
    try:
        runner(["ip", "netns", "exec", probe, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"])
    except NetnsError as exc:
        return f"this kernel has no netem qdisc (sch_netem): {exc}"
    finally:
        try:
            runner(["ip", "netns", "del", probe])
        except NetnsError:
            pass
    return None


@dataclass(frozen=True)
class NetHost:
    """One namespaced host: its namespace, its address on the bridge, and its veth's root-side end."""

    index: int
    netns: str
    ip: str
    veth: str  # root-namespace end; the host's own end is `eth0` inside its namespace

    def exec_argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside this host's namespace."""
        return ["ip", "netns", "exec", self.netns, *argv]


class NetnsLab:
    """``hosts`` namespaces on one bridge (10.<a>.<b>.0/24, bridge .1, host i .i+2), torn down on exit."""

    def __init__(self, hosts: int, *, tag: str | None = None, runner: Runner = run_checked) -> None:
        if not 1 <= hosts <= 200:
            raise NetnsError(f"a lab has 1..200 hosts, not {hosts}")
        self.tag = tag if tag is not None else f"{os.getpid() % 0xFFFF:04x}"
        if len(self.tag) > 8 or not self.tag.isalnum():
            raise NetnsError(f"lab tag {self.tag!r} must be 1-8 letters or digits (it goes into link names)")
        self._run = runner
        seed = int(self.tag, 16) if all(c in "0123456789abcdef" for c in self.tag) else sum(map(ord, self.tag))
        self.subnet = f"10.{200 + seed % 50}.{seed % 250 + 1}"
        self.bridge = f"flbr{self.tag}"
        self.hosts = tuple(NetHost(i, f"fl-{self.tag}-{i}", f"{self.subnet}.{i + 2}", f"flv{self.tag}{i}")
                           for i in range(hosts))
        self._procs: list[subprocess.Popen[Any]] = []
        self._made: list[tuple[str, str]] = []  # ("netns"|"link", name), in creation order
        self.delayed: set[int] = set()

    # -- life cycle -----------------------------------------------------------------------------

    def create(self) -> NetnsLab:
        """Make the bridge, the namespaces and their links; on any failure remove what was made and raise."""
        try:
            self._run(["ip", "link", "add", self.bridge, "type", "bridge"])
            self._made.append(("link", self.bridge))
            self._run(["ip", "addr", "add", f"{self.subnet}.1/{_PREFIX}", "dev", self.bridge])
            self._run(["ip", "link", "set", self.bridge, "up"])
            for h in self.hosts:
                self._run(["ip", "netns", "add", h.netns])
                self._made.append(("netns", h.netns))
                self._run(["ip", "link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", h.netns])
                self._made.append(("link", h.veth))
                self._run(["ip", "link", "set", h.veth, "master", self.bridge, "up"])
                self._run(["ip", "-n", h.netns, "addr", "add", f"{h.ip}/{_PREFIX}", "dev", "eth0"])
                self._run(["ip", "-n", h.netns, "link", "set", "eth0", "up"])
                self._run(["ip", "-n", h.netns, "link", "set", "lo", "up"])
        except BaseException:
            self.destroy()
            raise
        return self

    def __enter__(self) -> NetnsLab:
        return self.create()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.destroy()

    def spawn(self, index: int, argv: Sequence[str], **popen: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside host ``index``'s namespace; destroy() stops it (by its pid) if still alive."""
        proc = subprocess.Popen(self.hosts[index].exec_argv(argv), **popen)
        self._procs.append(proc)
        return proc

    def _stop_pids(self, pids: Sequence[int]) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            live = []
            for pid in pids:
                try:
                    os.kill(pid, sig)
                    live.append(pid)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 10.0
            while live and time.monotonic() < deadline:
                live = [p for p in live if _alive(p)]
                time.sleep(0.1)
            if not live:
                return

    def destroy(self) -> list[str]:
        """Remove everything this lab made; return the problems met (teardown never stops half way)."""
        problems: list[str] = []
        for proc in self._procs:
            if proc.poll() is None:
                self._stop_pids([proc.pid])
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                problems.append(f"pid {proc.pid} survived SIGKILL")
        self._procs.clear()
        # Detached children (the supervisor and its pairs) live on in the namespace: they are ours too.
        for kind, name in self._made:
            if kind != "netns":
                continue
            try:
                pids = [int(p) for p in self._run(["ip", "netns", "pids", name]).split()]
            except (NetnsError, ValueError) as exc:
                problems.append(str(exc))
                continue
            self._stop_pids(pids)
        for kind, name in reversed(self._made):
            argv = ["ip", "netns", "del", name] if kind == "netns" else ["ip", "link", "del", name]
            try:
                self._run(argv)
            except NetnsError as exc:
                # Deleting a namespace takes its veth end along, and the root end with it.
                if "Cannot find device" not in str(exc):
                    problems.append(str(exc))
        self._made.clear()
        return problems

    # -- faults ---------------------------------------------------------------------------------

    def link_down(self, index: int) -> None:
        """Cut host ``index`` off the bridge (its packets go nowhere until link_up)."""
        self._run(["ip", "link", "set", self.hosts[index].veth, "down"])

    def link_up(self, index: int) -> None:
        """Plug host ``index`` back into the bridge."""
        self._run(["ip", "link", "set", self.hosts[index].veth, "up"])

    def netem(self, index: int, delay_ms: int, jitter_ms: int = 0) -> None:
        """Delay every packet host ``index`` sends by ``delay_ms`` ± ``jitter_ms`` (tc netem on its eth0)."""
        if delay_ms < 0 or jitter_ms < 0:
            raise NetnsError("netem delay and jitter must be >= 0 ms")
        verb = "change" if index in self.delayed else "add"
        self._run(self.hosts[index].exec_argv(["tc", "qdisc", verb, "dev", "eth0", "root", "netem", "delay",
                                               f"{delay_ms}ms", f"{jitter_ms}ms"]))
        self.delayed.add(index)

    def clear_netem(self, index: int) -> None:
        """Remove host ``index``'s delay."""
        if index in self.delayed:
            self._run(self.hosts[index].exec_argv(["tc", "qdisc", "del", "dev", "eth0", "root"]))
            self.delayed.discard(index)


def _alive(pid: int) -> bool:
    # Reap it first if it is our own exited child (a zombie lingers until reaped); then the shared check.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return False
    except ChildProcessError:
        pass
    return pid_alive(pid)
