"""Where anchoring goes: the public chain's RPC URL, the signing key, the contract, and how patiently to wait.

Sources, the first that names an RPC URL wins as a whole (a URL from one place is never paired
with a key from another):

1. the environment: `FEDLEDGER_ANCHOR_RPC` with `FEDLEDGER_ANCHOR_KEY` (hex private key) or
   `FEDLEDGER_ANCHOR_KEY_FILE`; optionally `FEDLEDGER_ANCHOR_CHAIN_ID` (the chain id the RPC
   must report, e.g. 11155111 for Sepolia, 560048 for Hoodi), `FEDLEDGER_ANCHOR_CONTRACT` and
   `FEDLEDGER_ANCHOR_CONFIRMATIONS`;
2. a JSON config file (`--config FILE` or `$FEDLEDGER_ANCHOR_CONFIG`) with the same settings:
   `rpc_url`, `key` or `key_file`, `chain_id`, `contract`, `confirmations`, `stuck_after_s`,
   `priority_fee_wei`, `max_fee_wei`, `confirm_timeout_s`;
3. the localnet's development chain (`<localnet>/anchor.json`, written when `localnet up`
   starts `geth --dev`): its RPC URL, a key the localnet funded, and, once deployed, the contract.

Environment values for the contract, chain id and confirmations override the file's in every
case. Every problem is an AnchorConfigError naming the setting and where it came from.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fedledger.node.anchor.errors import AnchorConfigError

__all__ = ["ENV_CHAIN_ID", "ENV_CONFIG", "ENV_CONFIRMATIONS", "ENV_CONTRACT", "ENV_KEY", "ENV_KEY_FILE", "ENV_RPC",
           "AnchorConfig", "load_config", "parse_address", "parse_key", "save_contract"]

ENV_RPC = "FEDLEDGER_ANCHOR_RPC"
ENV_KEY = "FEDLEDGER_ANCHOR_KEY"
ENV_KEY_FILE = "FEDLEDGER_ANCHOR_KEY_FILE"
ENV_CHAIN_ID = "FEDLEDGER_ANCHOR_CHAIN_ID"
ENV_CONTRACT = "FEDLEDGER_ANCHOR_CONTRACT"
ENV_CONFIRMATIONS = "FEDLEDGER_ANCHOR_CONFIRMATIONS"
ENV_CONFIG = "FEDLEDGER_ANCHOR_CONFIG"

_KEY_RE = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
_ADDR_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_FILE_FIELDS = frozenset({"rpc_url", "key", "key_file", "chain_id", "contract", "confirmations", "stuck_after_s",
                          "priority_fee_wei", "max_fee_wei", "confirm_timeout_s", "poll_s"})


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


def _from_mapping(raw: Mapping[str, Any], where: str, base: Path) -> AnchorConfig:
    """Settings from a config file's object; relative key files are taken from `base`."""
    unknown = sorted(set(raw) - _FILE_FIELDS)
    if unknown:
        raise AnchorConfigError(f"{where} has unknown settings {unknown}; known: {sorted(_FILE_FIELDS)}")
    if "rpc_url" not in raw:
        raise AnchorConfigError(f"{where} names no rpc_url")
    if ("key" in raw) == ("key_file" in raw):
        raise AnchorConfigError(f"{where} must give exactly one of key and key_file")
    key = (parse_key(str(raw["key"]), where) if "key" in raw
           else _read_key_file(base / str(raw["key_file"]), where))
    cfg = AnchorConfig(rpc_url=_rpc(raw["rpc_url"], where), key=key, source=where)
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


def load_config(dev_chain_file: Path | None = None, config_file: Path | None = None,
                env: Mapping[str, str] | None = None) -> AnchorConfig:
    """Resolve the anchoring settings (see the module docstring); AnchorConfigError if there are none or bad ones."""
    env = os.environ if env is None else env
    cfg: AnchorConfig | None = None
    if env.get(ENV_RPC):
        if env.get(ENV_KEY) and env.get(ENV_KEY_FILE):
            raise AnchorConfigError(f"set only one of ${ENV_KEY} and ${ENV_KEY_FILE}")
        if env.get(ENV_KEY):
            key = parse_key(env[ENV_KEY], f"${ENV_KEY}")
        elif env.get(ENV_KEY_FILE):
            key = _read_key_file(Path(env[ENV_KEY_FILE]), f"${ENV_KEY_FILE}")
        else:
            raise AnchorConfigError(f"${ENV_RPC} is set but no key: set ${ENV_KEY} (hex private key of a funded "
                                    f"account) or ${ENV_KEY_FILE}")
        cfg = AnchorConfig(rpc_url=_rpc(env[ENV_RPC], f"${ENV_RPC}"), key=key, source="environment")
    else:
        file = config_file or (Path(env[ENV_CONFIG]) if env.get(ENV_CONFIG) else None)
        if file is not None:
            cfg = _from_mapping(_read_json(file, f"config file {file}"), f"config file {file}", file.parent)
        elif dev_chain_file is not None and dev_chain_file.is_file():
            # The localnet writes this file (localnet/geth.py's DEV_CHAIN_FILE); apps pass its path, so that
            # the anchor service never depends on the localnet's code.
            path = dev_chain_file
            cfg = replace(_from_mapping(_read_json(path, str(path)), f"the localnet dev chain ({path})",
                                        path.parent), dev_chain_file=path)
    if cfg is None:
        raise AnchorConfigError(
            f"no anchor chain is configured: set ${ENV_RPC} and ${ENV_KEY} (e.g. a Sepolia or Hoodi RPC URL and a "
            f"funded key), pass --config FILE, or start a localnet with its dev chain (`fedledger localnet up`)")
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
