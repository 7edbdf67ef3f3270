"""Unit tests for localnet generation, the TOML setter, port checks and binary checks."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import stat
import subprocess
import tomllib
from pathlib import Path
from typing import Any, cast

import pytest

from fedledger.localnet import cometbft as cb
from fedledger.localnet.config import (
    DEFAULT_GENESIS_TIME,
    NetSpec,
    build_genesis,
    generate,
    load_spec,
    node_ports,
    required_ports,
    set_toml_value,
    set_toml_values,
    validate_params,
)
from fedledger.localnet.errors import BinaryError, LocalnetError, PortInUseError
from fedledger.localnet.ports import check_ports_free, find_free_base_port, port_is_free
from fedledger.localnet.supervisor import app_command, read_control, write_control
from tests.support import find_cometbft


@pytest.fixture(scope="module")
def cometbft_bin() -> Path:
    found = find_cometbft()
    if found is None:
        pytest.skip(f"no cometbft {cb.COMETBFT_VERSION} binary (set COMETBFT_BIN)")
    return found


@pytest.fixture(scope="module")
def net4(cometbft_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> NetSpec:
    home = tmp_path_factory.mktemp("net4")
    base = find_free_base_port(40)
    return generate(home, 4, "unit-chain", base, 300, "fedledger", cometbft_bin=cometbft_bin)


def _toml(node_home: Path) -> dict[str, object]:
    return tomllib.loads((node_home / "config" / "config.toml").read_text())


# ---------------------------------------------------------------------------------------------- generation


def test_generate_four_nodes_distinct_ports(net4: NetSpec) -> None:
    ports = [p for n in net4.nodes for p in (n.p2p_port, n.rpc_port, n.abci_port)]
    assert len(ports) == 12
    assert len(set(ports)) == 12
    for n in net4.nodes:
        assert (n.p2p_port, n.rpc_port, n.abci_port) == node_ports(net4.base_port, n.index)
        assert n.p2p_port == net4.base_port + 10 * n.index
    assert [p for p, _ in required_ports(net4)] == [
        p for n in net4.nodes
        for p in (n.p2p_port, n.rpc_port, n.cometbft_metrics_port, n.abci_port, n.evm_rpc_port, n.app_metrics_port)
    ]
    assert all(n.evm_rpc_port == n.p2p_port + 8 for n in net4.nodes)


def test_generate_common_genesis(net4: NetSpec) -> None:
    texts = {(n.cometbft_home / "config" / "genesis.json").read_bytes() for n in net4.nodes}
    assert len(texts) == 1, "every node must hold the same genesis bytes"
    genesis = json.loads(texts.pop())
    assert genesis["chain_id"] == "unit-chain"
    assert genesis["initial_height"] == "1"
    assert genesis["genesis_time"] == DEFAULT_GENESIS_TIME
    vals = genesis["validators"]
    assert len(vals) == 4
    assert {v["power"] for v in vals} == {"10"}
    for n, v in zip(net4.nodes, vals, strict=True):
        key = json.loads((n.cometbft_home / "config" / "priv_validator_key.json").read_text())
        assert v["pub_key"]["value"] == key["pub_key"]["value"] == n.pub_key
        assert v["address"] == key["address"] == n.validator_address
    assert len({v["pub_key"]["value"] for v in vals}) == 4


def test_generate_node_ids_and_peers(net4: NetSpec) -> None:
    for n in net4.nodes:
        # The p2p node id is the first 20 bytes of sha256(ed25519 node public key).
        node_key = json.loads((n.cometbft_home / "config" / "node_key.json").read_text())
        priv = base64.b64decode(node_key["priv_key"]["value"])
        assert hashlib.sha256(priv[32:]).hexdigest()[:40] == n.node_id
    for n in net4.nodes:
        p2p = _toml(n.cometbft_home)["p2p"]
        assert isinstance(p2p, dict)
        peers = sorted(p2p["persistent_peers"].split(","))
        expected = sorted(f"{o.node_id}@127.0.0.1:{o.p2p_port}" for o in net4.nodes if o.index != n.index)
        assert peers == expected
        assert len(peers) == 3


def test_generate_config_keys(net4: NetSpec) -> None:
    for n in net4.nodes:
        cfg = _toml(n.cometbft_home)
        rpc, p2p, cons = cfg["rpc"], cfg["p2p"], cfg["consensus"]
        assert isinstance(rpc, dict) and isinstance(p2p, dict) and isinstance(cons, dict)
        assert cfg["moniker"] == f"node{n.index}"
        assert cfg["proxy_app"] == f"tcp://127.0.0.1:{n.abci_port}"
        assert cfg["log_level"] == "info"
        assert rpc["laddr"] == f"tcp://127.0.0.1:{n.rpc_port}"
        assert rpc["timeout_broadcast_tx_commit"] == "10s"
        assert rpc["max_body_bytes"] >= 10_000_000
        assert rpc["max_subscription_clients"] >= 100
        assert p2p["laddr"] == f"tcp://127.0.0.1:{n.p2p_port}"
        assert p2p["addr_book_strict"] is False
        assert p2p["allow_duplicate_ip"] is True
        assert p2p["pex"] is False
        assert cons["timeout_commit"] == "300ms"
        assert cfg["tx_index"] == {"indexer": "kv", "psql-conn": ""}
        instr = cfg["instrumentation"]
        assert isinstance(instr, dict) and instr["prometheus"] is True
        assert instr["prometheus_listen_addr"] == f"127.0.0.1:{n.cometbft_metrics_port}"
        assert n.cometbft_metrics_port == n.p2p_port + 7 and n.app_metrics_port == n.p2p_port + 9
        mempool = cfg["mempool"]
        assert isinstance(mempool, dict) and mempool["size"] >= 10_000


def test_spec_roundtrip(net4: NetSpec) -> None:
    loaded = load_spec(net4.home)
    assert loaded == net4
    data = json.loads((net4.home / "localnet.json").read_text())
    assert data["validators"] == 4
    assert data["chain_id"] == "unit-chain"
    assert data["nodes"][2]["dir"] == "node2"  # relative, so the home can be moved


def test_generate_refuses_existing_home(net4: NetSpec, cometbft_bin: Path) -> None:
    with pytest.raises(LocalnetError, match="already holds"):
        generate(net4.home, 4, "unit-chain", net4.base_port, cometbft_bin=cometbft_bin, check_ports=False)


def test_generate_kvstore(cometbft_bin: Path, tmp_path: Path) -> None:
    base = find_free_base_port(20)
    spec = generate(tmp_path / "h", 2, "kv-chain", base, 150, "kvstore", cometbft_bin=cometbft_bin,
                    genesis_time="2024-05-06T07:08:09Z")
    cfg = _toml(spec.nodes[1].cometbft_home)
    assert cfg["proxy_app"] == "kvstore"
    cons = cfg["consensus"]
    assert isinstance(cons, dict) and cons["timeout_commit"] == "150ms"
    # The builtin app needs no abci port.
    assert all("abci" not in owner for _, owner in required_ports(spec))
    genesis = json.loads((spec.nodes[0].cometbft_home / "config" / "genesis.json").read_text())
    assert genesis["genesis_time"] == "2024-05-06T07:08:09Z"


def test_generate_port_clash_names_node(cometbft_bin: Path, tmp_path: Path) -> None:
    base = find_free_base_port(40)
    with socket.socket() as s:
        s.bind(("127.0.0.1", base + 21))  # node2's rpc port
        s.listen(1)
        with pytest.raises(PortInUseError) as info:
            generate(tmp_path / "h", 4, "c", base, cometbft_bin=cometbft_bin)
    assert info.value.port == base + 21
    assert str(base + 21) in str(info.value)
    assert "node2 rpc" in str(info.value)
    assert not (tmp_path / "h" / "node0").exists(), "nothing is generated when a port is taken"


def test_build_genesis_deterministic() -> None:
    template = {"consensus_params": {"block": {"max_bytes": "1"}}}
    vals = [("AA", "cGs=", "node0"), ("BB", "cWs=", "node1")]
    g1 = build_genesis(template, "c", DEFAULT_GENESIS_TIME, vals)
    g2 = build_genesis(template, "c", DEFAULT_GENESIS_TIME, vals)
    assert json.dumps(g1) == json.dumps(g2)
    assert [v["name"] for v in g1["validators"]] == ["node0", "node1"]
    assert "app_state" not in g1
    assert build_genesis(template, "c", DEFAULT_GENESIS_TIME, vals, {"x": 1})["app_state"] == {"x": 1}


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0, "c", 26600, 300, "fedledger", "embedded"), "validators"),
        ((4, "bad chain!", 26600, 300, "fedledger", "embedded"), "chain id"),
        ((4, "c", 65530, 300, "fedledger", "embedded"), "base port"),
        ((4, "c", 80, 300, "fedledger", "embedded"), "base port"),
        ((4, "c", 26600, 1, "fedledger", "embedded"), "block time"),
        ((4, "c", 26600, 300, "evm", "embedded"), "unknown app"),
        ((4, "c", 26600, 300, "fedledger", "s3"), "unknown store"),
    ],
)
def test_validate_params_rejects(args: tuple[int, str, int, int, str, str], match: str) -> None:
    with pytest.raises(LocalnetError, match=match):
        validate_params(*args)


# ---------------------------------------------------------------------------------------------- TOML setter

SAMPLE = """\
# top comment
proxy_app = "tcp://127.0.0.1:26658"
moniker = "vm"

