"""Shared fixtures: an in-memory chain driven block by block."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from fedledger.abci_app.store import CommittedStore
from tests.support import Chain


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
