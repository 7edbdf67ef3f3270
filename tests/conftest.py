"""Shared fixtures: an in-memory chain driven block by block."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from fedledger.abci_app.store import CommittedStore
from tests.support import Chain

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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under FEDLEDGER_NO_SKIP=1 (make test, CI) a skipped test is a failure: nothing may pass by not running."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and os.environ.get("FEDLEDGER_NO_SKIP") == "1" and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under FEDLEDGER_NO_SKIP=1: {report.longrepr}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under FEDLEDGER_RECORD_CHAIN=FILE, write the chains this session drove (tests/replay_record.py)."""
    target = os.environ.get("FEDLEDGER_RECORD_CHAIN")
    if target:
        from pathlib import Path

        from tests.replay_record import write

        write(Path(target))
