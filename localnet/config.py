"""Generation of a local CometBFT validator network: keys, one shared genesis, patched config.toml files."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast

from fedledger.localnet.errors import BinaryError, LocalnetError, NotGeneratedError
from fedledger.localnet.ports import check_ports_free

__all__ = [
    "APP_KINDS",
    "DEFAULT_CHAIN_ID",
    "DEFAULT_GENESIS_TIME",
    "EVM_RPC_OFFSET",
    "KUBO_API_OFFSET",
    "KUBO_GATEWAY_OFFSET",
    "KUBO_SWARM_OFFSET",
    "NETSPEC_FILE",
    "PORT_STRIDE",
    "STORE_KINDS",
    "AppKind",
    "NetSpec",
    "NodeSpec",
    "StoreKind",
    "StoreSpec",
    "TomlValue",
    "build_genesis",
    "format_toml_value",
    "generate",
    "load_spec",
    "node_ports",
    "render_node_config",
    "required_ports",
    "set_toml_value",
    "set_toml_values",
    "store_spec_for",
    "validate_params",
    "write_node_configs",
]

AppKind = Literal["fedledger", "kvstore"]
StoreKind = Literal["embedded", "kubo"]
APP_KINDS: tuple[AppKind, ...] = ("fedledger", "kvstore")
STORE_KINDS: tuple[StoreKind, ...] = ("embedded", "kubo")

NETSPEC_FILE = "localnet.json"
DEFAULT_CHAIN_ID = "fedledger-localnet"
# Fixed so that regenerating a home with the same keys yields a byte-identical genesis.
DEFAULT_GENESIS_TIME = "2025-01-01T00:00:00Z"
# Node i owns ports base+10*i .. base+10*i+9: p2p, rpc, abci, then spares (Kubo/EVM).
PORT_STRIDE = 10
_P2P, _RPC, _ABCI = 0, 1, 2
# One Kubo daemon serves the whole net; it lives in node 0's spare ports.
KUBO_API_OFFSET = 3
KUBO_GATEWAY_OFFSET = 4
KUBO_SWARM_OFFSET = 5
# Each node's Ethereum JSON-RPC (its embedded EVM) listens on base + 10*i + 8.
EVM_RPC_OFFSET = 8
# Prometheus endpoints of each node: CometBFT's own (instrumentation.prometheus) on base + 10*i + 7 and
# the ABCI app's (abci_app/observer.py) on base + 10*i + 9.
COMETBFT_METRICS_OFFSET = 7
APP_METRICS_OFFSET = 9
VALIDATOR_POWER = 10
_SPEC_VERSION = 1
_MAX_VALIDATORS = 64
_CHAIN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$")
_GENESIS_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")
_CMD_TIMEOUT_S = 60.0

TomlValue = str | int | bool | Sequence[str]


# ----------------------------------------------------------------------------------------------
# A minimal line-based TOML setter. cometbft's config.toml keeps every value on one line, so
# editing line by line preserves its comments and layout (which tomllib + a writer would lose).
# ----------------------------------------------------------------------------------------------

_SECTION_RE = re.compile(r"^\s*\[\s*([A-Za-z0-9_.-]+)\s*\]\s*(#.*)?$")


def format_toml_value(value: TomlValue) -> str:
    """Render a Python value as a TOML literal (string, integer, boolean or array of strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        # A JSON string literal is a valid TOML basic string (same escapes, \uXXXX included).
        return json.dumps(value, ensure_ascii=True)
    if isinstance(value, Sequence):
        items = list(value)
        if not all(isinstance(v, str) for v in items):
            raise LocalnetError(f"TOML arrays may only hold strings here, got {value!r}")
        return "[" + ", ".join(json.dumps(v, ensure_ascii=True) for v in items) + "]"
    raise LocalnetError(f"cannot write {type(value).__name__} value {value!r} to TOML")


def _section_of(line: str) -> str | None:
    m = _SECTION_RE.match(line)
    return m.group(1) if m else None


def set_toml_values(text: str, updates: Mapping[str, Mapping[str, TomlValue]]) -> str:
    """Return ``text`` with ``updates[section][key] = value`` applied; "" is the top-level table.

    Existing keys are rewritten in place (comments and order kept); missing keys are appended to
    the end of their section; missing sections are appended to the end of the document.
    """
    for section, keys in updates.items():
        for key in keys:
            if not re.fullmatch(r"[A-Za-z0-9_-]+", key):
                raise LocalnetError(f"unsupported TOML key {key!r} in section [{section}]")
        if section and not re.fullmatch(r"[A-Za-z0-9_.-]+", section):
            raise LocalnetError(f"unsupported TOML section name {section!r}")

    lines = text.splitlines()
    pending: dict[str, dict[str, TomlValue]] = {s: dict(kv) for s, kv in updates.items() if kv}
    out: list[str] = []
    current = ""

    def flush(section: str) -> None:
        # Append keys of `section` that were not found, before trailing blank lines of the section.
        missing = pending.pop(section, None)
        if not missing:
            return
        tail: list[str] = []
        while out and not out[-1].strip():
            tail.append(out.pop())
        out.extend(f"{k} = {format_toml_value(v)}" for k, v in missing.items())
        out.extend(tail)

    for line in lines:
        header = _section_of(line)
        if header is not None:
            flush(current)
            current = header
            out.append(line)
            continue
        wanted = pending.get(current)
        if wanted:
            m = re.match(r"^(\s*)([A-Za-z0-9_-]+)\s*=\s*(.*)$", line)
            if m and m.group(2) in wanted:
                rest = m.group(3).strip()
                if (rest.startswith("[") and "]" not in rest) or rest.startswith(('"""', "'''")):
                    raise LocalnetError(
                        f"cannot rewrite multi-line TOML value of [{current}] {m.group(2)}"
                    )
                key = m.group(2)
                out.append(f"{m.group(1)}{key} = {format_toml_value(wanted.pop(key))}")
                continue
        out.append(line)
    flush(current)
    # flush() has emptied the top-level table at the first header; what is left are new tables.
    for section, missing in pending.items():
        if out and out[-1].strip():
            out.append("")
        out.append(f"[{section}]")
        out.extend(f"{k} = {format_toml_value(v)}" for k, v in missing.items())
    result = "\n".join(out) + "\n"
    try:
        tomllib.loads(result)
    except tomllib.TOMLDecodeError as exc:
        raise LocalnetError(f"patched TOML does not parse: {exc}") from exc
    return result


def set_toml_value(text: str, section: str, key: str, value: TomlValue) -> str:
    """Return ``text`` with the single key ``[section] key = value`` set ("" = top-level)."""
    return set_toml_values(text, {section: {key: value}})


# ----------------------------------------------------------------------------------------------
# Spec dataclasses (serialized to <home>/localnet.json)
# ----------------------------------------------------------------------------------------------


def node_ports(base_port: int, index: int) -> tuple[int, int, int]:
    """Return ``(p2p, rpc, abci)`` ports of node ``index`` for a net starting at ``base_port``."""
    start = base_port + PORT_STRIDE * index
    return start + _P2P, start + _RPC, start + _ABCI


@dataclass(frozen=True)
class StoreSpec:
    """Where the net keeps its content-addressed blobs: the app's embedded store or one Kubo daemon."""

    kind: StoreKind = "embedded"
    ipfs_path: Path | None = None
    api_port: int | None = None
    gateway_port: int | None = None
    swarm_port: int | None = None

    @property
    def api_url(self) -> str | None:
        """HTTP RPC address of the Kubo daemon (None for the embedded store)."""
        return f"http://127.0.0.1:{self.api_port}" if self.api_port is not None else None

    def to_dict(self, home: Path) -> dict[str, Any]:
        """JSON form; paths are stored relative to the home so the home can be moved."""
        return {
            "kind": self.kind,
            "ipfs_path": _rel(self.ipfs_path, home) if self.ipfs_path is not None else None,
            "api_port": self.api_port,
            "gateway_port": self.gateway_port,
            "swarm_port": self.swarm_port,
            "api_url": self.api_url,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], home: Path) -> StoreSpec:
        """Inverse of to_dict."""
        kind = data.get("kind", "embedded")
        if kind not in STORE_KINDS:
            raise LocalnetError(f"unknown store kind {kind!r} in {home / NETSPEC_FILE}")
        ipfs = data.get("ipfs_path")
        return cls(
            kind=cast(StoreKind, kind),
            ipfs_path=(home / ipfs) if ipfs else None,
            api_port=data.get("api_port"),
            gateway_port=data.get("gateway_port"),
            swarm_port=data.get("swarm_port"),
        )


