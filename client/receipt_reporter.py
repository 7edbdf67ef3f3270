"""Posting verified receipts to the chain in batches, on a thread of its own, so answers never wait for a block.

Each batch is one `report_receipts` tx: the chain checks every signature, tallies each request and
penalizes the dissenters in that block. When a content store is given, the full receipts and the
majority outputs go there first and the batch records their CID, so the chain keeps only the
Merkle root and the tallies.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy.typing as npt

from fedledger.abci_app.errors import FedLedgerError
from fedledger.abci_app.modules.inference.msgs import MAX_REQUESTS
from fedledger.abci_app.modules.inference.receipts import Receipt
from fedledger.abci_app.tx import MAX_TX_BYTES
from fedledger.sdk.submit import Submitter

__all__ = ["BatchPosted", "ReceiptReporter"]

log = logging.getLogger(__name__)

# What the receipts of one report tx may take: the chain's limit less room for the envelope and the cid.
_BUDGET = MAX_TX_BYTES - 1024
_IN_FLIGHT = 16  # report txs broadcast before waiting for their blocks (the chain allows 32 pending per signer)


class _Store(Protocol):
    def put(self, data: bytes) -> str: ...


@dataclass(frozen=True)
class BatchPosted:
    """One posted batch: its chain sequence number and height, or the error that stopped it."""

    requests: int
    batch: int | None
    height: int | None
    error: str | None


class ReceiptReporter:
    """Collects (receipts, outputs) per request; a worker posts them every `interval` s or `batch_size` requests."""

    def __init__(self, submitter: Submitter, task_id: str, *, batch_size: int = 64, interval: float = 0.5,
                 store: _Store | None = None) -> None:
        self.submitter, self.task_id, self.store = submitter, task_id, store
        self.batch_size = max(1, min(batch_size, MAX_REQUESTS))
        self.interval = interval
        self.posted: list[BatchPosted] = []
        self._queue: queue.Queue[tuple[tuple[Receipt, ...], dict[str, list[Any]]] | None] = queue.Queue()
        self._idle = threading.Event()
        self._idle.set()
        self._pending = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="receipt-reporter", daemon=True)
        self._thread.start()

    def add(self, receipts: Sequence[Receipt], outputs: Mapping[str, npt.NDArray[Any]]) -> None:
        """Queue one request's receipts (returns at once)."""
        if len(receipts) < 1:
            return
        with self._lock:
            self._pending += 1
            self._idle.clear()
        self._queue.put((tuple(receipts), {k: v.tolist() for k, v in outputs.items()}))

    def flush(self, timeout: float = 60.0) -> bool:
        """Wait until everything queued so far is posted (or failed); False on timeout."""
        return self._idle.wait(timeout)

    def close(self, timeout: float = 60.0) -> None:
        """Post what is queued, then stop the worker."""
        self.flush(timeout)
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        stop = False
        while not stop:
            batch: list[tuple[tuple[Receipt, ...], dict[str, list[Any]]]] = []
            deadline: float | None = None
            while len(batch) < self.batch_size:
                wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    item = self._queue.get(timeout=wait)
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
                if deadline is None:
                    deadline = time.monotonic() + self.interval
            if batch:
                self._post(batch)
                with self._lock:
                    self._pending -= len(batch)
                    if self._pending == 0:
                        self._idle.set()

    def _post(self, batch: list[tuple[tuple[Receipt, ...], dict[str, list[Any]]]]) -> None:
        """Post the batch in as few txs as fit under the chain's tx size limit, several in flight at once."""
        chunks: list[list[tuple[tuple[Receipt, ...], dict[str, list[Any]]]]] = []
        size = 0
        for item in batch:
            cost = len(json.dumps([r.to_json() for r in item[0]], separators=(",", ":"))) + 1
            if cost > _BUDGET:
                self.posted.append(BatchPosted(1, None, None, f"one request's receipts take {cost} bytes, over the "
                                                              f"{_BUDGET} a report tx can carry; not posted"))
                continue
            if not chunks or size + cost > _BUDGET:
                chunks.append([])
                size = 0
            chunks[-1].append(item)
            size += cost
        # Broadcast a window of txs, then wait for them: one block carries several reports, and the
        # window stays under the chain's per-signer limit of txs waiting for a block (MAX_PENDING).
        for start in range(0, len(chunks), _IN_FLIGHT):
            sent: list[tuple[int, str | None, str | None]] = []
            for chunk in chunks[start:start + _IN_FLIGHT]:
                try:
                    sent.append((len(chunk), self.submitter.broadcast("report_receipts", self._body(chunk)), None))
                except FedLedgerError as exc:
                    sent.append((len(chunk), None, str(exc)))
            for count, tx, error in sent:
                if tx is None:
                    self._failed(count, error or "not broadcast")
                    continue
                try:
                    result = self.submitter.wait(tx)
                except FedLedgerError as exc:
                    self._failed(count, str(exc))
                    continue
                seq = result.attr("fl", "batch")
                self.posted.append(BatchPosted(count, int(seq) if seq else None, result.height, None))

    def _failed(self, count: int, error: str) -> None:
        # Nothing to retry blindly: a refused batch is reported with its reason; the answers were already given.
        log.warning("receipts batch of %d requests was not posted: %s", count, error)
        self.posted.append(BatchPosted(count, None, None, error))

    def _body(self, batch: list[tuple[tuple[Receipt, ...], dict[str, list[Any]]]]) -> dict[str, Any]:
        body: dict[str, Any] = {"task_id": self.task_id, "requests": [[r.to_json() for r in rs] for rs, _ in batch]}
        if self.store is not None:
            blob = {"task_id": self.task_id, "requests": [
                {"receipts": [r.to_json() for r in rs], "outputs": outs} for rs, outs in batch]}
            body["cid"] = self.store.put(json.dumps(blob, separators=(",", ":")).encode())
        return body
