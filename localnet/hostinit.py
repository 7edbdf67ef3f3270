"""`fedledger node init`: make one consortium host's private keys in its own home and publish its card.

The home gets CometBFT's validator and node keys (``cometbft init``), an Ed25519 issuer key for the
organization's DID, ``host.json`` (organization, p2p host and ports) and ``card.json`` (the public
card, see localnet/card.py). Private keys never leave the home: the ceremony exchanges cards only.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from fedledger.localnet.card import HostCard, load_card, parse_p2p_address, sign_card
from fedledger.localnet.config import PORT_STRIDE
from fedledger.localnet.errors import BinaryError, CardError, HostNotInitializedError, LocalnetError

__all__ = [
    "CARD_FILE",
    "HOST_FILE",
    "ISSUER_KEY_FILE",
    "HostConfig",
    "find_cometbft_binary",
    "init_host",
    "load_host",
    "read_issuer_key",
    "read_validator_key",
]

HOST_FILE = "host.json"
CARD_FILE = "card.json"
ISSUER_KEY_FILE = "issuer.key"
_HOST_VERSION = 1
_CMD_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class HostConfig:
    """What `node init` recorded about a host: its organization, public p2p host and first port."""

    home: Path
    org: str
    name: str
    host: str | None
    base_port: int

    @property
    def cometbft_home(self) -> Path:
        """The host's ``cometbft --home`` (keys, config, chain data)."""
        return self.home / "cometbft"

    @property
    def card(self) -> HostCard:
        """The host's own public card (checked on every read)."""
        return load_card(self.home / CARD_FILE)


def find_cometbft_binary(explicit: Path | None = None) -> Path:
    """The pinned cometbft: ``explicit``, $COMETBFT_BIN, the checkout's bin/ or PATH; BinaryError if none.

    Unlike `localnet up`, a consortium host never builds cometbft on the fly: a missing binary is an
    installation step the operator must take (`fedledger localnet install`).
    """
    from fedledger.localnet.binaries import find_pinned
    from fedledger.localnet.cometbft import COMETBFT_VERSION, check_cometbft, default_bin_dir

    if explicit is not None:
        check_cometbft(explicit)
        return explicit.resolve()
    reasons: list[str] = []
    found = find_pinned("COMETBFT_BIN", default_bin_dir(), "cometbft", check_cometbft, reasons.append)
    if found is None:
        why = f" ({'; '.join(reasons)})" if reasons else ""
        raise BinaryError(f"no cometbft {COMETBFT_VERSION} binary found{why}: install it with "
                          "`fedledger localnet install` or pass --cometbft / set COMETBFT_BIN")
    return found


def _run(cmd: list[str]) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_CMD_TIMEOUT_S, check=False,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BinaryError(f"cannot run {' '.join(cmd)}: {exc}") from exc
    if proc.returncode != 0:
        raise BinaryError(f"{' '.join(cmd)} failed with status {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return proc.stdout


def _write_private(path: Path, text: str) -> None:
    # O_EXCL: a second init must never overwrite a key that may already be in a genesis.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def read_issuer_key(home: Path) -> Ed25519PrivateKey:
    """The organization's issuer (and admin) key kept in the host's home."""
    path = home / ISSUER_KEY_FILE
    try:
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(path.read_text().strip()))
    except FileNotFoundError:
        raise HostNotInitializedError(f"{path} not found: run `fedledger node init` for this home") from None
    except (OSError, ValueError) as exc:
        raise LocalnetError(f"{path} is not an Ed25519 key: {exc}") from exc


def read_validator_key(cometbft_home: Path) -> Ed25519PrivateKey:
    """The validator's private key from CometBFT's priv_validator_key.json (base64 seed || pubkey)."""
    path = cometbft_home / "config" / "priv_validator_key.json"
    try:
        data = json.loads(path.read_text())
        raw = base64.b64decode(data["priv_key"]["value"], validate=True)
        if data["priv_key"]["type"] != "tendermint/PrivKeyEd25519" or len(raw) != 64:
            raise ValueError("not an Ed25519 key")
        return Ed25519PrivateKey.from_private_bytes(raw[:32])
    except FileNotFoundError:
        raise HostNotInitializedError(f"{path} not found: run `fedledger node init` for this home") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LocalnetError(f"cannot read the validator key {path}: {exc!r}") from exc