@dataclass(frozen=True)
class NodeSpec:
    """One validator node: identity, directories and ports."""

    index: int
    moniker: str
    node_id: str
    validator_address: str
    pub_key: str
    dir: Path
    p2p_port: int
    rpc_port: int
    abci_port: int

    @property
    def cometbft_home(self) -> Path:
        """The node's ``cometbft --home`` directory."""
        return self.dir / "cometbft"

    @property
    def app_home(self) -> Path:
        """The ABCI application's data directory."""
        return self.dir / "app"

    @property
    def app_log(self) -> Path:
        """Log file of the ABCI application process."""
        return self.dir / "app.log"

    @property
    def cometbft_log(self) -> Path:
        """Log file of the cometbft process."""
        return self.dir / "cometbft.log"

    @property
    def rpc_url(self) -> str:
        """HTTP address of the node's CometBFT RPC."""
        return f"http://127.0.0.1:{self.rpc_port}"

    @property
    def evm_rpc_port(self) -> int:
        """Port of the node's Ethereum JSON-RPC server (p2p port + EVM_RPC_OFFSET)."""
        return self.p2p_port + EVM_RPC_OFFSET

    @property
    def cometbft_metrics_port(self) -> int:
        """Port of CometBFT's Prometheus endpoint (p2p port + COMETBFT_METRICS_OFFSET)."""
        return self.p2p_port + COMETBFT_METRICS_OFFSET

    @property
    def app_metrics_port(self) -> int:
        """Port of the ABCI app's Prometheus endpoint (p2p port + APP_METRICS_OFFSET)."""
        return self.p2p_port + APP_METRICS_OFFSET

    @property
    def evm_rpc_url(self) -> str:
        """HTTP address of the node's Ethereum JSON-RPC (web3.py's HTTPProvider URL)."""
        return f"http://127.0.0.1:{self.evm_rpc_port}"

    @property
    def abci_addr(self) -> str:
        """Address the ABCI application listens on."""
        return f"tcp://127.0.0.1:{self.abci_port}"

    @property
    def p2p_address(self) -> str:
        """``id@host:port`` form used in persistent_peers."""
        return f"{self.node_id}@127.0.0.1:{self.p2p_port}"

    def to_dict(self, home: Path) -> dict[str, Any]:
        """JSON form (directory relative to the home)."""
        return {
            "index": self.index,
            "moniker": self.moniker,
            "node_id": self.node_id,
            "validator_address": self.validator_address,
            "pub_key": self.pub_key,
            "dir": _rel(self.dir, home),
            "p2p_port": self.p2p_port,
            "rpc_port": self.rpc_port,
            "abci_port": self.abci_port,
            "rpc_url": self.rpc_url,
            "evm_rpc_url": self.evm_rpc_url,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], home: Path) -> NodeSpec:
        """Inverse of to_dict."""
        return cls(
            index=int(data["index"]),
            moniker=str(data["moniker"]),
            node_id=str(data["node_id"]),
            validator_address=str(data["validator_address"]),
            pub_key=str(data["pub_key"]),
            dir=home / str(data["dir"]),
            p2p_port=int(data["p2p_port"]),
            rpc_port=int(data["rpc_port"]),
            abci_port=int(data["abci_port"]),
        )


