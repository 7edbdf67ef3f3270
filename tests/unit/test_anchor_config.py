"""Anchoring settings: where they come from, in which order, and the one-line errors for bad ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedledger.node.anchor.config import AnchorConfigError, load_config, save_contract

KEY = "0x" + "ab" * 32
ADDR = "0x" + "12" * 20
CHECKSUMMED = "0x1212121212121212121212121212121212121212"


def test_environment() -> None:
    cfg = load_config(env={"FEDLEDGER_ANCHOR_RPC": "https://sepolia.example/v3/", "FEDLEDGER_ANCHOR_KEY": "AB" * 32,
                           "FEDLEDGER_ANCHOR_CHAIN_ID": "11155111", "FEDLEDGER_ANCHOR_CONTRACT": ADDR,
                           "FEDLEDGER_ANCHOR_CONFIRMATIONS": "6"})
    assert (cfg.rpc_url, cfg.key, cfg.chain_id, cfg.contract, cfg.confirmations, cfg.source) == (
        "https://sepolia.example/v3", KEY, 11155111, CHECKSUMMED, 6, "environment")
    assert KEY not in repr(cfg)  # the key is never printed


def test_key_file(tmp_path: Path) -> None:
    (tmp_path / "k").write_text(KEY + "\n")
    cfg = load_config(env={"FEDLEDGER_ANCHOR_RPC": "http://127.0.0.1:8545",
                           "FEDLEDGER_ANCHOR_KEY_FILE": str(tmp_path / "k")})
    assert cfg.key == KEY and cfg.chain_id is None and cfg.contract is None


@pytest.mark.parametrize(("env", "message"), [
    ({"FEDLEDGER_ANCHOR_RPC": "http://x"}, r"\$FEDLEDGER_ANCHOR_RPC is set but no key"),
    ({"FEDLEDGER_ANCHOR_RPC": "http://x", "FEDLEDGER_ANCHOR_KEY": "0x1234"}, "is not a 32-byte hex private key"),
    ({"FEDLEDGER_ANCHOR_RPC": "http://x", "FEDLEDGER_ANCHOR_KEY": "00" * 32}, "is zero"),
    ({"FEDLEDGER_ANCHOR_RPC": "ws://x", "FEDLEDGER_ANCHOR_KEY": KEY}, "must be an http:// or https:// URL"),
    ({"FEDLEDGER_ANCHOR_RPC": "http://x", "FEDLEDGER_ANCHOR_KEY": KEY, "FEDLEDGER_ANCHOR_CONTRACT": "0x12"},
     "is not a 0x-prefixed 20-byte address"),
    ({"FEDLEDGER_ANCHOR_RPC": "http://x", "FEDLEDGER_ANCHOR_KEY": KEY, "FEDLEDGER_ANCHOR_CHAIN_ID": "sepolia"},
     "chain id from \\$FEDLEDGER_ANCHOR_CHAIN_ID must be an integer"),
    ({"FEDLEDGER_ANCHOR_RPC": "http://x", "FEDLEDGER_ANCHOR_KEY": KEY, "FEDLEDGER_ANCHOR_CONFIRMATIONS": "0"},
     "confirmations .* must be an integer in \\[1, 1000\\]"),
    ({"FEDLEDGER_ANCHOR_RPC": "http://x", "FEDLEDGER_ANCHOR_KEY": KEY, "FEDLEDGER_ANCHOR_KEY_FILE": "/k"},
     "set only one of"),
    ({}, "no anchor chain is configured: set \\$FEDLEDGER_ANCHOR_RPC and \\$FEDLEDGER_ANCHOR_KEY"),
])
def test_environment_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(AnchorConfigError, match=message):
        load_config(env=env)


def test_bad_key_is_not_echoed() -> None:
    secret = "cd" * 31 + "zz"
    with pytest.raises(AnchorConfigError) as info:
        load_config(env={"FEDLEDGER_ANCHOR_RPC": "http://x", "FEDLEDGER_ANCHOR_KEY": secret})
    assert secret not in str(info.value)


def test_config_file_and_precedence(tmp_path: Path) -> None:
    (tmp_path / "key").write_text(KEY)
    path = tmp_path / "anchor.json"
    path.write_text(json.dumps({"rpc_url": "https://hoodi.example", "key_file": "key", "chain_id": 560048,
                                "confirmations": 3, "stuck_after_s": 45, "priority_fee_wei": 10**9}))
    cfg = load_config(config_file=path, env={})
    assert (cfg.rpc_url, cfg.key, cfg.chain_id, cfg.confirmations, cfg.stuck_after_s, cfg.priority_fee_wei) == (
        "https://hoodi.example", KEY, 560048, 3, 45.0, 10**9)
    # $FEDLEDGER_ANCHOR_CONFIG names the same file; the environment's contract and confirmations win.
    cfg = load_config(env={"FEDLEDGER_ANCHOR_CONFIG": str(path), "FEDLEDGER_ANCHOR_CONTRACT": ADDR,
                           "FEDLEDGER_ANCHOR_CONFIRMATIONS": "9"})
    assert (cfg.contract, cfg.confirmations) == (CHECKSUMMED, 9)
    # An RPC URL in the environment wins as a whole over the file.
    cfg = load_config(config_file=path, env={"FEDLEDGER_ANCHOR_RPC": "http://127.0.0.1:1",
                                             "FEDLEDGER_ANCHOR_KEY": "11" * 32})
    assert cfg.rpc_url == "http://127.0.0.1:1" and cfg.chain_id is None


@pytest.mark.parametrize(("content", "message"), [
    ("not json", "is not JSON"),
    ("[]", "must hold a JSON object"),
    (json.dumps({"key": KEY}), "names no rpc_url"),
    ('{"rpc_url": "http://x"}', "exactly one of key and key_file"),
    (json.dumps({"rpc_url": "http://x", "key": KEY, "colour": 1}), "unknown settings \\['colour'\\]"),
    (json.dumps({"rpc_url": "http://x", "key": KEY, "stuck_after_s": -1}), "stuck_after_s .* must be a number"),
    ('{"rpc_url": "http://x", "key_file": "missing"}', "cannot read the anchor key file"),
])
def test_config_file_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "c.json"
    path.write_text(content)
    with pytest.raises(AnchorConfigError, match=message):
        load_config(config_file=path, env={})


def test_localnet_dev_chain_and_saving_the_contract(tmp_path: Path) -> None:
    (tmp_path / "anchor.key").write_text(KEY + "\n")
    (tmp_path / "anchor.json").write_text(json.dumps({"rpc_url": "http://127.0.0.1:26606", "chain_id": 1337,
                                                      "key_file": "anchor.key", "confirmations": 1}))
    cfg = load_config(dev_chain_file=tmp_path / "anchor.json", env={})
    assert (cfg.rpc_url, cfg.chain_id, cfg.confirmations, cfg.contract) == ("http://127.0.0.1:26606", 1337, 1, None)
    assert save_contract(cfg, ADDR) == tmp_path / "anchor.json"
    assert load_config(dev_chain_file=tmp_path / "anchor.json", env={}).contract == CHECKSUMMED
    # With an RPC in the environment the localnet's settings are not used at all.
    other = load_config(dev_chain_file=tmp_path / "anchor.json",
                        env={"FEDLEDGER_ANCHOR_RPC": "http://x", "FEDLEDGER_ANCHOR_KEY": "22" * 32})
    assert other.contract is None and save_contract(other, ADDR) is None
    # A localnet without a dev chain gives the "nothing configured" error.
    with pytest.raises(AnchorConfigError, match="no anchor chain is configured"):
        load_config(dev_chain_file=tmp_path / "elsewhere" / "anchor.json", env={})
