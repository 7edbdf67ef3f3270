"""Unit tests for the Kubo launcher that need no real Kubo: binary discovery, config, port clashes."""

from __future__ import annotations

import json
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedledger.localnet import kubo
from fedledger.localnet.errors import BinaryError, LocalnetError, PortInUseError
from fedledger.localnet.kubo import KUBO_VERSION, KuboDaemon, check_ipfs_binary, ensure_ipfs_binary


def _fake_ipfs(path: Path, version: str) -> Path:
    # Answers `version --number` and `init` like Kubo would (init writes a minimal config).
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = version ]; then echo {version}; exit 0; fi\n'
        'if [ "$1" = init ]; then mkdir -p "$IPFS_PATH" && '
        'printf \'{"Addresses": {"API": "/ip4/127.0.0.1/tcp/0"}, "Bootstrap": ["x"]}\' '
        '> "$IPFS_PATH/config"; echo "$@" > "$IPFS_PATH/init-args"; exit 0; fi\n'
        "exit 3\n"
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def no_ipfs_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.delenv("IPFS_BIN", raising=False)
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    yield


def test_ensure_prefers_ipfs_bin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    good = _fake_ipfs(tmp_path / "env" / "ipfs", KUBO_VERSION)
    _fake_ipfs(tmp_path / "bin" / "ipfs", KUBO_VERSION)
    monkeypatch.setenv("IPFS_BIN", str(good))
    assert ensure_ipfs_binary(tmp_path / "bin", log=lambda _m: None) == good.resolve()


def test_ensure_skips_wrong_version(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_ipfs_env: None
) -> None:
    monkeypatch.setenv("IPFS_BIN", str(_fake_ipfs(tmp_path / "env" / "ipfs", "0.29.0")))
    in_bin = _fake_ipfs(tmp_path / "bin" / "ipfs", KUBO_VERSION)
    messages: list[str] = []
    assert ensure_ipfs_binary(tmp_path / "bin", log=messages.append) == in_bin.resolve()
    assert any("0.29.0" in m for m in messages)


def test_ensure_without_go_is_clear(tmp_path: Path, no_ipfs_env: None) -> None:
    with pytest.raises(BinaryError, match="Go toolchain is not installed"):
        ensure_ipfs_binary(tmp_path / "bin", log=lambda _m: None)


def test_check_reports_version_mismatch(tmp_path: Path) -> None:
    with pytest.raises(BinaryError, match=r"'0\.29\.0', expected '0\.43\.0'"):
        check_ipfs_binary(_fake_ipfs(tmp_path / "ipfs", "0.29.0"))
    with pytest.raises(BinaryError, match="does not exist"):
        check_ipfs_binary(tmp_path / "missing")


def test_init_writes_isolated_config(tmp_path: Path) -> None:
    binary = _fake_ipfs(tmp_path / "ipfs", KUBO_VERSION)
    daemon = KuboDaemon(tmp_path / "repo", 15001, 18080, binary)
    daemon.init()
    cfg = json.loads((tmp_path / "repo" / "config").read_text())
    assert cfg["Addresses"]["API"] == "/ip4/127.0.0.1/tcp/15001"
    assert cfg["Addresses"]["Gateway"] == "/ip4/127.0.0.1/tcp/18080"
    assert all(a.startswith("/ip4/127.0.0.1/") for a in cfg["Addresses"]["Swarm"])
    assert cfg["Bootstrap"] == []
    assert cfg["Discovery"]["MDNS"]["Enabled"] is False
    assert cfg["Routing"]["Type"] == "none"
    assert cfg["AutoConf"]["Enabled"] is False
    assert cfg["Plugins"]["Plugins"]["telemetry"]["Config"]["Mode"] == "off"
    assert "--profile" in (tmp_path / "repo" / "init-args").read_text()
    assert daemon.api_url == "http://127.0.0.1:15001"
    assert daemon.log_path.parent == tmp_path
    # Re-running init on an existing repo only rewrites the config.
    KuboDaemon(tmp_path / "repo", 15002, 18081, binary).init()
    assert json.loads((tmp_path / "repo" / "config").read_text())["Addresses"]["API"].endswith("/15002")


def test_start_requires_init(tmp_path: Path) -> None:
    daemon = KuboDaemon(tmp_path / "repo", 15001, 18080, tmp_path / "ipfs")
    with pytest.raises(LocalnetError, match="not initialised"):
        daemon.start(timeout=1)
    assert not daemon.is_running()
    daemon.stop()  # no-op


def test_start_reports_taken_port(tmp_path: Path) -> None:
    binary = _fake_ipfs(tmp_path / "ipfs", KUBO_VERSION)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = int(holder.getsockname()[1])
        daemon = KuboDaemon(tmp_path / "repo", taken, kubo_free_port(), binary)
        daemon.init()
        with pytest.raises(PortInUseError, match=rf"port {taken} \(Kubo API\)"):
            daemon.start(timeout=1)
    assert not daemon.is_running()


def test_bad_ports_rejected(tmp_path: Path) -> None:
    with pytest.raises(LocalnetError, match="must differ"):
        KuboDaemon(tmp_path / "r", 15001, 15001, tmp_path / "ipfs").init()
    with pytest.raises(LocalnetError, match="outside"):
        KuboDaemon(tmp_path / "r", 0, 15001, tmp_path / "ipfs").init()


def kubo_free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_module_constants() -> None:
    assert kubo.KUBO_VERSION == "0.43.0"
    assert kubo.KUBO_PACKAGE == "github.com/ipfs/kubo/cmd/ipfs"
