"""`fedledger node start|stop|status`: run one consortium host's ABCI app + cometbft pair on an agreed genesis.

`start` checks the genesis against the hash the organizations agreed on, checks that this host's
validator is in it, installs it, writes config.toml for the host's own address and its peers, and
hands the pair to the localnet supervisor as a one-node net living in the host's home (so crash
restarts, logs and `down` work exactly as on a localnet). The p2p port listens on every address
of the host (its own network namespace in the tests), the RPC where `--rpc-host` says (loopback
by default); the ABCI and EVM ports stay on loopback.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fedledger.localnet.card import parse_p2p_address
from fedledger.localnet.ceremony import check_genesis_hash
from fedledger.localnet.config import (
    NetSpec,
    NodeSpec,
    StoreSpec,
    TomlValue,
    node_ports,
    render_node_config,
    set_toml_values,
)
from fedledger.localnet.errors import AlreadyRunningError, GenesisAssemblyError, LocalnetError, PortInUseError
from fedledger.localnet.hostinit import HostConfig, find_cometbft_binary, load_host
from fedledger.localnet.ports import port_is_free

__all__ = [
    "DEFAULT_HOST_BLOCK_TIME_MS",
    "host_spec",
    "parse_peers",
    "render_host_config",
    "start_host",
    "stop_host",
]

# Across machines a round trip costs milliseconds, not microseconds: a calmer block time than a localnet's.
DEFAULT_HOST_BLOCK_TIME_MS = 1000
_ANY = "0.0.0.0"  # noqa: S104 - a consortium host must be reachable by the other organizations


def _log(msg: str) -> None:
    import sys

    print(msg, file=sys.stderr, flush=True)


def parse_peers(peers: Sequence[str], own_node_id: str) -> list[str]:
    """Check every ``id@host:port`` peer (CardError names a bad one) and drop this host's own entry."""
    out: list[str] = []
    for item in peers:
        for peer in (p.strip() for p in item.split(",")):
            if not peer:
                continue
            node_id, _, _ = parse_p2p_address(peer)
            if node_id != own_node_id and peer not in out:
                out.append(peer)
    return out


def _own_validator(genesis: dict[str, Any], host: HostConfig, source: str) -> None:
    card = host.card
    validators = genesis.get("validators")
    if not isinstance(validators, list):
        raise GenesisAssemblyError(f"{source} has no validators list")
    keys = [v.get("pub_key", {}).get("value") for v in validators if isinstance(v, dict)]
    if card.validator_pub_key not in keys:
        raise GenesisAssemblyError(
            f"{source} does not list this host's validator {card.validator_address} ({card.org}): was its card "
            "left out of `genesis assemble`?")


def host_spec(host: HostConfig, genesis: dict[str, Any], block_time_ms: int) -> NetSpec:
    """The one-node NetSpec the supervisor runs for ``host`` (its home is the net home)."""
    card = host.card
    p2p, rpc, abci = node_ports(host.base_port, 0)
    node = NodeSpec(index=0, moniker=host.org, node_id=card.node_id, validator_address=card.validator_address,
                    pub_key=card.validator_pub_key, dir=host.home, p2p_port=p2p, rpc_port=rpc, abci_port=abci)
    return NetSpec(home=host.home, chain_id=str(genesis["chain_id"]), app="fedledger", base_port=host.base_port,
                   block_time_ms=block_time_ms, genesis_time=str(genesis["genesis_time"]), nodes=(node,),
                   store=StoreSpec())


def render_host_config(text: str, spec: NetSpec, host: HostConfig, peers: Sequence[str], rpc_host: str) -> str:
    """config.toml for a consortium host: the localnet's settings, then this host's addresses and peers."""
    node = spec.nodes[0]
    base = render_node_config(text, spec, node)
    p2p: dict[str, TomlValue] = {
        "laddr": f"tcp://{_ANY}:{node.p2p_port}",
        "external_address": f"{host.host}:{node.p2p_port}" if host.host else "",
        "persistent_peers": ",".join(peers),
        # Peers are distinct machines; private (10.x, 192.168.x) addresses must be dialable.
        "allow_duplicate_ip": False,
        "addr_book_strict": False,
    }
    return set_toml_values(base, {"p2p": p2p, "rpc": {"laddr": f"tcp://{rpc_host}:{node.rpc_port}"}})


