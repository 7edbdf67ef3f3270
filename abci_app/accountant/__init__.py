"""Deterministic RDP accountant for the subsampled Gaussian: the chain debits exactly what a client plans.

Standard library only (imported by consensus code and by clients). No float enters a decision or
an output: inputs are Decimals, ints or decimal strings, and all arithmetic runs in explicitly
built decimal contexts (see ``decimals``), so every validator computes the same digits.

Typical use, on the chain and in a client alike::

    mech = Mechanism.parse({"noise_multiplier": "1.1", "sample_rate": "0.01", "steps": 100})
    c = charge(decode_rdp(stored["rdp"]), mech, "1e-5")      # or ZERO_RDP for a first contribution
    new_spent = debit(budget_micro, spent_micro, c.epsilon_micro - spent_micro)
    stored = {"rdp": encode_rdp(c.rdp), "spent_micro": new_spent}
"""

from fedledger.abci_app.accountant.budget import BudgetExceeded, Charge, charge, debit
from fedledger.abci_app.accountant.decimals import PRECISION, AccountantError, canonical_str
from fedledger.abci_app.accountant.mechanism import (
    MAX_NOISE_MULTIPLIER,
    MAX_NOISE_PLACES,
    MAX_RATE_PLACES,
    MAX_STEPS,
    MIN_NOISE_MULTIPLIER,
    Mechanism,
)
from fedledger.abci_app.accountant.rdp import (
    MAX_DELTA_PLACES,
    ORDERS,
    RDP_PLACES,
    ZERO_RDP,
    compose,
    decode_rdp,
    encode_rdp,
    epsilon,
    parse_delta,
    quantize_epsilon,
    quantize_rdp,
    rdp,
)

__all__ = [
    "MAX_DELTA_PLACES",
    "MAX_NOISE_MULTIPLIER",
    "MAX_NOISE_PLACES",
    "MAX_RATE_PLACES",
    "MAX_STEPS",
    "MIN_NOISE_MULTIPLIER",
    "ORDERS",
    "PRECISION",
    "RDP_PLACES",
    "ZERO_RDP",
    "AccountantError",
    "BudgetExceeded",
    "Charge",
    "Mechanism",
    "canonical_str",
    "charge",
    "compose",
    "debit",
    "decode_rdp",
    "encode_rdp",
    "epsilon",
    "parse_delta",
    "quantize_epsilon",
    "quantize_rdp",
    "rdp",
]
