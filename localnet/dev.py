"""What a localnet on this machine hands to the people and services using it: a development credential, a trust root.

Both read the localnet's files (its development issuer's key, its nodes' genesis.json), so they
live with the localnet; the sdk and the services take the credential and the trust root as values.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.abci_app.did.vc import issue_admission_credential
from fedledger.localnet.config import load_spec
from fedledger.localnet.consortium import DEV_ORG, dev_issuer_key
from fedledger.sdk.errors import ClientError
from fedledger.sdk.keys import Key
from fedledger.sdk.lightclient import TrustRoot

__all__ = ["dev_credential", "localnet_trust_root"]


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def dev_credential(localnet_home: Path, key: Key, role: str, tasks: list[str] | None = None,
                   valid_days: int = 365) -> dict[str, Any]:
    """A credential for `key`'s did:key, signed by the localnet's development issuer (organization `local`)."""
    issuer = dev_issuer_key(localnet_home)
    now = datetime.now(UTC).replace(microsecond=0)
    # validFrom a little in the past: block times trail the client's clock by up to a block or two.
    return issue_admission_credential(
        issuer, did_from_private_key(issuer), did_from_private_key(key.private), DEV_ORG, role, tasks or [],
        _iso(now - timedelta(minutes=5)), _iso(now + timedelta(days=valid_days)), f"urn:uuid:{uuid.uuid4()}",
    )


def localnet_trust_root(home: str | Path, node: int = 0) -> TrustRoot:
    """The trust root of a localnet created on this machine: its node's genesis.json on local disk."""
    spec = load_spec(Path(home).expanduser())
    if not 0 <= node < len(spec.nodes):
        raise ClientError(f"the localnet in {home} has no node {node}")
    return TrustRoot.from_genesis_file(spec.nodes[node].cometbft_home / "config" / "genesis.json")