def init_host(home: Path, org: str, *, name: str | None = None, host: str | None = None,
              base_port: int = 26600, cometbft_bin: Path | None = None) -> HostCard:
    """Create the host's keys and card in ``home`` (which must not hold a host yet); return the card.

    ``host`` is the address the other organizations dial (IP or DNS name); the card then carries
    ``node_id@host:base_port``. The host listens on base_port (p2p), +1 (RPC), +2 (ABCI), +8 (EVM RPC).
    """
    if not isinstance(base_port, int) or not 1024 <= base_port <= 65535 - PORT_STRIDE:
        raise LocalnetError(f"base port {base_port!r} must be in 1024..{65535 - PORT_STRIDE}")
    if host is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}", host):
        raise CardError(f"--host {host!r} is not a host name or IPv4 address")
    home = home.expanduser().resolve()
    if (home / HOST_FILE).exists() or (home / "cometbft").exists():
        raise LocalnetError(f"{home} already holds a host ({HOST_FILE} or cometbft/): its keys may be in a "
                            "genesis already, so init refuses to replace them; use a new --home")
    binary = find_cometbft_binary(cometbft_bin)
    # Check the org id before any key exists, with the chain's own rule (via a throwaway card).
    probe = Ed25519PrivateKey.generate()
    sign_card(org, name or org, probe, probe, "0" * 40, None)

    home.mkdir(parents=True, exist_ok=True)
    (home / "app").mkdir(exist_ok=True)
    _run([str(binary), "init", "--home", str(home / "cometbft")])
    node_id = _run([str(binary), "show-node-id", "--home", str(home / "cometbft")]).strip()
    if not re.fullmatch(r"[0-9a-f]{40}", node_id):
        raise BinaryError(f"cometbft show-node-id printed {node_id!r}, expected 40 hex digits")
    issuer = Ed25519PrivateKey.generate()
    raw = issuer.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex()
    _write_private(home / ISSUER_KEY_FILE, raw + "\n")
    p2p = f"{node_id}@{host}:{base_port}" if host is not None else None
    if p2p is not None:
        parse_p2p_address(p2p)
    card = sign_card(org, name or org, issuer, read_validator_key(home / "cometbft"), node_id, p2p)
    config: dict[str, Any] = {"version": _HOST_VERSION, "org": org, "name": name or org, "host": host,
                              "base_port": base_port}
    (home / HOST_FILE).write_text(json.dumps(config, indent=2) + "\n")
    (home / CARD_FILE).write_text(json.dumps(card.to_dict(), indent=2) + "\n")
    return card


def load_host(home: Path) -> HostConfig:
    """Read ``<home>/host.json``; HostNotInitializedError when the home (or the file) is missing."""
    home = home.expanduser().resolve()
    path = home / HOST_FILE
    if not home.is_dir():
        raise HostNotInitializedError(f"host home {home} does not exist: run `fedledger node init --home {home}`")
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise HostNotInitializedError(f"{home} holds no host ({HOST_FILE} missing): run "
                                      f"`fedledger node init --home {home}` first") from None
    except (OSError, ValueError) as exc:
        raise LocalnetError(f"cannot read {path}: {exc}") from exc
    try:
        if data["version"] != _HOST_VERSION:
            raise LocalnetError(f"{path} has version {data['version']!r}, expected {_HOST_VERSION}")
        return HostConfig(home=home, org=str(data["org"]), name=str(data["name"]),
                          host=None if data["host"] is None else str(data["host"]), base_port=int(data["base_port"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise LocalnetError(f"{path} is malformed: {exc!r}") from exc
