"""The EVM section of a localnet's genesis: the default policy contracts, from the committed build artifacts.

The artifacts are contracts/build/<Name>.json, compiled reproducibly by contracts/build.py with
the pinned solc-js; the genesis carries their init code, so every validator deploys the same bytes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from fedledger.localnet.errors import LocalnetError

__all__ = ["CONTRACTS_BUILD", "DEFAULT_POLICIES", "default_evm_section", "load_artifact"]

# Editable installs (the project's only kind) keep the repository next to the package.
CONTRACTS_BUILD = Path(__file__).resolve().parents[1] / "contracts" / "build"
DEFAULT_POLICIES: tuple[tuple[str, str], ...] = (("AdmissionPolicy", "admission"), ("PromotionPolicy", "promotion"))
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


def load_artifact(name: str, build_dir: Path = CONTRACTS_BUILD) -> dict[str, Any]:
    """The build artifact of contract `name` (abi, bytecode, deployedBytecode); LocalnetError if missing."""
    if not _NAME_RE.match(name):
        raise LocalnetError(f"{name!r} is not a contract name")
    path = build_dir / f"{name}.json"
    try:
        artifact = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LocalnetError(f"{path} is missing: build the contracts with `python contracts/build.py`") from None
    except (OSError, ValueError) as exc:
        raise LocalnetError(f"cannot read {path}: {exc}") from exc
    if not isinstance(artifact, dict) or not isinstance(artifact.get("bytecode"), str) \
            or not isinstance(artifact.get("abi"), list):
        raise LocalnetError(f"{path} is not a contract artifact (abi, bytecode)")
    return artifact


def default_evm_section(build_dir: Path = CONTRACTS_BUILD) -> dict[str, Any]:
    """`{"contracts": [...]}` deploying the default AdmissionPolicy and PromotionPolicy at genesis."""
    return {"contracts": [
        {"name": name, "init_code": load_artifact(name, build_dir)["bytecode"], "default_policy": kind}
        for name, kind in DEFAULT_POLICIES
    ]}
