"""The pinned geth and the localnet's development anchor chain (`geth --dev` on 127.0.0.1).

`ensure_geth` finds or builds geth v1.17.8 (`go install github.com/ethereum/go-ethereum/cmd/geth@v1.17.8`,
falling back, like Kubo's installer, to building from `go mod download`'s copy when a proxy
refuses the version list). `GethDev` runs one `geth --dev` (a single-node proof-of-authority
chain, id 1337, a block every `period` seconds, one prefunded unlocked developer account) with
only HTTP JSON-RPC open on loopback, in its own session, with a pid file so another process can
stop it. `start_dev_chain` is what `localnet up` calls: it starts geth in `<home>/geth/`, creates
an eth-account key for anchoring (`<home>/anchor.key`), funds it from the developer account, and
writes `<home>/anchor.json`, which `fedledger anchor …` reads when no anchor RPC is configured.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
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
from fedledger.localnet.procs import pid_cmdline

__all__ = [
    "DEV_CHAIN_FILE",
    "DEV_CHAIN_ID",
    "DEV_KEY_FILE",
    "GETH_DIR",
    "GETH_MODULE",
    "GETH_PACKAGE",
    "GETH_PORT_OFFSET",
    "GETH_VERSION",
    "GethDev",
    "check_geth",
    "ensure_geth",
    "geth_version",
    "start_dev_chain",
    "stop_dev_chain",
]

# Pinned: v1.17.9 and later need a module (attestantio/go-eth2-client v0.30.1) the Go proxy no longer serves.
GETH_VERSION = "1.17.8"
GETH_MODULE = "github.com/ethereum/go-ethereum"
GETH_PACKAGE = f"{GETH_MODULE}/cmd/geth"
DEV_CHAIN_ID = 1337  # geth --dev's chain id
DEV_CHAIN_FILE = "anchor.json"
DEV_KEY_FILE = "anchor.key"
GETH_DIR = "geth"
GETH_PORT_OFFSET = 6  # HTTP RPC on base + 6: nodes use base + 10i + {0,1,2}, Kubo base + 3..5
DEV_FUNDING_WEI = 1000 * 10**18
HOST = "127.0.0.1"


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- binary ------------------------------------------------------------------------------------


def geth_version(path: Path) -> str:
    """The `Version:` line of `geth version` without its `-stable` suffix; BinaryError if it cannot run."""
    out = run_version(path, ["version"], 30.0)
    m = re.search(r"^Version:\s*(\S+)", out, re.MULTILINE)
    if m is None:
        raise BinaryError(f"{path} version printed no Version line: {out[:200]!r}")
    return m.group(1).removesuffix("-stable")


def check_geth(path: Path) -> None:
    """Raise BinaryError unless `path` is a runnable geth reporting exactly GETH_VERSION."""
    if not path.is_file():
        raise BinaryError(f"geth binary {path} does not exist (expected v{GETH_VERSION})")
    found = geth_version(path)
    if found != GETH_VERSION:
        raise BinaryError(f"geth at {path} is {found!r}, expected {GETH_VERSION!r}; install it with "
                          f"`go install {GETH_PACKAGE}@v{GETH_VERSION}` or point GETH_BIN at a geth v{GETH_VERSION}")


def ensure_geth(bin_dir: Path, log: Callable[[str], None] = _stderr) -> Path:
    """A geth of GETH_VERSION: $GETH_BIN, `bin_dir/geth` or PATH if one is that version, else built with Go."""
    found = find_pinned("GETH_BIN", bin_dir, "geth", check_geth, log)
    if found is not None:
        return found
    go = require_go("geth", GETH_VERSION, "GETH_BIN")
    bin_dir = bin_dir.expanduser().resolve()
    bin_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    build_pinned(go, bin_dir, GETH_MODULE, "cmd/geth", GETH_VERSION, "geth", log)
    built = bin_dir / "geth"
    check_geth(built)
    log(f"built {built} in {time.monotonic() - started:.0f}s")
    return built


# -- the dev chain -----------------------------------------------------------------------------


class GethDev(PidFileProcess):
    """One `geth --dev` with its data in `datadir`, HTTP JSON-RPC on 127.0.0.1:`http_port` and nothing else open."""

    def __init__(self, datadir: Path, http_port: int, binary: Path, *, period: int = 1,
                 miner_gasprice: int | None = None, extra_apis: tuple[str, ...] = (), no_locals: bool = False) -> None:
        self.datadir = Path(datadir).expanduser().absolute()
        super().__init__(self.datadir, binary)
        self.http_port = http_port
        self.period = period
        self.miner_gasprice = miner_gasprice  # minimum tip the dev miner includes (tests make txs stick)
        # Tests only: e.g. ("debug", "miner") to rewind the chain (debug_setHead) and change the miner's minimum tip;
        # never on the localnet's chain. no_locals: RPC-sent txs get no special treatment in the pool.
        self.extra_apis = extra_apis
        self.no_locals = no_locals

    @property
    def rpc_url(self) -> str:
        """The HTTP JSON-RPC URL."""
        return f"http://{HOST}:{self.http_port}"

    def args(self) -> list[str]:
        """The geth command line."""
        args = [str(self.binary), "--dev", "--dev.period", str(self.period), "--datadir", str(self.datadir),
                "--http", "--http.addr", HOST, "--http.port", str(self.http_port),
                "--http.api", ",".join(("eth", "net", "web3", "txpool", *self.extra_apis)),
                "--http.vhosts", "localhost,127.0.0.1", "--port", "0", "--nodiscover", "--maxpeers", "0",
                "--nat", "none", "--ipcdisable", "--authrpc.addr", HOST, "--authrpc.port", "0", "--cache", "128",
                "--verbosity", "2"]
        if self.miner_gasprice is not None:
            args += ["--miner.gasprice", str(self.miner_gasprice)]
        if self.no_locals:
            args.append("--txpool.nolocals")
        return args

    def _owns(self, cmd: list[str]) -> bool:
        return str(self.datadir) in cmd  # a geth on this data directory

    def start(self, timeout: float = 60.0) -> int:
        """Start geth and wait until its RPC answers; returns the pid. LocalnetError with the log tail if it fails."""
        running = self.pid()
        if running is not None:
            raise AlreadyRunningError(str(self.datadir), running)
        check_ports_free([(self.http_port, "geth HTTP RPC")], HOST)
        self.datadir.mkdir(parents=True, exist_ok=True)
        proc = self._launch(self.args())

        def answers() -> bool:
            with contextlib.suppress(LocalnetError):
                return self.rpc("eth_chainId") is not None
            return False

        return self._await_ready(proc, answers, timeout, "geth", f"geth RPC at {self.rpc_url}")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (geth writes its chain and pool to disk), SIGKILL after `timeout`; a no-op when not running."""
        super().stop(timeout)

    def rpc(self, method: str, *params: Any) -> Any:
        """One JSON-RPC call; LocalnetError when geth does not answer or answers with an error."""
        try:
            resp = httpx.post(self.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
                              timeout=5.0)
            payload = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise LocalnetError(f"geth at {self.rpc_url} did not answer {method}: {exc}") from exc
        if "error" in payload:
            raise LocalnetError(f"geth {method} failed: {payload['error']}")
        return payload.get("result")

    def fund(self, address: str, wei: int, timeout: float = 30.0) -> str:
        """Send `wei` from the prefunded developer account to `address` and wait until it is mined; the tx hash."""
        dev = self.rpc("eth_accounts")[0]
        tx_hash = str(self.rpc("eth_sendTransaction", {"from": dev, "to": address, "value": hex(wei)}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            receipt = self.rpc("eth_getTransactionReceipt", tx_hash)
            if receipt is not None:
                if int(receipt["status"], 16) != 1:
                    raise LocalnetError(f"funding tx {tx_hash} failed")
                return tx_hash
            time.sleep(0.2)
        raise LocalnetError(f"funding tx {tx_hash} was not mined within {timeout:.0f}s; see {self.log_path}")


def _dev_key(home: Path) -> tuple[str, str]:
    """(hex private key, address) of the localnet's anchoring key, created on first use (mode 0600)."""
    from eth_account import Account

    path = home / DEV_KEY_FILE
    if path.is_file():
        key = path.read_text(encoding="ascii").strip()
    else:
        key = "0x" + bytes(Account.create().key).hex()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key + "\n")
    return key, str(Account.from_key(key).address)


def start_dev_chain(home: Path, http_port: int, bin_dir: Path, log: Callable[[str], None] = _stderr) -> GethDev:
    """Start the localnet's dev anchor chain in `home`; `<home>/anchor.json` points at it (see the module doc)."""
    home = home.expanduser().resolve()
    binary = ensure_geth(bin_dir, log)
    stop_dev_chain(home)  # a geth left behind by a supervisor that was killed outright
    geth = GethDev(home / GETH_DIR, http_port, binary)
    geth.start()
    try:
        _, address = _dev_key(home)
        balance = int(geth.rpc("eth_getBalance", address, "latest"), 16)
        if balance < DEV_FUNDING_WEI // 10:
            geth.fund(address, DEV_FUNDING_WEI)
        path = home / DEV_CHAIN_FILE
        previous: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            previous = json.loads(path.read_text(encoding="utf-8"))
        # The contract `anchor deploy` recorded stays valid: geth keeps its chain in <home>/geth.
        settings = {"rpc_url": geth.rpc_url, "chain_id": DEV_CHAIN_ID, "key_file": DEV_KEY_FILE, "confirmations": 1,
                    "stuck_after_s": 5, "poll_s": 0.2,
                    **({"contract": previous["contract"]} if isinstance(previous.get("contract"), str) else {})}
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        geth.stop()
        raise
    log(f"dev anchor chain: geth {GETH_VERSION} --dev at {geth.rpc_url} (chain id {DEV_CHAIN_ID}); key {address}")
    return geth


def stop_dev_chain(home: Path) -> bool:
    """Stop the dev anchor chain of the localnet in `home` if it runs; whether one was stopped."""
    home = home.expanduser().resolve()
    pid_path = home / f"{GETH_DIR}.pid"
    if not pid_path.is_file():
        return False
    try:
        pid = int(pid_path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        pid_path.unlink(missing_ok=True)
        return False
    cmd = pid_cmdline(pid) or []
    geth = GethDev(home / GETH_DIR, 0, Path(cmd[0]) if cmd else Path("geth"))
    running = geth.pid() is not None
    geth.stop()
    return running
