"""Locating or building the pinned Kubo (IPFS) binary and running an isolated, offline-friendly daemon."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from fedledger.localnet.binaries import find_pinned, run_version
from fedledger.localnet.errors import AlreadyRunningError, BinaryError, LocalnetError
from fedledger.localnet.gobuild import build_pinned, require_go
from fedledger.localnet.pidfile import PidFileProcess
from fedledger.localnet.ports import check_ports_free

__all__ = [
    "KUBO_MODULE",
    "KUBO_PACKAGE",
    "KUBO_VERSION",
    "KuboDaemon",
    "check_ipfs_binary",
    "ensure_ipfs_binary",
    "ipfs_version",
]

# Pinned: the backend and launcher are tested against exactly this release.
KUBO_VERSION = "0.43.0"
KUBO_MODULE = "github.com/ipfs/kubo"
KUBO_PACKAGE = f"{KUBO_MODULE}/cmd/ipfs"

HOST = "127.0.0.1"
_VERSION_TIMEOUT_S = 30.0
_INIT_TIMEOUT_S = 120.0


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- binary ------------------------------------------------------------------------------------


def ipfs_version(path: Path) -> str:
    """Run ``path version --number`` and return what it prints; BinaryError if it cannot run."""
    return run_version(path, ["version", "--number"], _VERSION_TIMEOUT_S)


def check_ipfs_binary(path: Path) -> None:
    """Raise BinaryError unless ``path`` is a runnable Kubo reporting exactly KUBO_VERSION."""
    if not path.is_file():
        raise BinaryError(f"ipfs binary {path} does not exist (expected Kubo {KUBO_VERSION})")
    found = ipfs_version(path)
    if found != KUBO_VERSION:
        raise BinaryError(
            f"ipfs at {path} is Kubo {found!r}, expected {KUBO_VERSION!r}; install it with "
            f"`go install {KUBO_PACKAGE}@v{KUBO_VERSION}` or point IPFS_BIN at a Kubo v{KUBO_VERSION} binary"
        )


def ensure_ipfs_binary(bin_dir: Path, log: Callable[[str], None] = _stderr) -> Path:
    """Return a Kubo binary of KUBO_VERSION, building it into ``bin_dir`` with Go if none exists.

    Looks at $IPFS_BIN, then ``bin_dir/ipfs``, then PATH; the first one reporting exactly the
    pinned version wins. Otherwise runs ``GOBIN=<bin_dir> go install github.com/ipfs/kubo/cmd/ipfs@v...``.
    """
    found = find_pinned("IPFS_BIN", bin_dir, "ipfs", check_ipfs_binary, log)
    if found is not None:
        return found

    go = require_go("Kubo", KUBO_VERSION, "IPFS_BIN")
    bin_dir = bin_dir.expanduser().resolve()
    try:
        bin_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BinaryError(f"cannot create bin dir {bin_dir}: {exc}") from exc
    started = time.monotonic()
    build_pinned(go, bin_dir, KUBO_MODULE, "cmd/ipfs", KUBO_VERSION, "Kubo", log)
    built = bin_dir / "ipfs"
    check_ipfs_binary(built)
    log(f"built {built} in {time.monotonic() - started:.0f}s")
    return built


# -- daemon ------------------------------------------------------------------------------------


class KuboDaemon(PidFileProcess):
    """One Kubo daemon with its own IPFS_PATH, bound to 127.0.0.1 and cut off from the public network.

    ``init()`` creates the repo and writes an isolated config; ``start()`` spawns ``ipfs daemon``
    (``--offline`` by default, so no swarm, routing or network lookups at all), logging to
    ``<ipfs_path.parent>/<ipfs_path.name>.log``, and records the pid next to it so another process
    (e.g. ``localnet down``) can ``stop()`` it.
    """

    def __init__(
        self,
        ipfs_path: Path,
        api_port: int,
        gateway_port: int,
        binary: Path,
        *,
        swarm_port: int | None = None,
        offline: bool = True,
    ) -> None:
        self.ipfs_path = Path(ipfs_path).expanduser().absolute()
        super().__init__(self.ipfs_path, binary)
        self.api_port = api_port
        self.gateway_port = gateway_port
        self.swarm_port = swarm_port
        self.offline = offline

    # -- paths and urls ------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """Return the RPC API base URL, e.g. ``http://127.0.0.1:5001``."""
        return f"http://{HOST}:{self.api_port}"

    @property
    def gateway_url(self) -> str:
        """Return the HTTP gateway base URL."""
        return f"http://{HOST}:{self.gateway_port}"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["IPFS_PATH"] = str(self.ipfs_path)
        # Kubo >= 0.37 ships an opt-out telemetry plugin that phones home; a test/local daemon must not.
        env["IPFS_TELEMETRY"] = "off"
        env.pop("IPFS_LOGGING", None)
        return env

    # -- init ----------------------------------------------------------------------------------

    def init(self) -> None:
        """Create the repo (if absent) with the ``test`` profile, then write the isolated config."""
        self._check_ports_valid()
        config_path = self.ipfs_path / "config"
        if not config_path.is_file():
            self.ipfs_path.mkdir(parents=True, exist_ok=True)
            try:
                proc = subprocess.run(
                    [str(self.binary), "init", "--empty-repo", "--profile", "test,unixfs-v1-2025"],
                    env=self._env(),
                    capture_output=True,
                    text=True,
                    timeout=_INIT_TIMEOUT_S,
                    check=False,
                    stdin=subprocess.DEVNULL,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise LocalnetError(f"cannot run `{self.binary} init` for {self.ipfs_path}: {exc}") from exc
            if proc.returncode != 0:
                raise LocalnetError(
                    f"`ipfs init` in {self.ipfs_path} failed (status {proc.returncode}): "
                    f"{(proc.stderr or proc.stdout).strip()[-1000:]}"
                )
        self._write_config(config_path)

    def _check_ports_valid(self) -> None:
        ports = [self.api_port, self.gateway_port] + ([self.swarm_port] if self.swarm_port else [])
        for port in ports:
            if not isinstance(port, int) or not 0 < port < 65536:
                raise LocalnetError(f"Kubo port {port!r} is outside 1..65535")
        if len(set(ports)) != len(ports):
            raise LocalnetError(f"Kubo API, gateway and swarm ports must differ, got {ports}")

    def _write_config(self, config_path: Path) -> None:
        try:
            cfg: dict[str, Any] = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise LocalnetError(f"cannot read Kubo config {config_path}: {exc}") from exc

        def section(name: str) -> dict[str, Any]:
            value = cfg.get(name)
            if not isinstance(value, dict):
                value = {}
                cfg[name] = value
            return value

        swarm = f"/ip4/{HOST}/tcp/{self.swarm_port or 0}"
        addresses = section("Addresses")
        addresses["API"] = f"/ip4/{HOST}/tcp/{self.api_port}"
        addresses["Gateway"] = f"/ip4/{HOST}/tcp/{self.gateway_port}"
        addresses["Swarm"] = [swarm]
        addresses["Announce"] = []
        addresses["AppendAnnounce"] = []
        addresses["NoAnnounce"] = []
        # No bootstrap peers, no mDNS, no routing: nothing in the daemon looks for the public network.
        cfg["Bootstrap"] = []
        section("Discovery")["MDNS"] = {"Enabled": False}
        routing = section("Routing")
        routing["Type"] = "none"
        routing["DelegatedRouters"] = []
        # AutoConf would fetch bootstrap/DNS/router lists from the internet at startup.
        section("AutoConf")["Enabled"] = False
        section("AutoTLS")["Enabled"] = False
        section("DNS")["Resolvers"] = {}
        section("Ipns")["DelegatedPublishers"] = []
        section("Provide")["Enabled"] = False
        section("HTTPRetrieval")["Enabled"] = False
        section("Swarm")["DisableNatPortMap"] = True
        plugins = section("Plugins")
        if not isinstance(plugins.get("Plugins"), dict):
            plugins["Plugins"] = {}
        plugins["Plugins"]["telemetry"] = {"Disabled": False, "Config": {"Mode": "off"}}
        tmp = config_path.with_name(config_path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            os.replace(tmp, config_path)
        except OSError as exc:
            raise LocalnetError(f"cannot write Kubo config {config_path}: {exc}") from exc

    # -- lifecycle -----------------------------------------------------------------------------

    def _owns(self, cmd: list[str]) -> bool:
        return len(cmd) >= 2 and cmd[1] == "daemon"  # an `ipfs daemon`

    def start(self, timeout: float = 60.0) -> int:
        """Spawn ``ipfs daemon``, wait until its API answers, and return its pid.

        Raises PortInUseError naming the taken port, AlreadyRunningError when this repo's daemon
        already runs, and LocalnetError (with the log's tail) when the daemon exits or stays silent.
        """
        running = self.pid()
        if running is not None:
            raise AlreadyRunningError(str(self.ipfs_path), running)
        if not (self.ipfs_path / "config").is_file():
            raise LocalnetError(f"Kubo repo {self.ipfs_path} is not initialised; call init() first")
        self._check_ports_valid()
        owners = [(self.api_port, "Kubo API"), (self.gateway_port, "Kubo gateway")]
        if self.swarm_port and not self.offline:
            owners.append((self.swarm_port, "Kubo swarm"))
        check_ports_free(owners, HOST)

        args = [str(self.binary), "daemon", "--migrate=false"]
        if self.offline:
            args.append("--offline")
        proc = self._launch(args, self._env())
        return self._await_ready(proc, self._api_answers, timeout, f"Kubo daemon for {self.ipfs_path}",
                                 f"Kubo API at {self.api_url}")

    def _api_answers(self) -> bool:
        try:
            resp = httpx.post(f"{self.api_url}/api/v0/version", timeout=1.0)
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

