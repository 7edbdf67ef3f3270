"""The trigger-agnostic backdoor scan: flags the target of each attacker trigger kind, nothing on clean models."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from fedledger.apps.experiment.triggers import KINDS
from fedledger.node.backdoor_scan import ScanConfig, ScanError, anomaly_indices, scan_model
from fedledger.node.probes import PPM
from fedledger.sdk.ml.data import ClientData
from tests import backdoor_support as bs


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("target", [3, 7])
def test_flags_the_target_of_each_trigger_kind(kind: str, target: int) -> None:
    result = scan_model(bs.SPEC, bs.backdoored_model(kind, target), bs.digits().canary)
    assert result.suspect_label == target
    assert result.anomaly_index_ppm > result.threshold_ppm == 2 * PPM
    assert result.asr_ppm >= 800_000  # the reverse-engineered trigger generalises to held-out victims
    sizes = {s.label: s.mask_ppm for s in result.labels}
    assert sizes[target] == min(sizes.values())


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_clean_models_are_not_flagged(seed: int) -> None:
    result = scan_model(bs.SPEC, bs.clean_model(seed), bs.digits().canary)
    assert result.suspect_label is None
    assert result.anomaly_index_ppm < result.threshold_ppm
    assert result.asr_ppm == 0


def test_deterministic_and_json_ready() -> None:
    # Its cost is a benchmark's business, not a timed assertion that fails on a loaded machine.
    weights, canary = bs.backdoored_model("corner_square"), bs.digits().canary
    first = scan_model(bs.SPEC, weights, canary)
    assert scan_model(bs.SPEC, weights, canary) == first
    described = first.describe()
    assert described["suspect_label"] == bs.TARGET and len(described["labels"]) == 10
    assert all(isinstance(v, int) for s in described["labels"] for v in s.values())


def test_anomaly_index_is_signed_and_floored() -> None:
    sizes = np.array([0.10, 0.11, 0.12, 0.13, 0.14, 0.02])
    raw = anomaly_indices(sizes)
    # median 0.115, MAD 1.4826 * 0.015
    assert raw[-1] == pytest.approx((0.115 - 0.02) / (1.4826 * 0.015))
    assert raw[4] < 0 < raw[0]
    floored = anomaly_indices(sizes, 0.5)
    assert floored[-1] == pytest.approx((0.115 - 0.02) / (0.5 * 0.115))
    assert np.all(anomaly_indices(np.full(4, 0.2)) == 0)


def test_bad_config_and_canary_are_refused() -> None:
    with pytest.raises(ScanError, match="steps"):
        ScanConfig(steps=0)
    with pytest.raises(ScanError, match="target_asr"):
        ScanConfig(target_asr=1.5)
    with pytest.raises(ScanError, match="min_relative_mad"):
        ScanConfig(min_relative_mad=-1.0)
    wrong = ClientData(X=np.zeros((10, 30), np.float32), y=np.arange(10, dtype=np.int64))
    with pytest.raises(ScanError, match="64 features"):
        scan_model(bs.SPEC, bs.clean_model(), wrong)
    one_label = ClientData(X=np.zeros((10, 64), np.float32), y=np.zeros(10, dtype=np.int64))
    with pytest.raises(ScanError, match="2 labels"):
        scan_model(bs.SPEC, bs.clean_model(), one_label)


def test_importing_the_scan_does_not_load_torch() -> None:
    code = "import sys, fedledger.node.backdoor_scan; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