[rpc]
# rpc listen address
laddr = "tcp://127.0.0.1:26657"
max_body_bytes = 1000000

[p2p]
laddr = "tcp://0.0.0.0:26656"
pex = true
seeds = ""
"""


def test_toml_setter_replaces_in_right_section() -> None:
    out = set_toml_value(SAMPLE, "p2p", "laddr", "tcp://127.0.0.1:1")
    data = tomllib.loads(out)
    assert data["p2p"]["laddr"] == "tcp://127.0.0.1:1"
    assert data["rpc"]["laddr"] == "tcp://127.0.0.1:26657"
    assert "# rpc listen address" in out and "# top comment" in out
    assert len(out.splitlines()) == len(SAMPLE.splitlines())


def test_toml_setter_types_and_new_keys() -> None:
    out = set_toml_values(
        SAMPLE,
        {
            "": {"moniker": 'we"ird', "log_level": "info"},
            "rpc": {"max_body_bytes": 5, "unsafe": False},
            "p2p": {"pex": False, "seeds": ["a", "b"]},
            "consensus": {"timeout_commit": "300ms"},
        },
    )
    data = tomllib.loads(out)
    assert data["moniker"] == 'we"ird'
    assert data["log_level"] == "info"  # new top-level key lands before the first table
    assert data["rpc"] == {"laddr": "tcp://127.0.0.1:26657", "max_body_bytes": 5, "unsafe": False}
    assert data["p2p"]["pex"] is False
    assert data["p2p"]["seeds"] == ["a", "b"]
    assert data["consensus"] == {"timeout_commit": "300ms"}


def test_toml_setter_rejects_bad_input() -> None:
    with pytest.raises(LocalnetError):
        set_toml_value(SAMPLE, "rpc", "bad key", 1)
    with pytest.raises(LocalnetError):
        set_toml_value(SAMPLE, "rpc", "laddr", cast(Any, 1.5))
    multi = 'x = [\n  "a",\n]\n'
    with pytest.raises(LocalnetError, match="multi-line"):
        set_toml_value(multi, "", "x", ["b"])


def test_toml_setter_idempotent() -> None:
    once = set_toml_values(SAMPLE, {"p2p": {"pex": False, "new": 1}})
    assert set_toml_values(once, {"p2p": {"pex": False, "new": 1}}) == once


# ---------------------------------------------------------------------------------------------- ports


def test_port_clash_detection_names_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        assert not port_is_free(port)
        with pytest.raises(PortInUseError) as info:
            check_ports_free([(port, "node1 rpc")])
    msg = str(info.value)
    assert str(port) in msg
    assert "node1 rpc" in msg
    assert info.value.port == port


def test_port_duplicate_assignment() -> None:
    with pytest.raises(LocalnetError, match="assigned twice"):
        check_ports_free([(40001, "a"), (40001, "b")])


def test_find_free_base_port() -> None:
    base = find_free_base_port(30)
    assert all(port_is_free(base + k) for k in range(30))


# ---------------------------------------------------------------------------------------------- binaries


def _fake_binary(path: Path, version: str) -> Path:
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_check_cometbft_wrong_version(tmp_path: Path) -> None:
    fake = _fake_binary(tmp_path / "cometbft", "0.37.4")
    with pytest.raises(BinaryError) as info:
        cb.check_cometbft(fake)
    assert "0.37.4" in str(info.value) and cb.COMETBFT_VERSION in str(info.value)
    with pytest.raises(BinaryError, match="does not exist"):
        cb.check_cometbft(tmp_path / "missing")


def test_ensure_cometbft_prefers_env_then_bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    good_env = _fake_binary(tmp_path / "envbin", cb.COMETBFT_VERSION)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    good_dir = _fake_binary(bin_dir / "cometbft", cb.COMETBFT_VERSION)
    monkeypatch.setenv("COMETBFT_BIN", str(good_env))
    assert cb.ensure_cometbft(bin_dir, log=lambda m: None) == good_env.resolve()
    _fake_binary(good_env, "0.34.0")  # wrong version in $COMETBFT_BIN: fall through to bin_dir
    msgs: list[str] = []
    assert cb.ensure_cometbft(bin_dir, log=msgs.append) == good_dir.resolve()
    assert any("0.34.0" in m for m in msgs)


def test_ensure_cometbft_without_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("COMETBFT_BIN", raising=False)
    with pytest.raises(BinaryError, match="Go"):
        cb.ensure_cometbft(tmp_path / "bin", log=lambda m: None)


def test_real_cometbft_version(cometbft_bin: Path) -> None:
    out = subprocess.run([str(cometbft_bin), "version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == cb.COMETBFT_VERSION


# ------------------------------------------------------------------------------------- supervisor files


def test_control_file_roundtrip(tmp_path: Path) -> None:
    assert read_control(tmp_path, 3) == {0: "up", 1: "up", 2: "up"}
    write_control(tmp_path, {0: "up", 1: "down", 2: "up"})
    assert read_control(tmp_path, 3) == {0: "up", 1: "down", 2: "up"}
    (tmp_path / "control.json").write_text("{broken")
    assert read_control(tmp_path, 2) == {0: "up", 1: "up"}


def test_app_command(net4: NetSpec) -> None:
    cmd = app_command(net4, net4.nodes[1])
    assert cmd[1:3] == ["-m", "fedledger.abci_app"]
    assert cmd[cmd.index("--addr") + 1] == f"tcp://127.0.0.1:{net4.nodes[1].abci_port}"
    assert cmd[cmd.index("--home") + 1] == str(net4.home / "node1" / "app")
    assert cmd[cmd.index("--chain-id") + 1] == "unit-chain"
