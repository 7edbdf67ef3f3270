"""Where anchoring goes: the public chain's RPC URL, the signing key, the contract, and how patiently to wait.

The signing key of a public chain is an encrypted keystore file (eth-account's `Account.encrypt`,
made by `fedledger anchor keystore new|import`); its password comes from a password file, an
environment variable, or, on a terminal, a prompt. A raw hex key (`FEDLEDGER_ANCHOR_KEY`,
`FEDLEDGER_ANCHOR_KEY_FILE`, `key`, `key_file`) is for development chains only and is refused
unless the RPC URL is a loopback address (the localnet's geth --dev, a test chain).

Sources, the first that names an RPC URL wins as a whole (a URL from one place is never paired
with a key from another):

1. the environment: `FEDLEDGER_ANCHOR_RPC` with `FEDLEDGER_ANCHOR_KEYSTORE` (and
   `FEDLEDGER_ANCHOR_PASSWORD_FILE` or `FEDLEDGER_ANCHOR_PASSWORD`, else a prompt), or, for a
   loopback RPC only, `FEDLEDGER_ANCHOR_KEY` / `FEDLEDGER_ANCHOR_KEY_FILE`; optionally
   `FEDLEDGER_ANCHOR_CHAIN_ID` (the chain id the RPC must report, e.g. 11155111 for Sepolia,
   560048 for Hoodi), `FEDLEDGER_ANCHOR_CONTRACT` and `FEDLEDGER_ANCHOR_CONFIRMATIONS`;
2. a JSON config file (`--config FILE` or `$FEDLEDGER_ANCHOR_CONFIG`) with the same settings:
   `rpc_url`, `keystore` (with `password_file` or `password_env`, the name of the variable holding
   the password) or, loopback only, `key` / `key_file`; `chain_id`, `contract`, `confirmations`,
   `stuck_after_s`, `priority_fee_wei`, `max_fee_wei`, `confirm_timeout_s`, `poll_s`; relative
   paths are taken from the file's folder;
3. the localnet's development chain (`<localnet>/anchor.json`, written when `localnet up`
   starts `geth --dev`): its RPC URL, a raw key the localnet funded (dev only), and, once
   deployed, the contract.

Environment values for the contract, chain id and confirmations override the file's in every
case. Every problem is an AnchorConfigError naming the setting and where it came from; neither
a key nor a password is ever echoed.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fedledger.node.anchor.errors import AnchorConfigError
from fedledger.node.anchor.keystore import read_keystore

__all__ = ["ENV_CHAIN_ID", "ENV_CONFIG", "ENV_CONFIRMATIONS", "ENV_CONTRACT", "ENV_KEY", "ENV_KEYSTORE", "ENV_KEY_FILE",
           "ENV_PASSWORD", "ENV_PASSWORD_FILE", "ENV_RPC", "AnchorConfig", "PasswordPrompt", "is_loopback",
           "load_config", "looks_like_key", "parse_address", "parse_key", "save_contract"]

ENV_RPC = "FEDLEDGER_ANCHOR_RPC"
ENV_KEY = "FEDLEDGER_ANCHOR_KEY"
ENV_KEY_FILE = "FEDLEDGER_ANCHOR_KEY_FILE"
ENV_CHAIN_ID = "FEDLEDGER_ANCHOR_CHAIN_ID"
ENV_CONTRACT = "FEDLEDGER_ANCHOR_CONTRACT"
ENV_CONFIRMATIONS = "FEDLEDGER_ANCHOR_CONFIRMATIONS"
ENV_CONFIG = "FEDLEDGER_ANCHOR_CONFIG"
ENV_KEYSTORE = "FEDLEDGER_ANCHOR_KEYSTORE"
ENV_PASSWORD_FILE = "FEDLEDGER_ANCHOR_PASSWORD_FILE"
ENV_PASSWORD = "FEDLEDGER_ANCHOR_PASSWORD"

PasswordPrompt = Callable[[str], str]  # asks for the password of the keystore it is given (a description)

_KEY_RE = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
_ADDR_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_FILE_FIELDS = frozenset({"rpc_url", "key", "key_file", "keystore", "password_file", "password_env", "chain_id",
                          "contract", "confirmations", "stuck_after_s", "priority_fee_wei", "max_fee_wei",
                          "confirm_timeout_s", "poll_s"})
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class AnchorConfig:
    """Resolved anchoring settings. `key` is a 0x-prefixed hex private key and is never printed."""

    rpc_url: str
    key: str = field(repr=False)
    source: str  # where the settings came from, for messages
    chain_id: int | None = None  # the chain id the RPC must report; None: accept what it reports
    contract: str | None = None  # checksummed address of the deployed CheckpointAnchor
    confirmations: int = 2
    stuck_after_s: float = 30.0  # replace a tx (same nonce, higher fees) when it is not mined this long
    confirm_timeout_s: float = 600.0  # give up waiting for mining plus confirmations after this long
    poll_s: float = 0.5
    rpc_attempts: int = 5  # tries of one RPC call (with backoff) before the node counts as down
    priority_fee_wei: int | None = None  # tip of the first attempt; None: the node's eth_maxPriorityFeePerGas
    max_fee_wei: int | None = None  # refuse to pay more than this per gas
    dev_chain_file: Path | None = None  # the localnet's anchor.json, which `deploy` updates
    key_origin: str = "raw key"  # how the key was given ("keystore FILE" or "raw key"), for status lines

    def with_contract(self, contract: str) -> AnchorConfig:
        """The same settings aimed at another contract address."""
        return replace(self, contract=parse_address(contract, "contract"))


def parse_key(text: str, where: str) -> str:
    """A 32-byte hex private key as 0x-prefixed lower-case hex; AnchorConfigError otherwise (never echoing it)."""
    text = text.strip()
    if not _KEY_RE.match(text):
        raise AnchorConfigError(f"the anchor key from {where} is not a 32-byte hex private key")
    body = text[2:] if text.startswith("0x") else text
    if int(body, 16) == 0:
        raise AnchorConfigError(f"the anchor key from {where} is zero")
    return "0x" + body.lower()


def looks_like_key(text: str) -> bool:
    """True when `text` has the shape of a 32-byte hex private key (so a command line can refuse it)."""
    return bool(_KEY_RE.match(text.strip()))


def is_loopback(url: str) -> bool:
    """True when the URL's host is localhost or a loopback address: a development chain on this machine."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read_password(path: Path, where: str) -> str:
    try:
        text = path.expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AnchorConfigError(f"cannot read the keystore password file {path} (from {where}): {exc}") from exc
    return text.rstrip("\r\n")  # one trailing newline is the file's, not the password's


