"""Unlearning a backdoor found by the trigger-agnostic scan, with the defender's root data only."""

from __future__ import annotations

import numpy as np
import pytest

from fedledger.apps.experiment.metrics import backdoor_asr
from fedledger.node.backdoor_scan import scan_model
from fedledger.node.backdoor_unlearn import unlearn
from tests.backdoor_support import SPEC, backdoored_model, digits, trigger


@pytest.mark.parametrize("kind", ["pixel_pattern", "corner_square"])
def test_unlearning_the_recovered_stamp_removes_the_backdoor(kind: str) -> None:
    data = digits()
    model = backdoored_model(kind)
    real = trigger(kind)
    before = backdoor_asr(SPEC, model, data.test, real)
    found = scan_model(SPEC, model, data.canary)
    assert found.suspect_label == real.target_label and found.mask is not None and found.pattern is not None
    cleaned = unlearn(SPEC, model, data.canary, found.mask, found.pattern, lr=0.3, epochs=5, batch_size=16,
                      seed=1, fraction=1.0)
    after = backdoor_asr(SPEC, cleaned, data.test, real)
    assert before > 0.8 and after < 0.5 * before, (before, after)


def test_unlearn_refuses_a_stamp_of_the_wrong_size() -> None:
    data = digits()
    with pytest.raises(ValueError, match="features"):
        unlearn(SPEC, backdoored_model("blend"), data.canary, np.zeros(3).tolist(), np.zeros(3).tolist(), lr=0.1,
                epochs=1, batch_size=16, seed=0)
