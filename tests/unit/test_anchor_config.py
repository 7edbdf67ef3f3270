"""Anchoring settings: where they come from, in which order, and the one-line errors for bad ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedledger.node.anchor.config import AnchorConfigError, load_config, save_contract

KEY = "0x" + "ab" * 32
ADDR = "0x" + "12" * 20
CHECKSUMMED = "0x1212121212121212121212121212121212121212"
LOCAL = "http://127.0.0.1:8545"
PASSWORD = "correct horse battery"


def keystore(path: Path, key: str = KEY, password: str = PASSWORD) -> Path:
    """A keystore file made with few KDF iterations (pbkdf2), so that tests stay fast; the reader takes any KDF."""
    from eth_account import Account

    path.write_text(json.dumps(Account.encrypt(key, password, kdf="pbkdf2", iterations=2)))
    return path


def test_environment(tmp_path: Path) -> None:
    ks = keystore(tmp_path / "ks.json")
    cfg = load_config(env={"FEDLEDGER_ANCHOR_RPC": "https://sepolia.example/v3/", "FEDLEDGER_ANCHOR_KEYSTORE": str(ks),
                           "FEDLEDGER_ANCHOR_PASSWORD": PASSWORD, "FEDLEDGER_ANCHOR_CHAIN_ID": "11155111",
                           "FEDLEDGER_ANCHOR_CONTRACT": ADDR, "FEDLEDGER_ANCHOR_CONFIRMATIONS": "6"})
    assert (cfg.rpc_url, cfg.key, cfg.chain_id, cfg.contract, cfg.confirmations, cfg.source) == (
        "https://sepolia.example/v3", KEY, 11155111, CHECKSUMMED, 6, "environment")
    assert cfg.key_origin == f"keystore {ks}"
    assert KEY not in repr(cfg) and PASSWORD not in repr(cfg)  # neither the key nor the password is printed


def test_raw_key_only_for_a_loopback_rpc(tmp_path: Path) -> None:
    cfg = load_config(env={"FEDLEDGER_ANCHOR_RPC": "http://localhost:8545", "FEDLEDGER_ANCHOR_KEY": "AB" * 32})
    assert cfg.key == KEY and cfg.key_origin.startswith("raw key")
    assert load_config(env={"FEDLEDGER_ANCHOR_RPC": "http://[::1]:8545", "FEDLEDGER_ANCHOR_KEY": KEY}).key == KEY
    (tmp_path / "k").write_text(KEY)
    for env in ({"FEDLEDGER_ANCHOR_RPC": "https://sepolia.example", "FEDLEDGER_ANCHOR_KEY": KEY},
                {"FEDLEDGER_ANCHOR_RPC": "http://10.0.0.7:8545", "FEDLEDGER_ANCHOR_KEY_FILE": str(tmp_path / "k")}):
        with pytest.raises(AnchorConfigError, match="raw keys are for local development chains only") as info:
            load_config(env=env)
        assert KEY not in str(info.value) and "keystore import" in str(info.value)
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"rpc_url": "https://sepolia.example", "key_file": "k"}))
    with pytest.raises(AnchorConfigError, match="gives a raw private key for https://sepolia.example"):
        load_config(config_file=path, env={})


def test_keystore_passwords_from_file_variable_or_prompt(tmp_path: Path) -> None:
    ks = keystore(tmp_path / "ks.json")
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    path = tmp_path / "c.json"
    for extra, env in (({"password_file": "pw"}, {}), ({"password_env": "MY_PW"}, {"MY_PW": PASSWORD})):
        path.write_text(json.dumps({"rpc_url": "https://rpc.sepolia.org", "keystore": ks.name, **extra}))
        assert load_config(config_file=path, env=env).key == KEY
    env = {"FEDLEDGER_ANCHOR_RPC": "https://rpc.sepolia.org", "FEDLEDGER_ANCHOR_KEYSTORE": str(ks),
           "FEDLEDGER_ANCHOR_PASSWORD_FILE": str(tmp_path / "pw")}
    assert load_config(env=env).key == KEY
    asked: list[str] = []
    no_password = {"FEDLEDGER_ANCHOR_RPC": "https://rpc.sepolia.org", "FEDLEDGER_ANCHOR_KEYSTORE": str(ks)}
    assert load_config(env=no_password, prompt=lambda what: asked.append(what) or PASSWORD).key == KEY
    assert asked == [f"password of the anchor keystore {ks}"]
    with pytest.raises(AnchorConfigError, match="no password for the anchor keystore"):
        load_config(env=no_password)


@pytest.mark.parametrize(("setting", "message"), [
    ({"password_env": "NOPE"}, "variable \\$NOPE .* is not set"),
    ({"password_env": "1 bad"}, "password_env .* must name an environment variable"),
    ({"password_env": "MY_PW", "password_file": "pw"}, "at most one of password_file and password_env"),
    ({"password_file": "missing"}, "cannot read the keystore password file"),
    ({"password_env": "WRONG"}, "wrong password"),
    ({"keystore": "missing.json", "password_env": "MY_PW"}, "cannot read the anchor keystore"),
    ({"keystore": "plain.json", "password_env": "MY_PW"}, "is not an encrypted keystore file"),
    ({"keystore": "ks.json", "key": KEY}, "exactly one of keystore, key and key_file"),
    ({"keystore": None, "key": KEY, "password_env": "MY_PW"}, "gives a keystore password but no keystore"),
])
def test_keystore_errors(tmp_path: Path, setting: dict[str, object], message: str) -> None:
    keystore(tmp_path / "ks.json")
    (tmp_path / "pw").write_text(PASSWORD)
    (tmp_path / "plain.json").write_text(json.dumps({"key": KEY}))
    raw = {"rpc_url": "https://rpc.sepolia.org", "keystore": "ks.json", **setting}
    path = tmp_path / "c.json"
    path.write_text(json.dumps({k: v for k, v in raw.items() if v is not None}))
    with pytest.raises(AnchorConfigError, match=message) as info:
        load_config(config_file=path, env={"MY_PW": PASSWORD, "WRONG": "not the password"})
    assert PASSWORD not in str(info.value) and KEY not in str(info.value)


def test_write_keystore_round_trip_mode_and_no_overwrite(tmp_path: Path) -> None:
    from eth_account import Account

    from fedledger.node.anchor.keystore import read_keystore, write_keystore

    path = tmp_path / "ks.json"
    address = write_keystore(path, KEY, PASSWORD)
    assert address == Account.from_key(KEY).address and (path.stat().st_mode & 0o777) == 0o600
    assert KEY[2:] not in path.read_text() and read_keystore(path, PASSWORD, "test") == KEY
    with pytest.raises(AnchorConfigError, match="exists; it may hold the only copy"):
        write_keystore(path, "0x" + "cd" * 32, PASSWORD)
    assert read_keystore(path, PASSWORD, "test") == KEY
    with pytest.raises(AnchorConfigError, match="at least 8 characters"):
        write_keystore(tmp_path / "other.json", KEY, "short")


def test_key_file(tmp_path: Path) -> None:
    (tmp_path / "k").write_text(KEY + "\n")
    cfg = load_config(env={"FEDLEDGER_ANCHOR_RPC": "http://127.0.0.1:8545",
                           "FEDLEDGER_ANCHOR_KEY_FILE": str(tmp_path / "k")})
    assert cfg.key == KEY and cfg.chain_id is None and cfg.contract is None


@pytest.mark.parametrize(("env", "message"), [
    ({"FEDLEDGER_ANCHOR_RPC": LOCAL}, r"\$FEDLEDGER_ANCHOR_RPC is set but no key"),
    ({"FEDLEDGER_ANCHOR_RPC": LOCAL, "FEDLEDGER_ANCHOR_KEY": "0x1234"}, "is not a 32-byte hex private key"),
    ({"FEDLEDGER_ANCHOR_RPC": LOCAL, "FEDLEDGER_ANCHOR_KEY": "00" * 32}, "is zero"),
    ({"FEDLEDGER_ANCHOR_RPC": "ws://x", "FEDLEDGER_ANCHOR_KEY": KEY}, "must be an http:// or https:// URL"),
    ({"FEDLEDGER_ANCHOR_RPC": LOCAL, "FEDLEDGER_ANCHOR_KEY": KEY, "FEDLEDGER_ANCHOR_CONTRACT": "0x12"},
     "is not a 0x-prefixed 20-byte address"),
    ({"FEDLEDGER_ANCHOR_RPC": LOCAL, "FEDLEDGER_ANCHOR_KEY": KEY, "FEDLEDGER_ANCHOR_CHAIN_ID": "sepolia"},
     "chain id from \\$FEDLEDGER_ANCHOR_CHAIN_ID must be an integer"),
    ({"FEDLEDGER_ANCHOR_RPC": LOCAL, "FEDLEDGER_ANCHOR_KEY": KEY, "FEDLEDGER_ANCHOR_CONFIRMATIONS": "0"},
     "confirmations .* must be an integer in \\[1, 1000\\]"),
    ({"FEDLEDGER_ANCHOR_RPC": LOCAL, "FEDLEDGER_ANCHOR_KEY": KEY, "FEDLEDGER_ANCHOR_KEY_FILE": "/k"},
     "set only one of"),
    ({"FEDLEDGER_ANCHOR_RPC": LOCAL, "FEDLEDGER_ANCHOR_KEYSTORE": "/ks", "FEDLEDGER_ANCHOR_PASSWORD": "x",
      "FEDLEDGER_ANCHOR_PASSWORD_FILE": "/pw"}, "set only one of \\$FEDLEDGER_ANCHOR_PASSWORD_FILE and"),
    ({}, "no anchor chain is configured: set \\$FEDLEDGER_ANCHOR_RPC and \\$FEDLEDGER_ANCHOR_KEYSTORE"),
])
def test_environment_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(AnchorConfigError, match=message):
        load_config(env=env)


def test_bad_key_is_not_echoed() -> None:
    secret = "cd" * 31 + "zz"
    with pytest.raises(AnchorConfigError) as info:
        load_config(env={"FEDLEDGER_ANCHOR_RPC": LOCAL, "FEDLEDGER_ANCHOR_KEY": secret})
    assert secret not in str(info.value)


def test_config_file_and_precedence(tmp_path: Path) -> None:
    keystore(tmp_path / "key.json")
    (tmp_path / "pw").write_text(PASSWORD)
    path = tmp_path / "anchor.json"
    path.write_text(json.dumps({"rpc_url": "https://hoodi.example", "keystore": "key.json", "password_file": "pw",
                                "chain_id": 560048,
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
    (json.dumps({"rpc_url": LOCAL}), "exactly one of keystore, key and key_file"),
    (json.dumps({"rpc_url": LOCAL, "key": KEY, "colour": 1}), "unknown settings \\['colour'\\]"),
    (json.dumps({"rpc_url": LOCAL, "key": KEY, "stuck_after_s": -1}), "stuck_after_s .* must be a number"),
    (json.dumps({"rpc_url": LOCAL, "key_file": "missing"}), "cannot read the anchor key file"),
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
                        env={"FEDLEDGER_ANCHOR_RPC": LOCAL, "FEDLEDGER_ANCHOR_KEY": "22" * 32})
    assert other.contract is None and save_contract(other, ADDR) is None
    # A localnet without a dev chain gives the "nothing configured" error.
    with pytest.raises(AnchorConfigError, match="no anchor chain is configured"):
        load_config(dev_chain_file=tmp_path / "elsewhere" / "anchor.json", env={})
