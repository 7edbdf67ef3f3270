"""Getting admitted: issue a development credential from a localnet's issuer, or use one you were given."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.abci_app.did.vc import issue_admission_credential
from fedledger.client.errors import ClientError
from fedledger.client.keys import Key

__all__ = ["dev_credential", "load_credential"]


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def dev_credential(localnet_home: Path, key: Key, role: str, tasks: list[str] | None = None,
                   valid_days: int = 365) -> dict[str, Any]:
    """A credential for `key`'s did:key, signed by the localnet's development issuer (organization `local`)."""
    from fedledger.localnet.consortium import DEV_ORG, dev_issuer_key

    issuer = dev_issuer_key(localnet_home)
    now = datetime.now(UTC).replace(microsecond=0)
    # validFrom a little in the past: block times trail the client's clock by up to a block or two.
    return issue_admission_credential(
        issuer, did_from_private_key(issuer), did_from_private_key(key.private), DEV_ORG, role, tasks or [],
        _iso(now - timedelta(minutes=5)), _iso(now + timedelta(days=valid_days)), f"urn:uuid:{uuid.uuid4()}",
    )


def load_credential(path: Path) -> dict[str, Any]:
    """A credential JSON file, with a clear error if it is not one."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ClientError(f"cannot read a credential from {path}: {exc}") from exc
    if not isinstance(value, dict):
        raise ClientError(f"{path} does not hold a JSON object (a Verifiable Credential)")
    return value
