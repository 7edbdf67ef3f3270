"""The anchoring key at rest: an encrypted eth-account keystore file (Web3 Secret Storage v3, scrypt).

`write_keystore` encrypts a key with `Account.encrypt` into a new file readable only by its
owner (mode 0600, never overwriting one unless asked); `read_keystore` decrypts one. Errors
are AnchorConfigError and never echo the key or the password.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from fedledger.node.anchor.errors import AnchorConfigError

__all__ = ["MIN_PASSWORD_CHARS", "read_keystore", "write_keystore"]

MIN_PASSWORD_CHARS = 8  # a keystore is only as strong as its password; refuse the trivially short ones


def read_keystore(path: Path, password: str, where: str) -> str:
    """The private key in an encrypted eth-account keystore file; AnchorConfigError if unreadable or the password
    is wrong (neither is echoed)."""
    from eth_account import Account

    try:
        data = json.loads(path.expanduser().read_text(encoding="utf-8"))
    except OSError as exc:
        raise AnchorConfigError(f"cannot read the anchor keystore {path} (from {where}): {exc}") from exc
    except ValueError as exc:
        raise AnchorConfigError(f"the anchor keystore {path} (from {where}) is not JSON: {exc}") from exc
    if not isinstance(data, dict) or "crypto" not in data and "Crypto" not in data:
        raise AnchorConfigError(f"{path} (from {where}) is not an encrypted keystore file (no crypto section); make "
                                "one with `fedledger anchor keystore new` or `… import`")
    try:
        key = bytes(Account.decrypt(data, password))
    except ValueError as exc:
        # eth-account says "MAC mismatch" for a wrong password; other ValueErrors mean a damaged file.
        reason = "wrong password" if "mac" in str(exc).lower() else f"cannot decrypt it: {exc}"
        raise AnchorConfigError(f"the anchor keystore {path} (from {where}): {reason}") from None
    except (KeyError, TypeError) as exc:
        raise AnchorConfigError(f"the anchor keystore {path} (from {where}) is malformed: missing {exc}") from None
    return "0x" + key.hex()



def write_keystore(path: Path, key: str, password: str, *, force: bool = False) -> str:
    """Encrypt `key` (0x hex) with `password` into `path` (mode 0600); returns the key's address.

    AnchorConfigError if the password is shorter than MIN_PASSWORD_CHARS, or the file exists and
    `force` is not set (a keystore is never overwritten by accident: it may hold the only copy).
    """
    from eth_account import Account

    if len(password) < MIN_PASSWORD_CHARS:
        raise AnchorConfigError(f"the keystore password must have at least {MIN_PASSWORD_CHARS} characters")
    path = path.expanduser()
    if path.exists() and not force:
        raise AnchorConfigError(f"{path} exists; it may hold the only copy of a key, so it is not overwritten "
                                "(pass --force to replace it)")
    data = Account.encrypt(bytes.fromhex(key.removeprefix("0x")), password)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
        fh.write("\n")
    os.replace(tmp, path)
    return str(Account.from_key(key).address)