def _check_ports(spec: NetSpec) -> None:
    node = spec.nodes[0]
    for port, what in ((node.p2p_port, "p2p"), (node.rpc_port, "rpc"), (node.abci_port, "abci"),
                       (node.evm_rpc_port, "evm rpc")):
        # Binding the wildcard address fails when anything listens on the port on any address.
        if not port_is_free(port, _ANY):
            raise PortInUseError(port, f"{spec.nodes[0].moniker} {what}")


def _install_genesis(host: HostConfig, data: bytes) -> None:
    target = host.cometbft_home / "config" / "genesis.json"
    try:
        current = target.read_bytes()
    except OSError:
        current = b""
    if current == data:
        return
    if (host.cometbft_home / "data" / "blockstore.db").exists():
        raise LocalnetError(f"{host.home} already ran a chain on another genesis; refusing to replace "
                            f"{target} under its data (use a fresh `node init` home for a new chain)")
    tmp = target.with_name(".genesis.json.tmp")
    tmp.write_bytes(data)
    tmp.replace(target)


def start_host(home: Path, genesis_path: Path, expected_hash: str, peers: Sequence[str], *,
               block_time_ms: int = DEFAULT_HOST_BLOCK_TIME_MS, rpc_host: str = "127.0.0.1",
               cometbft_bin: Path | None = None, wait_rpc_s: float = 60.0,
               log: Callable[[str], None] = _log) -> NetSpec:
    """Start the host in ``home`` on ``genesis_path`` (whose sha256 must be ``expected_hash``); return its spec.

    Returns once the supervisor runs and the host's RPC answers; blocks come when enough of the
    other validators are up too. The RPC listens on ``rpc_host`` (loopback unless told otherwise:
    it accepts transactions from anyone who reaches it).
    """
    host = load_host(home)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.:-]{0,252}", rpc_host):
        raise LocalnetError(f"--rpc-host {rpc_host!r} is not an address to listen on (e.g. 127.0.0.1, 0.0.0.0)")
    binary = find_cometbft_binary(cometbft_bin)
    source = str(genesis_path)
    try:
        data = genesis_path.read_bytes()
    except OSError as exc:
        raise GenesisAssemblyError(f"cannot read the genesis {genesis_path}: {exc}") from exc
    digest = check_genesis_hash(data, expected_hash, source)
    try:
        genesis = json.loads(data)
        if not isinstance(genesis, dict) or "chain_id" not in genesis or "genesis_time" not in genesis:
            raise ValueError("no chain_id/genesis_time")
    except ValueError as exc:
        raise GenesisAssemblyError(f"{source} is not a genesis document: {exc}") from exc
    _own_validator(genesis, host, source)
    peer_list = parse_peers(peers, host.card.node_id)
    spec = host_spec(host, genesis, block_time_ms)

    from fedledger.localnet import manager

    running = manager.is_running(host.home)
    if running is not None:
        raise AlreadyRunningError(str(host.home), running)
    _check_ports(spec)
    _install_genesis(host, data)
    config = host.cometbft_home / "config" / "config.toml"
    try:
        config.write_text(render_host_config(config.read_text(), spec, host, peer_list, rpc_host))
    except OSError as exc:
        raise LocalnetError(f"cannot rewrite {config}: {exc}") from exc
    spec.save()
    log(f"{host.org}: genesis sha256 {digest} checked; {len(peer_list)} peer(s)")
    # The spec matches what `up` derives from base port and block time, so it reuses it untouched.
    manager.up(host.home, validators=1, store="embedded", block_time_ms=block_time_ms, base_port=host.base_port,
               wait=False, chain_id=spec.chain_id, bin_dir=binary.parent, log=log)
    deadline = time.monotonic() + wait_rpc_s
    while True:
        try:
            manager.rpc_get(spec.nodes[0].rpc_url, "status", timeout=1.0)
            return spec
        except LocalnetError as exc:
            if time.monotonic() > deadline:
                raise LocalnetError(f"{host.org}: the pair was started but its RPC does not answer "
                                    f"({exc}); see {host.home}/cometbft.log and app.log") from exc
        time.sleep(0.3)


def stop_host(home: Path) -> None:
    """Stop the host's pair (its keys and chain data stay for the next start)."""
    host = load_host(home)
    from fedledger.localnet import manager

    manager.down(host.home)
