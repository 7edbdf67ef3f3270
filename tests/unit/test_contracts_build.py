"""The committed contract artifacts are exactly what the pinned solc-js builds from contracts/src (byte for byte)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from types import ModuleType

import pytest

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"


def build_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("contracts_build", CONTRACTS / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rebuilt() -> dict[str, bytes]:
    if not (CONTRACTS / "node_modules" / ".bin" / "solcjs").is_file() or shutil.which("node") is None:
        pytest.skip("the pinned solc-js is not installed: run `make install` (npm ci --prefix contracts)")
    artifacts: dict[str, bytes] = build_module().build_artifacts()
    return artifacts


def test_rebuild_matches_the_committed_artifacts(rebuilt: dict[str, bytes]) -> None:
    committed = {p.name: p.read_bytes() for p in (CONTRACTS / "build").glob("*.json")}
    assert sorted(committed) == sorted(rebuilt), "contracts/build and contracts/src list different contracts"
    for name, data in rebuilt.items():
        assert committed[name] == data, f"contracts/build/{name} is not what contracts/src builds to: rebuild it " \
                                        "with `make contracts` and commit"


def test_artifacts_pin_compiler_and_settings(rebuilt: dict[str, bytes]) -> None:
    pinned = json.loads((CONTRACTS / "package.json").read_text())["dependencies"]["solc"]
    lock = json.loads((CONTRACTS / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/solc"]["version"] == pinned
    for data in rebuilt.values():
        artifact = json.loads(data)
        assert artifact["compiler"]["version"].startswith(pinned + "+commit.")
        assert artifact["settings"] == {"evmVersion": "cancun", "metadata": {"bytecodeHash": "none"},
                                        "optimizer": {"enabled": True, "runs": 200}}
        # With bytecodeHash none the CBOR trailer is {"solc": version} alone: no hash of paths or metadata.
        version = "".join(f"{int(x):02x}" for x in pinned.split("."))
        assert artifact["deployedBytecode"].endswith("a164736f6c6343" + version + "000a")


def test_anchor_contract_interface(rebuilt: dict[str, bytes]) -> None:
    artifact = json.loads(rebuilt["CheckpointAnchor.json"])
    sigs = {(e["type"], e.get("name")) for e in artifact["abi"]}
    assert {("function", "anchor"), ("function", "owner"), ("event", "Anchored"), ("error", "NotOwner"),
            ("error", "BadRange"), ("constructor", None)} == sigs
    event = next(e for e in artifact["abi"] if e.get("name") == "Anchored")
    assert [(i["name"], i["type"], i["indexed"]) for i in event["inputs"]] == [
        ("chainId", "bytes32", True), ("root", "bytes32", False), ("fromHeight", "uint64", False),
        ("toHeight", "uint64", False)]
    assert artifact["immutableReferences"], "owner is immutable: its slots are listed for the code check"
