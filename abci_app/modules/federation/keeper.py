"""The federation keeper: the only way other modules read or change tasks, rounds, contributions and versions.

Secagg moves a secure round's stages inside the round record, lifecycle decides a version's
status, governance changes a task's round sizes: each through these functions, never through
federation's keys. Nothing here imports another module's keeper, so every keeper may import it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

from fedledger.abci_app.context import Reader, Writer
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.federation import keys
from fedledger.abci_app.modules.federation.payload import MAX_DEADLINE_BLOCKS, MAX_ROUND_SIZE, ModelRef
from fedledger.abci_app.modules.federation.records import ContributionRecord, RoundRecord, TaskRecord, VersionRecord
from fedledger.abci_app.records import load_record, store_record

__all__ = [
    "MAX_DEADLINE_BLOCKS",
    "MAX_ROUND_SIZE",
    "ModelRef",
    "find_contribution",
    "find_round",
    "find_task",
    "find_version",
    "load_round",
    "load_task",
    "store_round",
    "store_task",
    "store_version",
    "task_exists",
    "version_exists",
    "version_numbers",
    "versions",
]


def find_task(view: Reader, task_id: str) -> TaskRecord | None:
    """The task record, or None."""
    return cast("TaskRecord | None", load_record(view, keys.task_key(task_id)))


def load_task(view: Reader, task_id: str) -> TaskRecord:
    """The task record, or NOT_FOUND."""
    rec = find_task(view, task_id)
    if rec is None:
        raise TxError(Code.NOT_FOUND, f"task {task_id!r} does not exist")
    return rec


def task_exists(view: Reader, task_id: str) -> bool:
    """True if the task exists (one read, no decoding)."""
    return view.get(keys.task_key(task_id)) is not None


def store_task(state: Writer, task: TaskRecord) -> None:
    """Write a task record back."""
    store_record(state, keys.task_key(task["task_id"]), task)


def find_round(view: Reader, task_id: str, number: int) -> RoundRecord | None:
    """The round record, or None."""
    return cast("RoundRecord | None", load_record(view, keys.round_key(task_id, number)))


def load_round(view: Reader, task_id: str, number: int) -> RoundRecord:
    """The round record, or NOT_FOUND."""
    rec = find_round(view, task_id, number)
    if rec is None:
        raise TxError(Code.NOT_FOUND, f"round {number} of task {task_id!r} does not exist")
    return rec


def store_round(state: Writer, rnd: RoundRecord) -> None:
    """Write a round record back (e.g. secagg moving its stage)."""
    store_record(state, keys.round_key(rnd["task_id"], rnd["round"]), rnd)


def find_contribution(view: Reader, task_id: str, number: int, participant: str) -> ContributionRecord | None:
    """A participant's contribution to a round, or None."""
    return cast("ContributionRecord | None", load_record(view, keys.contribution_key(task_id, number, participant)))


def find_version(view: Reader, task_id: str, version: int) -> VersionRecord | None:
    """A model version's record, or None."""
    return cast("VersionRecord | None", load_record(view, keys.version_key(task_id, version)))


def store_version(state: Writer, rec: VersionRecord) -> None:
    """Write a version record back (the lifecycle module deciding or rolling back its status)."""
    store_record(state, keys.version_key(rec["task_id"], rec["version"]), rec)


def versions(view: Reader, task_id: str) -> Iterator[VersionRecord]:
    """The task's version records, ascending (keys are zero-padded), each read as it is reached."""
    for key, _ in view.iter_prefix(keys.version_prefix(task_id)):
        rec = load_record(view, key)
        if rec is not None:
            yield cast(VersionRecord, rec)


def version_numbers(view: Reader, task_id: str) -> list[int]:
    """The task's version numbers, ascending, from a listing only (collect them before rewriting versions)."""
    prefix = keys.version_prefix(task_id)
    return [int(key[len(prefix):]) for key, _ in view.iter_prefix(prefix)]


def version_exists(view: Reader, task_id: str, version: int) -> bool:
    """True if the version exists (one read, no decoding)."""
    return view.get(keys.version_key(task_id, version)) is not None
