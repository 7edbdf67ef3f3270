"""Local Ed25519 key store: one JSON file per named key, readable only by its owner."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from fedledger.sdk.errors import KeyStoreError

__all__ = ["Key", "KeyStore", "default_home"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def default_home() -> Path:
    """Client home: $FEDLEDGER_HOME or ~/.fedledger."""
    return Path(os.environ.get("FEDLEDGER_HOME", Path.home() / ".fedledger"))


@dataclass(frozen=True)
class Key:
    """A named signing key."""

    name: str
    private: Ed25519PrivateKey

    @property
    def public_hex(self) -> str:
        """The public key in lower-case hex: the signer id on chain."""
        return self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()

    @staticmethod
    def generate(name: str) -> Key:
        """A fresh random key."""
        return Key(name, Ed25519PrivateKey.generate())


class KeyStore:
    """Keys under HOME/keys/NAME.json (mode 0600)."""

    def __init__(self, home: Path | None = None) -> None:
        self.dir = (home or default_home()) / "keys"

    def _path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise KeyStoreError(f"invalid key name {name!r}: use letters, digits, '.', '_' or '-'")
        return self.dir / f"{name}.json"

    def create(self, name: str) -> Key:
        """Generate and save a new key; refuses to overwrite an existing one."""
        path = self._path(name)
        if path.exists():
            raise KeyStoreError(f"key {name!r} already exists at {path}; choose another name")
        key = Key.generate(name)
        self.save(key)
        return key

    def save(self, key: Key) -> None:
        """Write a key file readable only by the owner."""
        path = self._path(key.name)
        self.dir.mkdir(parents=True, exist_ok=True)
        seed = key.private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex()
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"name": key.name, "public_key": key.public_hex, "private_key": seed}, fh)
        os.replace(tmp, path)

    def load(self, name: str) -> Key:
        """Load a key by name, with a clear error if it is missing or corrupt."""
        path = self._path(name)
        if not path.exists():
            raise KeyStoreError(f"no key named {name!r} in {self.dir}; create it with `fedledger keys create {name}`")
        try:
            data = json.loads(path.read_text())
            private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(data["private_key"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyStoreError(f"key file {path} is corrupt: {exc}") from exc
        return Key(name, private)

    def names(self) -> list[str]:
        """Names of all stored keys, sorted."""
        return sorted(p.stem for p in self.dir.glob("*.json")) if self.dir.exists() else []