def _password(file: Path | None, env_name: str | None, env: Mapping[str, str], keystore: Path, where: str,
              prompt: PasswordPrompt | None) -> str:
    """The keystore's password: from the file, else the named variable, else the prompt; AnchorConfigError if none."""
    if file is not None:
        return _read_password(file, where)
    if env_name is not None:
        if env_name not in env:
            raise AnchorConfigError(f"the keystore password variable ${env_name} (from {where}) is not set")
        return env[env_name]
    if prompt is not None:
        return prompt(f"password of the anchor keystore {keystore}")
    raise AnchorConfigError(f"no password for the anchor keystore {keystore} (from {where}): set password_file or "
                            f"password_env (${ENV_PASSWORD_FILE} or ${ENV_PASSWORD}), or run on a terminal to be "
                            "asked")


def _require_dev_chain(rpc_url: str, where: str) -> None:
    """A raw key may sign only for a development chain on this machine; a public chain needs a keystore."""
    if not is_loopback(rpc_url):
        raise AnchorConfigError(
            f"{where} gives a raw private key for {rpc_url}; raw keys are for local development chains only. Encrypt "
            f"it: `fedledger anchor keystore import --out anchor.keystore.json < keyfile`, then set keystore "
            f"(${ENV_KEYSTORE}) and password_file or password_env")


def parse_address(text: str, where: str) -> str:
    """A 20-byte hex address, checksummed; AnchorConfigError otherwise."""
    from eth_utils.address import to_checksum_address

    text = text.strip()
    if not _ADDR_RE.match(text):
        raise AnchorConfigError(f"the contract address from {where} ({text!r}) is not a 0x-prefixed 20-byte address")
    return str(to_checksum_address(text))


