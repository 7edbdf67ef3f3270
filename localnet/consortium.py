"""A localnet's development consortium: one organization, `local`, whose issuer and admin key lives in the net home.

Real consortia put their organizations and issuer DIDs in genesis themselves (`localnet up`
takes no part in that). For a local network the operator is everyone, so the net generates an
issuer key and registers it; `fedledger admit` then issues credentials with it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from fedledger.abci_app.did.credentials import ROLES
from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.localnet.errors import LocalnetError
from fedledger.localnet.evm_genesis import default_evm_section
from fedledger.localnet.zk_srs import dev_zk_section

__all__ = ["DEV_ORG", "ISSUER_FILE", "dev_app_state", "dev_issuer_key"]

DEV_ORG = "local"
ISSUER_FILE = "issuer.key"
DEV_ENROLLMENT_CAP = 10_000


def _write_key(path: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(raw + "\n")
    return key


def dev_issuer_key(home: Path) -> Ed25519PrivateKey:
    """The development issuer key of the net in `home`."""
    path = home / ISSUER_FILE
    try:
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(path.read_text().strip()))
    except FileNotFoundError as exc:
        raise LocalnetError(f"{path} not found: this net has no development issuer (was it generated with "
                            "its own genesis organizations?); pass --credential FILE instead") from exc
    except ValueError as exc:
        raise LocalnetError(f"{path} is not an Ed25519 key: {exc}") from exc


def dev_app_state(home: Path) -> dict[str, Any]:
    """Genesis app_state with the `local` organization, creating the issuer key on first use."""
    path = home / ISSUER_FILE
    key = dev_issuer_key(home) if path.exists() else _write_key(path)
    did = did_from_private_key(key)
    # The issuer key is also the organization's admin, so `fedledger gov` works on a localnet.
    state: dict[str, Any] = {"identity": {"organizations": [{
        "id": DEV_ORG, "name": "Local development consortium", "issuers": [did], "admins": [did],
        "enrollment_cap": DEV_ENROLLMENT_CAP, "roles": list(ROLES),  # inference included: the demo serves
    }]}, "evm": default_evm_section()}  # the default policy contracts, deployed at genesis
    zk = dev_zk_section(home)  # a development SRS (never for production), so critical tasks can prove
    if zk is not None:
        state["zk"] = zk
    return state
