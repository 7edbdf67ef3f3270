"""Child process of tests/unit/test_determinism_processes.py: replay the recorded chains, print every app hash.

Run as `python -m tests.replay_child` from the repository root. It replays every chain of the
recorded fixtures (tests/replay_record.py) on a fresh in-memory store and prints one line per
committed block, `<chain> <height> <app hash hex>`, so that the parent can compare runs made
under different PYTHONHASHSEED values block by block.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fedledger.abci_app.context import BlockContext
from fedledger.abci_app.state_machine import StateMachine
from fedledger.abci_app.store import CommittedStore
from tests.replay_record import read

FIXTURES = Path(__file__).parent / "unit" / "fixtures"
FILES = ("recorded_chains.json.gz", "recorded_chains_extra.json.gz")


def replay_lines() -> list[str]:
    """`<chain> <height> <app hash>` for every committed block of every recorded chain, in order."""
    lines: list[str] = []
    chains = [c for name in FILES for c in read(FIXTURES / name)]
    for index, chain in enumerate(chains):
        store = CommittedStore(":memory:")
        try:
            sm = StateMachine(store, chain["chain_id"])
            lines.append(f"{index} 0 {sm.init_chain(chain['chain_id'], chain['genesis']).hex()}")
            for block in chain["blocks"]:
                ctx = BlockContext(height=block["height"], time_ns=block["time_ns"], block_hash=block["block_hash"],
                                   chain_id=block["chain_id"])
                _, app_hash = sm.finalize_block(ctx, block["txs"])
                sm.commit()
                lines.append(f"{index} {block['height']} {app_hash.hex()}")
        finally:
            store.close()
    return lines


if __name__ == "__main__":
    sys.stdout.write("\n".join(replay_lines()) + "\n")
