"""Shared fixtures: an in-memory chain driven block by block."""

from __future__ import annotations

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
