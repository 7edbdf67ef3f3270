"""Replaying the recorded chains gives the same codes, events and app hash at every height.

tests/unit/fixtures/recorded_chains.json.gz holds every chain the governance, lifecycle, secagg,
reputation, privacy, anchor, EVM, screen and query tests drove on the day it was recorded (see
tests/replay_record.py for how to re-record). A change that alters one byte of canonical state, one
event or one result code fails here: refactors of records and modules must keep state identical.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedledger.abci_app.context import BlockContext
from fedledger.abci_app.state_machine import StateMachine
from fedledger.abci_app.store import CommittedStore
from tests.replay_record import block_record, read

FIXTURE = Path(__file__).parent / "fixtures" / "recorded_chains.json.gz"
CHAINS = read(FIXTURE)


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
    for needed in ("admit", "rotate_key", "revoke_credential", "create_task", "open_round", "commit_contribution",
                   "close_round", "fail_round", "propose_version", "attest_version", "submit_proposal", "vote",
                   "record_anchor", "bind_evm_address", "secagg_keys", "secagg_shares", "secagg_unmask"):
        assert any(t == needed for t in tx_types), (needed, sorted(tx_types))


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
