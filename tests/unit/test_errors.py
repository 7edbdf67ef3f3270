"""One error family: every exception FedLedger defines derives from FedLedgerError, with its own stable code.

The check imports every module of the package and inspects the exception classes defined there,
so a new exception class without a family and a code fails here. docs/ERRORS.md lists every code
with its family and exit status; the test keeps that table true to the code.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fedledger.abci_app.errors import EXIT_STATUS, ConfigError, Family, FedLedgerError
from tests.errorcodes import errors_doc, exception_classes

ROOT = Path(__file__).resolve().parents[2]


CLASSES = exception_classes()


def test_the_walk_finds_the_package_s_exceptions() -> None:
    names = {c.__name__ for c in CLASSES}
    assert len(CLASSES) > 80
    assert {"TxError", "ClientError", "StoreError", "LocalnetError", "SecAggError", "ExperimentConfigError"} <= names


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_every_exception_is_in_the_family_with_its_own_code(cls: type[BaseException]) -> None:
    assert issubclass(cls, FedLedgerError), f"{cls.__qualname__} must derive from FedLedgerError (a family of it)"
    assert "error_code" in vars(cls), f"{cls.__qualname__} needs its own stable error_code"
    assert re.fullmatch(r"[A-Z][A-Z0-9_]+", cls.error_code)
    assert cls.family in EXIT_STATUS


def test_codes_are_unique() -> None:
    codes = [c.error_code for c in CLASSES if issubclass(c, FedLedgerError)]
    assert len(codes) == len(set(codes)), sorted(c for c in codes if codes.count(c) > 1)


def test_families_map_to_distinct_exit_statuses() -> None:
    assert set(EXIT_STATUS) == set(Family)
    assert sorted(EXIT_STATUS.values()) == list(range(1, len(Family) + 1))
    assert ConfigError("x").exit_status == 2 and isinstance(ConfigError("x"), ValueError)


def test_the_errors_doc_is_what_the_code_defines() -> None:
    doc = (ROOT / "docs" / "ERRORS.md").read_text(encoding="utf-8")
    assert doc == errors_doc(), "regenerate it: python -m tests.errorcodes > docs/ERRORS.md"
    assert all(f"`{c.error_code}`" in doc for c in CLASSES if issubclass(c, FedLedgerError))
