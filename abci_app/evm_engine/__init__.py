"""The embedded EVM: py-evm executing Ethereum txs and policy calls over FedLedger's authenticated store.

Importing py-evm raises the interpreter's recursion limit for good (py-evm to 12288, py_ecc to
100000), which would let deeply nested JSON in a tx exhaust the C stack of the ABCI process. The
limit is put back here, right after the import, and raised only while EVM code runs
(`fedledger.abci_app.evm_engine.depth.evm_recursion`).
"""

from __future__ import annotations

import sys

_LIMIT = sys.getrecursionlimit()
import eth  # noqa: E402,F401  - imported here first, so that the limit can be restored
import eth.vm.forks.prague  # noqa: E402,F401  - its precompiles import py_ecc, which raises the limit too

sys.setrecursionlimit(_LIMIT)
