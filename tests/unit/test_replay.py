"""Replaying the recorded chains gives the same codes, events and app hash at every height.

tests/unit/fixtures/recorded_chains.json.gz holds every chain the governance, lifecycle, secagg,
reputation, privacy, anchor, EVM, screen and query tests drove on the day it was recorded (see
tests/replay_record.py for how to re-record); recorded_chains_extra.json.gz adds the few chains of the
inference, attestation and SD-JWT admission tests that cover the tx types the first one lacks. The zk
types are the exception (ZK_TYPES): a zk chain's genesis pins the sha256 of a randomly drawn 4 MiB dev SRS,
so its replay needs that file, which is too big to commit. A change that alters one byte of canonical state, one
event or one result code fails here: refactors of records and modules must keep state identical.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedledger.abci_app.context import BlockContext
from fedledger.abci_app.state_machine import DEFAULT_MODULES, StateMachine
from fedledger.abci_app.store import CommittedStore
from tests.replay_record import block_record, read

FIXTURE = Path(__file__).parent / "fixtures" / "recorded_chains.json.gz"
EXTRA = Path(__file__).parent / "fixtures" / "recorded_chains_extra.json.gz"
CHAINS = read(FIXTURE) + read(EXTRA)
# Not replayable without their SRS file (see above); test_zk_module.py drives them on a real chain.
ZK_TYPES = frozenset({"register_zk_circuit", "submit_inference_proof"})


def test_the_recording_covers_every_module() -> None:
    tx_types: set[str] = set()

    for chain in CHAINS:
        for block in chain["blocks"]:
            for raw in block["txs"]:
                try:
                    tx_types.add(json.loads(raw)["type"])
                except (ValueError, KeyError, TypeError):
                    continue  # garbage txs are part of the recording on purpose
    assert sum(len(c["blocks"]) for c in CHAINS) > 2000
    # Every tx type the default modules route, so a new type without a recorded chain fails here.
    registered = {name for module in DEFAULT_MODULES for name in module.routes} - ZK_TYPES
    assert len(registered) >= 27
    assert registered <= tx_types, sorted(registered - tx_types)


@pytest.mark.parametrize("index", range(len(CHAINS)))
def test_replay_gives_the_recorded_app_hashes(index: int) -> None:
    chain = CHAINS[index]
    store = CommittedStore(":memory:")
    try:
        sm = StateMachine(store, chain["chain_id"])
        sm.init_chain(chain["chain_id"], chain["genesis"])
        for block in chain["blocks"]:
            ctx = BlockContext(height=block["height"], time_ns=block["time_ns"], block_hash=block["block_hash"],
                               chain_id=block["chain_id"])
            results, app_hash = sm.finalize_block(ctx, block["txs"])
            sm.commit()
            replayed = block_record(ctx, block["txs"], results, app_hash)
            for field in ("codes", "events", "app_hash"):
                assert replayed[field] == block[field], (index, block["height"], field)
    finally:
        store.close()
