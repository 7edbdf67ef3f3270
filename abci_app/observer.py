"""Prometheus metrics of the ABCI app: observations of what consensus decided, never inputs to it.

`ObservedApp` is FedLedgerApp with a look at each response after the state machine produced
it: the block's height, every tx's type and result code, commitments accepted and rejected
(the reason is the tx code's name), rounds opened, closed and failed with their durations
(in blocks, and in seconds of *block time*, the consensus timestamps, so no wall clock is read
here either), ε spent (from the commit events' `epsilon_micro`) and version decisions
(quarantines among them). The metrics live in a CollectorRegistry of their own, outside the
state machine: nothing here is written to the store or returned to CometBFT, and a failure
while observing is logged and swallowed, so an observer bug cannot change or stop consensus.

`python -m fedledger.abci_app --metrics-port N` serves them over HTTP (off by default; the
localnet turns it on).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from fedledger.abci_app.app import FedLedgerApp
from fedledger.abci_app.canonical import CanonicalError, parse_canonical
from fedledger.abci_app.errors import Code
from fedledger.abci_app.proto import types as pb
from fedledger.abci_app.snapshots import SnapshotManager
from fedledger.abci_app.state_machine import StateMachine

__all__ = ["AppMetrics", "ObservedApp", "code_name"]

log = logging.getLogger(__name__)

COMMIT_TX = "commit_contribution"
MAX_OPEN_ROUNDS = 10_000  # rounds remembered for their durations; beyond this the oldest are forgotten
_ROUND_BLOCKS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
_ROUND_SECONDS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800)


def code_name(code: int) -> str:
    """The registered name of a tx result code ("OK" for 0, "CODE_<n>" for one this build does not know)."""
    if code == 0:
        return "OK"
    try:
        return Code(code).name
    except ValueError:
        return f"CODE_{code}"


def _tx_type(raw: bytes) -> str:
    """The envelope's `type`, or "undecodable" (the label set stays bounded: types are short identifiers)."""
    try:
        env = parse_canonical(raw)
    except CanonicalError:
        return "undecodable"
    kind = env.get("type") if isinstance(env, dict) else None
    return kind if isinstance(kind, str) and len(kind) <= 64 and kind.isidentifier() else "undecodable"


def _attrs(event: pb.Event) -> dict[str, str]:
    return {a.key: a.value for a in event.attributes}