@dataclass(frozen=True)
class NetSpec:
    """A generated local network: chain parameters, its nodes and its blob store."""

    home: Path
    chain_id: str
    app: AppKind
    base_port: int
    block_time_ms: int
    genesis_time: str
    nodes: tuple[NodeSpec, ...]
    store: StoreSpec = field(default_factory=StoreSpec)

    @property
    def validators(self) -> int:
        """Number of validators (every node is a validator with equal power)."""
        return len(self.nodes)

    @property
    def spec_file(self) -> Path:
        """Path of the serialized spec."""
        return self.home / NETSPEC_FILE

    def node(self, index: int) -> NodeSpec:
        """Return node ``index`` or raise LocalnetError naming the valid range."""
        if not 0 <= index < len(self.nodes):
            raise LocalnetError(f"no node {index}: this net has nodes 0..{len(self.nodes) - 1}")
        return self.nodes[index]

    def to_dict(self) -> dict[str, Any]:
        """JSON form of the whole spec."""
        return {
            "version": _SPEC_VERSION,
            "chain_id": self.chain_id,
            "app": self.app,
            "validators": self.validators,
            "base_port": self.base_port,
            "block_time_ms": self.block_time_ms,
            "genesis_time": self.genesis_time,
            "store": self.store.to_dict(self.home),
            "nodes": [n.to_dict(self.home) for n in self.nodes],
        }

    def save(self) -> None:
        """Write the spec to ``<home>/localnet.json`` atomically."""
        _atomic_write(self.spec_file, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], home: Path) -> NetSpec:
        """Inverse of to_dict; ``home`` is where the spec was found."""
        if data.get("version") != _SPEC_VERSION:
            raise LocalnetError(
                f"{home / NETSPEC_FILE} has spec version {data.get('version')!r}, expected {_SPEC_VERSION}"
            )
        app = data["app"]
        if app not in APP_KINDS:
            raise LocalnetError(f"unknown app {app!r} in {home / NETSPEC_FILE}")
        return cls(
            home=home,
            chain_id=str(data["chain_id"]),
            app=cast(AppKind, app),
            base_port=int(data["base_port"]),
            block_time_ms=int(data["block_time_ms"]),
            genesis_time=str(data["genesis_time"]),
            nodes=tuple(NodeSpec.from_dict(n, home) for n in data["nodes"]),
            store=StoreSpec.from_dict(data.get("store") or {}, home),
        )


