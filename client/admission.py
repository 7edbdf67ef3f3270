"""Getting admitted with a credential you were given (a localnet's development credential: localnet/dev.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fedledger.sdk.errors import ClientError

__all__ = ["load_credential"]


def load_credential(path: Path) -> dict[str, Any]:
    """A credential JSON file, with a clear error if it is not one."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ClientError(f"cannot read a credential from {path}: {exc}") from exc
    if not isinstance(value, dict):
        raise ClientError(f"{path} does not hold a JSON object (a Verifiable Credential)")
    return value