class AppMetrics:
    """The ABCI app's metric families, in their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.height = Gauge("fedledger_app_height", "Last finalized block height", registry=r)
        self.blocks = Counter("fedledger_app_blocks", "Blocks finalized", registry=r)
        self.txs = Counter("fedledger_app_txs", "Txs in finalized blocks, by type and result code",
                           ["type", "code"], registry=r)
        self.checktx = Counter("fedledger_app_checktx", "New txs checked for the mempool, by type and result code",
                               ["type", "code"], registry=r)
        self.commitments = Counter(
            "fedledger_app_commitments", "commit_contribution txs accepted or rejected, with the reason (code name) "
            "and where (checktx: refused at the mempool; block: failed in a block)",
            ["result", "reason", "stage"], registry=r)
        self.rounds = Counter("fedledger_app_rounds", "Round events: opened, closed (by status), failed",
                              ["event", "status"], registry=r)
        self.round_blocks = Histogram("fedledger_app_round_duration_blocks", "Blocks from open_round to its close or "
                                      "failure", buckets=_ROUND_BLOCKS, registry=r)
        self.round_seconds = Histogram("fedledger_app_round_duration_seconds", "Block time from open_round to its "
                                       "close or failure", buckets=_ROUND_SECONDS, registry=r)
        self.epsilon = Counter("fedledger_app_epsilon_spent", "Privacy budget ε spent by accepted commitments",
                               ["task"], registry=r)
        self.versions = Counter("fedledger_app_version_decisions", "Model version decisions, by status",
                                ["status"], registry=r)
        self.quarantines = Counter("fedledger_app_quarantines", "Model versions quarantined", ["task"], registry=r)
        self._open: dict[tuple[str, str], tuple[int, int]] = {}  # (task, round) -> (height, block time ns)

    # ------------------------------------------------------------------ observations
    def observe_check(self, raw: bytes, code: int) -> None:
        """One new tx's CheckTx verdict."""
        kind, name = _tx_type(raw), code_name(code)
        self.checktx.labels(kind, name).inc()
        if kind == COMMIT_TX and code != 0:
            self.commitments.labels("rejected", name, "checktx").inc()

    def observe_block(self, height: int, time_ns: int, txs: Sequence[bytes],
                      results: Sequence[pb.ExecTxResult], block_events: Iterable[pb.Event]) -> None:
        """One finalized block: its txs' types and codes, and the fl events of the txs that succeeded."""
        self.height.set(height)
        self.blocks.inc()
        for raw, res in zip(txs, results, strict=True):
            kind, name = _tx_type(raw), code_name(res.code)
            self.txs.labels(kind, name).inc()
            if kind == COMMIT_TX:
                self.commitments.labels("accepted" if res.code == 0 else "rejected", name, "block").inc()
            if res.code == 0:
                self._events(res.events, height, time_ns)
        self._events(block_events, height, time_ns)

    def _events(self, events: Iterable[pb.Event], height: int, time_ns: int) -> None:
        for ev in events:
            if ev.type != "fl":
                continue
            a = _attrs(ev)
            action = a.get("action", "")
            if action == "open_round":
                self.rounds.labels("opened", "open").inc()
                if len(self._open) >= MAX_OPEN_ROUNDS:
                    self._open.pop(next(iter(self._open)))
                self._open[(a.get("task", ""), a.get("round", ""))] = (height, time_ns)
            elif action in ("close_round", "fail_round"):
                status = a.get("status", "failed") if action == "close_round" else "failed"
                self.rounds.labels("closed" if action == "close_round" else "failed", status).inc()
                opened = self._open.pop((a.get("task", ""), a.get("round", "")), None)
                if opened is not None:
                    self.round_blocks.observe(height - opened[0])
                    self.round_seconds.observe(max(0, time_ns - opened[1]) / 1e9)
            elif action == "commit_contribution" and a.get("epsilon_micro", "").isdigit():
                self.epsilon.labels(a.get("task", "")).inc(int(a["epsilon_micro"]) / 1e6)
            elif action == "decide_version":
                status = a.get("status", "")
                self.versions.labels(status).inc()
                if status == "quarantined":
                    self.quarantines.labels(a.get("task", "")).inc()


class ObservedApp(FedLedgerApp):
    """FedLedgerApp that reports each decided response to AppMetrics after returning nothing different."""

    def __init__(self, machine: StateMachine, metrics: AppMetrics, snapshots: SnapshotManager | None = None) -> None:
        super().__init__(machine, snapshots)
        self.metrics = metrics

    def check_tx(self, req: pb.RequestCheckTx) -> pb.ResponseCheckTx:
        """CheckTx as FedLedgerApp answers it; new txs (not rechecks) are counted."""
        resp = super().check_tx(req)
        if req.type != pb.CheckTxType.RECHECK:
            try:
                self.metrics.observe_check(req.tx, resp.code)
            except Exception:  # an observer must never break the mempool
                log.exception("metrics: observing CheckTx failed")
        return resp

    def finalize_block(self, req: pb.RequestFinalizeBlock) -> pb.ResponseFinalizeBlock:
        """FinalizeBlock as FedLedgerApp answers it; the block's outcome is then observed."""
        resp = super().finalize_block(req)
        try:
            self.metrics.observe_block(req.height, req.time.seconds * 1_000_000_000 + req.time.nanos, list(req.txs),
                                       list(resp.tx_results), resp.events)
        except Exception:  # an observer must never break consensus
            log.exception("metrics: observing block %d failed", req.height)
        return resp