def load_spec(home: Path) -> NetSpec:
    """Read ``<home>/localnet.json``; NotGeneratedError if the home holds no generated net."""
    home = home.expanduser().resolve()
    path = home / NETSPEC_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise NotGeneratedError(
            f"{home} holds no generated localnet (no {NETSPEC_FILE}); run `fedledger localnet up` first"
        ) from None
    except (OSError, ValueError) as exc:
        raise LocalnetError(f"cannot read {path}: {exc}") from exc
    try:
        return NetSpec.from_dict(data, home)
    except (KeyError, TypeError, ValueError) as exc:
        raise LocalnetError(f"{path} is malformed: {exc!r}") from exc


def store_spec_for(kind: str, home: Path, base_port: int) -> StoreSpec:
    """Return the StoreSpec of ``kind`` for a net in ``home`` starting at ``base_port``."""
    if kind not in STORE_KINDS:
        raise LocalnetError(f"unknown store {kind!r}; choose one of {', '.join(STORE_KINDS)}")
    if kind == "embedded":
        return StoreSpec()
    return StoreSpec(
        kind="kubo",
        ipfs_path=home / "ipfs",
        api_port=base_port + KUBO_API_OFFSET,
        gateway_port=base_port + KUBO_GATEWAY_OFFSET,
        swarm_port=base_port + KUBO_SWARM_OFFSET,
    )


