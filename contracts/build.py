"""Compile every contract in contracts/src with the pinned solc-js into contracts/build/<Contract>.json.

    python contracts/build.py            # (re)write contracts/build/
    python contracts/build.py --check    # rebuild in memory, exit 1 if contracts/build/ differs

The compiler is the npm registry's `solc` package at the exact version in contracts/package.json
(`npm ci --prefix contracts`, which `make install` runs), never a downloaded compiler binary. All
sources go into one Standard JSON compilation (so contracts can import each other as "./X.sol")
with fixed settings: optimizer on with 200 runs, EVM version `cancun`, and metadata without the
IPFS/Swarm hash (`bytecodeHash: none`), so the bytecode depends on the sources, the compiler and
these settings only, never on paths or comments' whitespace elsewhere. Each artifact is sorted,
indented JSON with a trailing newline, so the same inputs give the same bytes. Standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["SETTINGS", "build_artifacts", "compile_sources", "main", "solcjs_path", "write_artifacts"]

CONTRACTS = Path(__file__).resolve().parent
SRC = CONTRACTS / "src"
OUT = CONTRACTS / "build"
SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "metadata": {"bytecodeHash": "none"},
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object",
                                    "evm.deployedBytecode.immutableReferences"]}},
}


class BuildError(RuntimeError):
    """The compiler is missing, fails, or reports errors."""


def solcjs_path(contracts: Path = CONTRACTS) -> Path:
    """The pinned solc-js command installed by `npm ci --prefix contracts`; BuildError if absent."""
    path = contracts / "node_modules" / ".bin" / "solcjs"
    if not path.is_file():
        raise BuildError(f"{path} is missing: run `npm ci --prefix {contracts}` (or `make install`) to install the "
                         "pinned solc from the npm registry")
    return path


def _pinned_version(contracts: Path) -> str:
    pkg = json.loads((contracts / "package.json").read_text(encoding="utf-8"))
    return str(pkg["dependencies"]["solc"])


def compile_sources(sources: dict[str, str], contracts: Path = CONTRACTS) -> tuple[str, dict[str, Any]]:
    """Compile {file name: Solidity source} in one Standard JSON run; return (compiler version, output)."""
    solcjs = solcjs_path(contracts)
    node = shutil.which("node")
    if node is None:
        raise BuildError("node is not installed: solc-js needs Node.js")
    version = subprocess.run([node, str(solcjs), "--version"], capture_output=True, text=True, check=False,
                             stdin=subprocess.DEVNULL).stdout.strip()
    pinned = _pinned_version(contracts)
    if not version.startswith(pinned + "+"):
        raise BuildError(f"solc-js in {contracts}/node_modules is {version!r}, but package.json pins {pinned}: "
                         f"run `npm ci --prefix {contracts}`")
    request = {"language": "Solidity", "sources": {name: {"content": text} for name, text in sorted(sources.items())},
               "settings": SETTINGS}
    proc = subprocess.run([node, str(solcjs), "--standard-json"], input=json.dumps(request), capture_output=True,
                          text=True, check=False)
    # solc-js prints a banner line before the JSON when it falls back to a non-native build; find the object.
    text = proc.stdout[proc.stdout.find("{"):] if "{" in proc.stdout else ""
    try:
        output: dict[str, Any] = json.loads(text)
    except ValueError as exc:
        raise BuildError(f"solc-js did not answer with JSON (status {proc.returncode}): "
                         f"{(proc.stderr or proc.stdout).strip()[-2000:]}") from exc
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise BuildError("compilation failed:\n" + "\n".join(str(e.get("formattedMessage", e)) for e in errors))
    return version, output


def build_artifacts(src: Path = SRC, contracts: Path = CONTRACTS) -> dict[str, bytes]:
    """Compile every src/*.sol; return {artifact file name: its exact bytes}."""
    files = sorted(src.glob("*.sol"))
    if not files:
        raise BuildError(f"no Solidity sources in {src}")
    sources = {f.name: f.read_text(encoding="utf-8") for f in files}
    version, output = compile_sources(sources, contracts)
    out: dict[str, bytes] = {}
    for source_name in sorted(output.get("contracts", {})):
        for name, result in sorted(output["contracts"][source_name].items()):
            if f"{name}.json" in out:
                raise BuildError(f"two contracts are named {name}; contract names must be unique across {src}")
            artifact = {
                "contractName": name,
                "sourceName": source_name,
                "sourceSha256": hashlib.sha256(sources[source_name].encode("utf-8")).hexdigest(),
                "compiler": {"name": "solc-js", "version": version},
                "settings": {k: v for k, v in SETTINGS.items() if k != "outputSelection"},
                "abi": result["abi"],
                "bytecode": "0x" + result["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x" + result["evm"]["deployedBytecode"]["object"],
                # Byte ranges of the runtime code that the constructor fills in (e.g. `immutable owner`):
                # a deployed contract's code equals deployedBytecode everywhere else.
                "immutableReferences": sorted(
                    [ref["start"], ref["length"]]
                    for refs in result["evm"]["deployedBytecode"].get("immutableReferences", {}).values()
                    for ref in refs),
            }
            out[f"{name}.json"] = (json.dumps(artifact, indent=2, sort_keys=True) + "\n").encode("utf-8")
    return out


def write_artifacts(artifacts: dict[str, bytes], out: Path = OUT) -> None:
    """Replace the *.json files of `out` with `artifacts`."""
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.json"):
        if stale.name not in artifacts:
            stale.unlink()
    for name, data in sorted(artifacts.items()):
        (out / name).write_bytes(data)


def main(argv: list[str] | None = None) -> int:
    """Build (or --check) the artifacts; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with contracts/build instead of writing")
    args = parser.parse_args(argv)
    try:
        artifacts = build_artifacts()
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.check:
        existing = {p.name: p.read_bytes() for p in OUT.glob("*.json")}
        if existing != artifacts:
            differ = sorted(set(existing) ^ set(artifacts) | {n for n in artifacts if existing.get(n) != artifacts[n]})
            print(f"error: contracts/build is stale for {differ}; run `python contracts/build.py`", file=sys.stderr)
            return 1
        print(f"contracts/build is up to date ({len(artifacts)} artifacts)")
        return 0
    write_artifacts(artifacts)
    print(f"wrote {', '.join(sorted(artifacts))} to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
