"""`bench faults`' arithmetic: quantiles and CometBFT's block times (the scenarios need root and run in integration)."""

from __future__ import annotations

import pytest

from fedledger.bench.faults import _parse_time, percentile
from fedledger.localnet.errors import LocalnetError


def test_percentile_interpolates() -> None:
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([1.0, 2.0], 0.95) == pytest.approx(1.95)
    assert percentile([4.0], 0.95) == 4.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)


def test_block_times_keep_nanoseconds() -> None:
    a = _parse_time("2025-01-01T00:00:01.123456789Z")
    b = _parse_time("2025-01-01T00:00:01Z")
    assert a - b == pytest.approx(0.123456789, abs=1e-6)
    assert b == 1735689601.0
    with pytest.raises(LocalnetError, match="unexpected block time"):
        _parse_time("yesterday")