def required_ports(spec: NetSpec) -> list[tuple[int, str]]:
    """Every ``(port, owner)`` the running net will listen on."""
    ports: list[tuple[int, str]] = []
    for n in spec.nodes:
        ports.append((n.p2p_port, f"{n.moniker} p2p"))
        ports.append((n.rpc_port, f"{n.moniker} rpc"))
        ports.append((n.cometbft_metrics_port, f"{n.moniker} cometbft metrics"))
        if spec.app != "kvstore":
            ports.append((n.abci_port, f"{n.moniker} abci"))
            ports.append((n.evm_rpc_port, f"{n.moniker} evm rpc"))
            ports.append((n.app_metrics_port, f"{n.moniker} app metrics"))
    st = spec.store
    for port, what in ((st.api_port, "api"), (st.gateway_port, "gateway"), (st.swarm_port, "swarm")):
        if port is not None:
            ports.append((port, f"kubo {what}"))
    return ports


# ----------------------------------------------------------------------------------------------
# Generation
# ----------------------------------------------------------------------------------------------


def validate_params(
    validators: int, chain_id: str, base_port: int, block_time_ms: int, app: str, store: str
) -> None:
    """Raise LocalnetError with a clear message for any out-of-range network parameter."""
    if isinstance(validators, bool) or not isinstance(validators, int) \
            or not 1 <= validators <= _MAX_VALIDATORS:
        raise LocalnetError(f"validators must be an integer in 1..{_MAX_VALIDATORS}, got {validators!r}")
    if not isinstance(chain_id, str) or not _CHAIN_ID_RE.match(chain_id):
        raise LocalnetError(
            f"chain id {chain_id!r} is invalid: use 1-50 characters from letters, digits, '.', '_', '-'"
        )
    last = base_port + PORT_STRIDE * validators - 1
    if not isinstance(base_port, int) or base_port < 1024 or last > 65535:
        raise LocalnetError(
            f"base port {base_port!r} is invalid: need 1024 <= base and base + {PORT_STRIDE}*validators - 1 "
            f"<= 65535 (would end at {last})"
        )
    if not isinstance(block_time_ms, int) or not 10 <= block_time_ms <= 60_000:
        raise LocalnetError(f"block time must be 10..60000 ms, got {block_time_ms!r}")
    if app not in APP_KINDS:
        raise LocalnetError(f"unknown app {app!r}; choose one of {', '.join(APP_KINDS)}")
    if store not in STORE_KINDS:
        raise LocalnetError(f"unknown store {store!r}; choose one of {', '.join(STORE_KINDS)}")


def _rel(path: Path, home: Path) -> str:
    try:
        return str(path.relative_to(home))
    except ValueError:
        return str(path)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _run(cmd: list[str]) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_CMD_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BinaryError(f"cannot run {' '.join(cmd)}: {exc}") from exc
    if proc.returncode != 0:
        raise BinaryError(
            f"{' '.join(cmd)} failed with status {proc.returncode}: {proc.stderr.strip()[-1000:]}"
        )
    return proc.stdout


# 1 MiB blocks carry ~2000 commitment txs, far above what a round needs per block. CometBFT's
# default (21 MiB) lets a mempool backlog become one block of tens of thousands of txs that takes
# seconds to gossip even on loopback and stalls consensus meanwhile (seen in `fedledger bench chain`).
MAX_BLOCK_BYTES = 1 << 20


