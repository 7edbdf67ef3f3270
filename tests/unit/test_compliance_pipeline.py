"""zkDPS in the pipeline: unverified contributions are left out; a plain update must hash to its proof's input."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np

from fedledger.node.compliance_check import (
    NO_NORM_PROOF,
    norm_screen,
    requires_norm_proof,
    trusted_norm_bound,
    update_hash_mismatch,
)
from fedledger.sdk.compliance.circuit import bound_fixed_point, norm_circuit, slack
from fedledger.sdk.zk.proof import input_hash_of
from fedledger.sdk.zk.setup import SCALE

TASK: dict[str, Any] = {"task_id": "t", "norm_proof": {"clip": "1.5", "dim": 8}}
PLAIN: dict[str, Any] = {"task_id": "p"}
VEC = np.linspace(-0.2, 0.3, 8, dtype=np.float32)


def test_norm_screen_drops_only_unverified_contributions_of_norm_proof_tasks() -> None:
    contribs = [{"participant": "a", "norm_proof": "verified", "update_hash": "0x1"}, {"participant": "b"}]
    assert norm_screen(TASK, contribs) == {"b": NO_NORM_PROOF}
    assert norm_screen(PLAIN, contribs) == {}
    assert requires_norm_proof(TASK) and not requires_norm_proof(PLAIN)
    assert trusted_norm_bound(TASK) == Decimal("1.5") and trusted_norm_bound(PLAIN) is None


def test_a_plain_update_must_be_the_one_its_proof_hashed() -> None:
    rec = {"participant": "a", "norm_proof": "verified", "update_hash": input_hash_of(VEC, SCALE)}
    assert update_hash_mismatch(rec, VEC) is None
    other = VEC.copy()
    other[3] += 2.0 ** -SCALE  # one quantization step: a different committed update
    assert "Poseidon" in str(update_hash_mismatch(rec, other))
    assert update_hash_mismatch({"participant": "b"}, VEC) == NO_NORM_PROOF


def test_the_circuit_is_deterministic_and_its_bound_never_exceeds_c_squared() -> None:
    assert norm_circuit("1.0", 16) == norm_circuit("1.0", 16)
    assert norm_circuit("1.0", 16) != norm_circuit("1.01", 16) and norm_circuit("1.0", 16) != norm_circuit("1.0", 17)
    for clip in ("1", "0.7", "2.3456", "45"):
        q = bound_fixed_point(clip)
        assert Decimal(q) <= Decimal(clip) ** 2 * 2**SCALE < Decimal(q + 1)
    assert 0.004 < slack("1.0", 4810) < 0.0043  # sqrt(4810) * 2^-14 plus the rescale's 2^-15
