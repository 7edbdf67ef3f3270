"""The pinned geth: version checks with stand-in binaries, where it is looked for, and the dev chain's command line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fedledger.localnet.errors import BinaryError
from fedledger.localnet.geth import (
    GETH_VERSION,
    GethDev,
    check_geth,
    ensure_geth,
    geth_version,
    stop_dev_chain,
)


def fake_geth(path: Path, version: str) -> Path:
    path.write_text(f"#!/bin/sh\necho Geth\necho 'Version: {version}'\necho 'Architecture: amd64'\n")
    path.chmod(0o755)
    return path


def test_version_check(tmp_path: Path) -> None:
    good = fake_geth(tmp_path / "geth", f"{GETH_VERSION}-stable")
    assert geth_version(good) == GETH_VERSION
    check_geth(good)
    old = fake_geth(tmp_path / "old", "1.16.7-stable")
    with pytest.raises(BinaryError, match=f"is '1.16.7', expected '{GETH_VERSION}'; install it with `go install "
                                          f"github.com/ethereum/go-ethereum/cmd/geth@v{GETH_VERSION}`"):
        check_geth(old)
    with pytest.raises(BinaryError, match="does not exist"):
        check_geth(tmp_path / "missing")
    silent = tmp_path / "silent"
    silent.write_text("#!/bin/sh\necho hello\n")
    silent.chmod(0o755)
    with pytest.raises(BinaryError, match="printed no Version line"):
        geth_version(silent)


def test_ensure_prefers_a_pinned_binary_and_skips_wrong_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_geth(bin_dir / "geth", f"{GETH_VERSION}-stable")
    wrong = fake_geth(tmp_path / "wrong-geth", "1.14.0-stable")
    monkeypatch.setenv("GETH_BIN", str(wrong))
    monkeypatch.setenv("PATH", "/nonexistent")
    logged: list[str] = []
    assert ensure_geth(bin_dir, log=logged.append) == (bin_dir / "geth").resolve()
    assert any("ignoring geth from $GETH_BIN" in m and "1.14.0" in m for m in logged)


def test_no_geth_and_no_go_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GETH_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BinaryError, match="no geth .* found and the Go toolchain is not installed"):
        ensure_geth(tmp_path / "bin", log=lambda _m: None)


def test_dev_chain_command_line_is_loopback_http_only(tmp_path: Path) -> None:
    geth = GethDev(tmp_path / "geth", 23456, Path("/x/geth"), miner_gasprice=2 * 10**9)
    args = geth.args()
    assert args[:4] == ["/x/geth", "--dev", "--dev.period", "1"]

    def opt(name: str) -> str:
        return args[args.index(name) + 1]

    assert opt("--http.addr") == "127.0.0.1" and opt("--http.port") == "23456"
    assert opt("--authrpc.addr") == "127.0.0.1" and opt("--miner.gasprice") == str(2 * 10**9)
    for flag in ("--nodiscover", "--ipcdisable"):
        assert flag in args
    assert not any(a.startswith("--ws") for a in args)
    assert geth.rpc_url == "http://127.0.0.1:23456"
    assert geth.log_path == tmp_path / "geth.log" and geth.pid_path == tmp_path / "geth.pid"
    assert geth.pid() is None


def test_stop_dev_chain_without_one(tmp_path: Path) -> None:
    assert stop_dev_chain(tmp_path) is False
    (tmp_path / "geth.pid").write_text(f"{os.getpid()}\n")  # a pid that is not a geth: left alone
    assert stop_dev_chain(tmp_path) is False