def _consensus_params(template: Mapping[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = json.loads(json.dumps(template))  # a deep copy
    params.setdefault("block", {})["max_bytes"] = str(MAX_BLOCK_BYTES)
    return params


def build_genesis(
    template: Mapping[str, Any],
    chain_id: str,
    genesis_time: str,
    validators: Sequence[tuple[str, str, str]],
    app_state: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return a genesis document from cometbft's ``template`` with our chain id, time and validators.

    ``validators`` holds ``(address, ed25519 pubkey base64, name)``; all get the same power.
    """
    genesis: dict[str, Any] = {
        "genesis_time": genesis_time,
        "chain_id": chain_id,
        "initial_height": "1",
        "consensus_params": _consensus_params(template["consensus_params"]),
        "validators": [
            {
                "address": address,
                "pub_key": {"type": "tendermint/PubKeyEd25519", "value": pub_key},
                "power": str(VALIDATOR_POWER),
                "name": name,
            }
            for address, pub_key, name in validators
        ],
        "app_hash": "",
    }
    if app_state is not None:
        genesis["app_state"] = dict(app_state)
    return genesis


def render_node_config(text: str, spec: NetSpec, node: NodeSpec) -> str:
    """Return cometbft config.toml ``text`` patched for ``node`` of ``spec``."""
    peers = ",".join(n.p2p_address for n in spec.nodes if n.index != node.index)
    bt = spec.block_time_ms
    updates: dict[str, dict[str, TomlValue]] = {
        "": {
            "moniker": node.moniker,
            "proxy_app": "kvstore" if spec.app == "kvstore" else node.abci_addr,
            "log_level": "info",
            "abci": "socket",
        },
        "rpc": {
            "laddr": f"tcp://127.0.0.1:{node.rpc_port}",
            # Benchmarks push many concurrent clients and large batches through the RPC.
            "max_body_bytes": 16 * 1024 * 1024,
            "max_open_connections": 900,
            "max_subscription_clients": 1000,
            "max_subscriptions_per_client": 50,
            "timeout_broadcast_tx_commit": "10s",
            "max_request_batch_size": 100,
            "pprof_laddr": "",
            "grpc_laddr": "",
        },
        "p2p": {
            "laddr": f"tcp://127.0.0.1:{node.p2p_port}",
            "external_address": "",
            "persistent_peers": peers,
            "seeds": "",
            "addr_book_strict": False,
            "allow_duplicate_ip": True,
            "pex": False,
            # Bound the redial backoff so a restarted peer is found again within seconds.
            "persistent_peers_max_dial_period": "5s",
            # Localhost links: flush quickly and do not throttle.
            "flush_throttle_timeout": "10ms",
            "send_rate": 52_428_800,
            "recv_rate": 52_428_800,
        },
        "mempool": {
            "size": 50_000,
            "cache_size": 100_000,
            "max_tx_bytes": 4 * 1024 * 1024,
            "max_txs_bytes": 1024 * 1024 * 1024,
        },
        "consensus": {
            # With all peers on localhost a round takes milliseconds, so block time ~ timeout_commit.
            "timeout_propose": "1s",
            "timeout_propose_delta": "200ms",
            "timeout_prevote": f"{max(100, bt)}ms",
            "timeout_prevote_delta": "100ms",
            "timeout_precommit": f"{max(100, bt)}ms",
            "timeout_precommit_delta": "100ms",
            "timeout_commit": f"{bt}ms",
            "skip_timeout_commit": False,
            "create_empty_blocks": True,
            "create_empty_blocks_interval": "0s",
            "peer_gossip_sleep_duration": "10ms",
        },
        "tx_index": {"indexer": "kv"},
        # CometBFT's own metrics (consensus height, block interval, mempool, peers) for the dashboard.
        "instrumentation": {"prometheus": True,
                            "prometheus_listen_addr": f"127.0.0.1:{node.cometbft_metrics_port}",
                            "namespace": "cometbft"},
    }
    return set_toml_values(text, updates)


def write_node_configs(spec: NetSpec) -> None:
    """(Re)write every node's config.toml for ``spec`` (ports, peers, timeouts); keys and data stay."""
    for node in spec.nodes:
        path = node.cometbft_home / "config" / "config.toml"
        try:
            text = path.read_text()
        except OSError as exc:
            raise LocalnetError(f"cannot read {path}: {exc}; regenerate the net with --reset") from exc
        _atomic_write(path, render_node_config(text, spec, node))


def generate(
    home: Path,
    validators: int,
    chain_id: str,
    base_port: int,
    block_time_ms: int = 300,
    app: AppKind = "fedledger",
    *,
    store: StoreKind = "embedded",
    genesis_time: str = DEFAULT_GENESIS_TIME,
    app_state: Mapping[str, Any] | None = None,
    cometbft_bin: Path | None = None,
    check_ports: bool = True,
) -> NetSpec:
    """Create keys, one shared genesis and patched configs for ``validators`` nodes under ``home``.

    Refuses a home that already holds a generated net (the caller wipes it for a reset).
    Writes ``<home>/localnet.json`` and returns the NetSpec.
    """
    validate_params(validators, chain_id, base_port, block_time_ms, app, store)
    if not _GENESIS_TIME_RE.match(genesis_time):
        raise LocalnetError(f"genesis time {genesis_time!r} must look like 2025-01-01T00:00:00Z")
    home = home.expanduser().resolve()
    if (home / NETSPEC_FILE).exists() or any(home.glob("node*")):
        raise LocalnetError(f"{home} already holds a generated localnet; reset it first")
    if cometbft_bin is None:
        from fedledger.localnet.cometbft import default_bin_dir, ensure_cometbft

        cometbft_bin = ensure_cometbft(default_bin_dir())

    nodes: list[NodeSpec] = []
    for i in range(validators):
        p2p, rpc, abci = node_ports(base_port, i)
        nodes.append(
            NodeSpec(
                index=i, moniker=f"node{i}", node_id="", validator_address="", pub_key="",
                dir=home / f"node{i}", p2p_port=p2p, rpc_port=rpc, abci_port=abci,
            )
        )
    spec = NetSpec(
        home=home, chain_id=chain_id, app=app, base_port=base_port, block_time_ms=block_time_ms,
        genesis_time=genesis_time, nodes=tuple(nodes), store=store_spec_for(store, home, base_port),
    )
    if check_ports:
        check_ports_free(required_ports(spec))

    home.mkdir(parents=True, exist_ok=True)
    filled: list[NodeSpec] = []
    for node in spec.nodes:
        node.app_home.mkdir(parents=True, exist_ok=True)
        _run([str(cometbft_bin), "init", "--home", str(node.cometbft_home)])
        key_file = node.cometbft_home / "config" / "priv_validator_key.json"
        try:
            key = json.loads(key_file.read_text())
            address = str(key["address"])
            pub_key = str(key["pub_key"]["value"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise LocalnetError(f"cannot read validator key {key_file}: {exc!r}") from exc
        node_id = _run([str(cometbft_bin), "show-node-id", "--home", str(node.cometbft_home)]).strip()
        if not re.fullmatch(r"[0-9a-f]{40}", node_id):
            raise BinaryError(f"cometbft show-node-id printed {node_id!r}, expected 40 hex digits")
        filled.append(replace(node, node_id=node_id, validator_address=address, pub_key=pub_key))
    spec = replace(spec, nodes=tuple(filled))

    if app_state is None and app == "fedledger":
        from fedledger.localnet.consortium import dev_app_state

        app_state = dev_app_state(home)
    template_path = spec.nodes[0].cometbft_home / "config" / "genesis.json"
    try:
        template = json.loads(template_path.read_text())
    except (OSError, ValueError) as exc:
        raise LocalnetError(f"cannot read {template_path}: {exc}") from exc
    genesis = build_genesis(
        template, chain_id, genesis_time,
        [(n.validator_address, n.pub_key, n.moniker) for n in spec.nodes], app_state,
    )
    genesis_text = json.dumps(genesis, indent=2) + "\n"
    for node in spec.nodes:
        _atomic_write(node.cometbft_home / "config" / "genesis.json", genesis_text)
    write_node_configs(spec)
    spec.save()
    return spec
