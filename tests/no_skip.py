"""The FEDLEDGER_NO_SKIP=1 guard (make test, CI): nothing may pass by not running.

Under FEDLEDGER_NO_SKIP=1 every skip becomes a failure: a skip inside a test, its fixtures or a
skip mark (pytest_runtest_makereport), and a skip while collecting a module or package
(`pytest.importorskip`, `pytest.skip(..., allow_module_level=True)`, a skipping conftest), which
never reaches a test's report (pytest_make_collect_report). An xfail is not a skip and stays one.
tests/conftest.py installs both hooks; tests/unit/test_no_skip_guard.py runs pytest on tiny files
to check them.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

__all__ = ["enabled", "pytest_make_collect_report", "pytest_runtest_makereport"]


def enabled() -> bool:
    """Whether this session turns skips into failures."""
    return os.environ.get("FEDLEDGER_NO_SKIP") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    """A test skipped in setup, call or teardown fails instead."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and enabled() and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under FEDLEDGER_NO_SKIP=1: {report.longrepr}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, None, None]:
    """A module or package that skips while being collected is a collection error instead."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and enabled():
        report.outcome = "failed"
        report.longrepr = f"skipped at collection under FEDLEDGER_NO_SKIP=1: {report.longrepr}"
