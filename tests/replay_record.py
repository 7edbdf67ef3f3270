"""The recorded chains behind tests/unit/test_replay.py: how they are recorded, written and read back.

`FEDLEDGER_RECORD_CHAIN=FILE pytest tests/unit/...` wraps StateMachine so that every chain the
tests drive records its genesis and, per committed block, the block context, the txs, each tx's
code and events, and the app hash; the chains are written to FILE when the session ends. The
replay test feeds the same genesis and blocks to today's state machine and requires the same
codes, events and app hash at every height: a refactor that changes one byte of state fails it.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

from fedledger.abci_app.canonical import canonical_bytes
from fedledger.abci_app.context import BlockContext, TxResult
from fedledger.abci_app.state_machine import DEFAULT_MODULES, StateMachine

__all__ = ["block_record", "install", "read", "write"]

RECORDED: list[dict[str, Any]] = []
# Set per test by tests/conftest.py: a test that monkeypatches the app may drive a chain that
# today's code, unpatched, would not reproduce.
REPLAYABLE = {"now": True}


def block_record(ctx: BlockContext, txs: list[bytes], results: list[TxResult], app_hash: bytes) -> dict[str, Any]:
    """What a replayed block must reproduce: per-tx codes, a digest of its events, and the app hash."""
    events = [[[e.type, [list(a) for a in e.attributes]] for e in r.events] for r in results]
    return {"height": ctx.height, "time_ns": ctx.time_ns, "block_hash": ctx.block_hash.hex(),
            "chain_id": ctx.chain_id, "txs": txs, "codes": [r.code for r in results],
            "events": hashlib.sha256(canonical_bytes(events)).hexdigest(), "app_hash": app_hash.hex()}


def install() -> None:
    """Wrap StateMachine's init_chain, finalize_block and commit so that committed blocks are recorded."""
    init, finalize, commit = StateMachine.init_chain, StateMachine.finalize_block, StateMachine.commit

    def init_chain(self: StateMachine, chain_id: str, app_state: bytes, *args: Any, **kwargs: Any) -> bytes:
        root = init(self, chain_id, app_state, *args, **kwargs)
        # Tests that add modules of their own, or patch the app, drive chains a replay cannot reproduce;
        # so do chains started with InitChain validators, which the recording does not keep.
        if self.modules == tuple(DEFAULT_MODULES) and REPLAYABLE["now"] and not any(args) and not any(kwargs.values()):
            self._recording = {"chain_id": chain_id, "genesis": app_state, "blocks": []}  # type: ignore[attr-defined]
            RECORDED.append(self._recording)  # type: ignore[attr-defined]
        return root

    def finalize_block(self: StateMachine, ctx: BlockContext, txs: list[bytes]) -> tuple[list[TxResult], bytes]:
        results, app_hash = finalize(self, ctx, txs)
        self._finalized = block_record(ctx, list(txs), results, app_hash)  # type: ignore[attr-defined]
        return results, app_hash

    def commit_block(self: StateMachine) -> int:
        height = commit(self)
        recording = getattr(self, "_recording", None)
        if recording is not None:
            recording["blocks"].append(self._finalized)  # type: ignore[attr-defined]
        return height

    StateMachine.init_chain = init_chain  # type: ignore[method-assign]
    StateMachine.finalize_block = finalize_block  # type: ignore[method-assign]
    StateMachine.commit = commit_block  # type: ignore[method-assign]


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


# Chains whose txs add up to more than this are left out, to keep the committed fixture small;
# the few that are (the defense tests' 100-trainer rounds) repeat paths smaller chains cover.
MAX_CHAIN_TX_BYTES = 200_000


def write(path: Path) -> int:
    """Write the distinct recorded chains that committed a block, within the size cap; return the blocks."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for c in RECORDED:
        size = sum(len(t) for b in c["blocks"] for t in b["txs"])
        key = hashlib.sha256(canonical_bytes([c["genesis"].hex(), [b["app_hash"] for b in c["blocks"]]])).hexdigest()
        if not c["blocks"] or size > MAX_CHAIN_TX_BYTES or key in seen:
            continue
        seen.add(key)
        out.append({**c, "genesis": _b64(c["genesis"]),
                    "blocks": [{**b, "txs": [_b64(t) for t in b["txs"]]} for b in c["blocks"]]})
    path.write_bytes(gzip.compress(json.dumps(out, sort_keys=True).encode(), mtime=0))
    return sum(len(c["blocks"]) for c in out)


def read(path: Path) -> list[dict[str, Any]]:
    """The recorded chains, with genesis, txs and block hashes as bytes again."""
    chains: list[dict[str, Any]] = json.loads(gzip.decompress(path.read_bytes()))
    for chain in chains:
        chain["genesis"] = base64.b64decode(chain["genesis"])
        for block in chain["blocks"]:
            block["txs"] = [base64.b64decode(t) for t in block["txs"]]
            block["block_hash"] = bytes.fromhex(block["block_hash"])
    return chains