def _int(value: Any, name: str, where: str, lo: int, hi: int) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise AnchorConfigError(f"{name} from {where} must be an integer in [{lo}, {hi}], got {value!r}")
    return value


def _seconds(value: Any, name: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 86_400:
        raise AnchorConfigError(f"{name} from {where} must be a number of seconds in (0, 86400], got {value!r}")
    return float(value)


def _rpc(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise AnchorConfigError(f"the anchor RPC URL from {where} must be an http:// or https:// URL, got {value!r}")
    return value.rstrip("/")


def _read_key_file(path: Path, where: str) -> str:
    try:
        text = path.expanduser().read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise AnchorConfigError(f"cannot read the anchor key file {path} (from {where}): {exc}") from exc
    return parse_key(text, str(path))


def _from_mapping(raw: Mapping[str, Any], where: str, base: Path, env: Mapping[str, str],
                  prompt: PasswordPrompt | None) -> AnchorConfig:
    """Settings from a config file's object; relative key, keystore and password files are taken from `base`."""
    unknown = sorted(set(raw) - _FILE_FIELDS)
    if unknown:
        raise AnchorConfigError(f"{where} has unknown settings {unknown}; known: {sorted(_FILE_FIELDS)}")
    if "rpc_url" not in raw:
        raise AnchorConfigError(f"{where} names no rpc_url")
    rpc_url = _rpc(raw["rpc_url"], where)
    if sum(name in raw for name in ("key", "key_file", "keystore")) != 1:
        raise AnchorConfigError(f"{where} must give exactly one of keystore, key and key_file")
    if "keystore" not in raw and ("password_file" in raw or "password_env" in raw):
        raise AnchorConfigError(f"{where} gives a keystore password but no keystore")
    if "password_file" in raw and "password_env" in raw:
        raise AnchorConfigError(f"{where} must give at most one of password_file and password_env")
    if "keystore" in raw:
        keystore = base / str(raw["keystore"])
        env_name = raw.get("password_env")
        if env_name is not None and (not isinstance(env_name, str) or not _ENV_NAME_RE.match(env_name)):
            raise AnchorConfigError(f"password_env from {where} must name an environment variable, got {env_name!r}")
        password = _password(base / str(raw["password_file"]) if "password_file" in raw else None, env_name, env,
                             keystore, where, prompt)
        key, origin = read_keystore(keystore, password, where), f"keystore {keystore}"
    else:
        _require_dev_chain(rpc_url, where)
        key = (parse_key(str(raw["key"]), where) if "key" in raw
               else _read_key_file(base / str(raw["key_file"]), where))
        origin = "raw key (development chain only)"
    cfg = AnchorConfig(rpc_url=rpc_url, key=key, source=where, key_origin=origin)
    changes: dict[str, Any] = {}
    if raw.get("chain_id") is not None:
        changes["chain_id"] = _int(raw["chain_id"], "chain_id", where, 1, 2**63 - 1)
    if raw.get("contract") is not None:
        changes["contract"] = parse_address(str(raw["contract"]), where)
    if "confirmations" in raw:
        changes["confirmations"] = _int(raw["confirmations"], "confirmations", where, 1, 1000)
    for name in ("stuck_after_s", "confirm_timeout_s", "poll_s"):
        if name in raw:
            changes[name] = _seconds(raw[name], name, where)
    for name in ("priority_fee_wei", "max_fee_wei"):
        if raw.get(name) is not None:
            changes[name] = _int(raw[name], name, where, 0, 10**24)
    return replace(cfg, **changes)


def _read_json(path: Path, where: str) -> Mapping[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AnchorConfigError(f"cannot read {where}: {exc}") from exc
    except ValueError as exc:
        raise AnchorConfigError(f"{where} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise AnchorConfigError(f"{where} must hold a JSON object")
    return value


def _from_env(env: Mapping[str, str], prompt: PasswordPrompt | None) -> AnchorConfig:
    """Settings from FEDLEDGER_ANCHOR_* variables (the RPC URL is set)."""
    rpc_url = _rpc(env[ENV_RPC], f"${ENV_RPC}")
    given = [name for name in (ENV_KEYSTORE, ENV_KEY, ENV_KEY_FILE) if env.get(name)]
    if len(given) > 1:
        raise AnchorConfigError(f"set only one of {', '.join('$' + n for n in given)}")
    if not given:
        raise AnchorConfigError(f"${ENV_RPC} is set but no key: set ${ENV_KEYSTORE} (an encrypted keystore from "
                                f"`fedledger anchor keystore new|import`) with ${ENV_PASSWORD_FILE} or ${ENV_PASSWORD}"
                                f"; on a local dev chain ${ENV_KEY} or ${ENV_KEY_FILE} also do")
    if env.get(ENV_PASSWORD_FILE) and env.get(ENV_PASSWORD):
        raise AnchorConfigError(f"set only one of ${ENV_PASSWORD_FILE} and ${ENV_PASSWORD}")
    if given[0] == ENV_KEYSTORE:
        keystore = Path(env[ENV_KEYSTORE])
        password = _password(Path(env[ENV_PASSWORD_FILE]) if env.get(ENV_PASSWORD_FILE) else None,
                             ENV_PASSWORD if env.get(ENV_PASSWORD) else None, env, keystore, f"${ENV_KEYSTORE}",
                             prompt)
        return AnchorConfig(rpc_url=rpc_url, key=read_keystore(keystore, password, f"${ENV_KEYSTORE}"),
                            source="environment", key_origin=f"keystore {keystore}")
    _require_dev_chain(rpc_url, f"${given[0]}")
    key = (parse_key(env[ENV_KEY], f"${ENV_KEY}") if given[0] == ENV_KEY
           else _read_key_file(Path(env[ENV_KEY_FILE]), f"${ENV_KEY_FILE}"))
    return AnchorConfig(rpc_url=rpc_url, key=key, source="environment", key_origin="raw key (development chain only)")


def load_config(dev_chain_file: Path | None = None, config_file: Path | None = None,
                env: Mapping[str, str] | None = None, prompt: PasswordPrompt | None = None) -> AnchorConfig:
    """Resolve the anchoring settings (see the module docstring); AnchorConfigError if there are none or bad ones.

    `prompt` asks for a keystore's password when no file or variable gives it (the CLI passes one on a
    terminal); without it a keystore with no password source is an error.
    """
    env = os.environ if env is None else env
    cfg: AnchorConfig | None = None
    if env.get(ENV_RPC):
        cfg = _from_env(env, prompt)
    else:
        file = config_file or (Path(env[ENV_CONFIG]) if env.get(ENV_CONFIG) else None)
        if file is not None:
            cfg = _from_mapping(_read_json(file, f"config file {file}"), f"config file {file}", file.parent, env,
                                prompt)
        elif dev_chain_file is not None and dev_chain_file.is_file():
            # The localnet writes this file (localnet/geth.py's DEV_CHAIN_FILE); apps pass its path, so that
            # the anchor service never depends on the localnet's code.
            path = dev_chain_file
            cfg = replace(_from_mapping(_read_json(path, str(path)), f"the localnet dev chain ({path})",
                                        path.parent, env, prompt), dev_chain_file=path)
    if cfg is None:
        raise AnchorConfigError(
            f"no anchor chain is configured: set ${ENV_RPC} and ${ENV_KEYSTORE} (e.g. a Sepolia RPC URL and the "
            f"encrypted key of a funded account), pass --config FILE, or start a localnet with its dev chain "
            f"(`fedledger localnet up`)")
    changes: dict[str, Any] = {}
    if env.get(ENV_CHAIN_ID):
        changes["chain_id"] = _int(env[ENV_CHAIN_ID], "chain id", f"${ENV_CHAIN_ID}", 1, 2**63 - 1)
    if env.get(ENV_CONTRACT):
        changes["contract"] = parse_address(env[ENV_CONTRACT], f"${ENV_CONTRACT}")
    if env.get(ENV_CONFIRMATIONS):
        changes["confirmations"] = _int(env[ENV_CONFIRMATIONS], "confirmations", f"${ENV_CONFIRMATIONS}", 1, 1000)
    return replace(cfg, **changes)


def save_contract(cfg: AnchorConfig, address: str) -> Path | None:
    """Remember a deployed contract in the localnet's dev-chain file; returns it (None: the settings have none)."""
    path = cfg.dev_chain_file
    if path is None:
        return None
    data = dict(_read_json(path, str(path)))
    data["contract"] = parse_address(address, "deploy")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
