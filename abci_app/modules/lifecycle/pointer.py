"""A task's last-good pointer: the one lifecycle read other modules need (federation opens rounds from it).

This module imports nothing of the federation module, so federation's handlers can import it
without an import cycle (the rest of the lifecycle module imports federation's keys).
"""

from __future__ import annotations

from typing import cast

from fedledger.abci_app.context import Reader
from fedledger.abci_app.modules.lifecycle import keys
from fedledger.abci_app.modules.lifecycle.records import PointerRecord
from fedledger.abci_app.records import load_record

__all__ = ["last_good", "pointer"]


def pointer(view: Reader, task_id: str) -> PointerRecord:
    """A task's lifecycle pointer record: {task_id, last_good, last_good_height, decisions}."""
    rec = load_record(view, keys.pointer_key(task_id))
    if rec is None:
        # Version 0 (the task's initial model) is good from the start; nothing decided yet.
        return {"task_id": task_id, "last_good": 0, "last_good_height": None, "decisions": 0}
    return cast(PointerRecord, rec)


def last_good(view: Reader, task_id: str) -> int:
    """The task's last known good version: its latest promoted version not rolled back, else 0."""
    value: int = pointer(view, task_id)["last_good"]
    return value
