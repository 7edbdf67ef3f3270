"""Shared fixtures: an in-memory chain driven block by block."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from fedledger.abci_app.store import CommittedStore
from tests.no_skip import pytest_make_collect_report, pytest_runtest_makereport
from tests.support import Chain

# The FEDLEDGER_NO_SKIP=1 guard: pytest finds hooks by name in a conftest's namespace.
__all__ = ["chain", "pytest_make_collect_report", "pytest_runtest_makereport", "pytest_sessionfinish"]

if os.environ.get("FEDLEDGER_RECORD_CHAIN"):
    from tests.replay_record import REPLAYABLE, install

    install()

    def pytest_runtest_setup(item: pytest.Item) -> None:
        """A test that monkeypatches may change what the app does: its chains are not recorded."""
        REPLAYABLE["now"] = "monkeypatch" not in getattr(item, "fixturenames", ())


@pytest.fixture
def chain() -> Iterator[Chain]:
    store = CommittedStore(":memory:")
    try:
        yield Chain(store)
    finally:
        store.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under FEDLEDGER_RECORD_CHAIN=FILE, write the chains this session drove (tests/replay_record.py)."""
    target = os.environ.get("FEDLEDGER_RECORD_CHAIN")
    if target:
        from pathlib import Path

        from tests.replay_record import write

        write(Path(target))
