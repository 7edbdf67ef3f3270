"""Import rules checked where they bite: in a fresh interpreter, by what `sys.modules` holds afterwards.

test_layers.py and test_module_boundaries.py read import statements; a third-party library can
still pull a forbidden module in at import time (pyld imported `requests` into consensus this
way). Each rule here imports every module of its packages (walking them with pkgutil) in one new
`python -c` process and lists the forbidden modules that ended up loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.imports import ROOT

# Imports each named package and every module below it, then prints the loaded forbidden names.
PROBE = """
import importlib, json, pkgutil, sys
packages, forbidden = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for package in packages:
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(getattr(module, "__path__", []), package + "."):
        importlib.import_module(info.name)
print(json.dumps(sorted(n for n in sys.modules if any(n == f or n.startswith(f + ".") for f in forbidden))))
"""

NETWORK_AND_ML = ["torch", "requests", "aiohttp", "urllib3", "httpx", "websockets", "web3", "ipfshttpclient",
                  "ray", "flwr", "fastapi", "uvicorn", "grpc"]
OFF_CHAIN = ["fedledger.client", "fedledger.node", "fedledger.sdk", "fedledger.apps", "fedledger.ipfs",
             "fedledger.localnet", "fedledger.bench", "tests"]
AGGREGATOR = ["fedledger.node.aggregator", "fedledger.node.aggregation", "fedledger.node.secure_aggregate",
              "fedledger.node.robust"]


def loaded(packages: list[str], forbidden: list[str]) -> list[str]:
    """The forbidden modules a fresh interpreter holds after importing every module of `packages`."""
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(packages), json.dumps(forbidden)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found: list[str] = json.loads(proc.stdout.splitlines()[-1])
    return found


def test_the_probe_sees_what_a_package_loads() -> None:
    # The content store talks to Kubo through ipfshttpclient: the probe must report it.
    assert "ipfshttpclient" in loaded(["fedledger.ipfs"], ["ipfshttpclient", "torch"])


def test_consensus_loads_nothing_off_chain() -> None:
    assert loaded(["fedledger.abci_app"], NETWORK_AND_ML + OFF_CHAIN) == []


def test_the_aggregator_and_the_content_store_never_load_torch() -> None:
    assert loaded([*AGGREGATOR, "fedledger.ipfs"], ["torch"]) == []
