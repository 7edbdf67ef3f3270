"""A proof's public instances: BN254 field elements as ezkl writes them, decoded to ints without floats."""

from __future__ import annotations

import re
from collections.abc import Sequence

from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.zk.circuit import CircuitFacts

__all__ = ["FIELD_MODULUS", "decode_instances", "felt_to_signed", "felt_value"]

# The scalar field of BN254, the curve ezkl's KZG commitments live on.
FIELD_MODULUS = 21888242871839275222246405745257275088548364400416034343698204186575808495617
_FELT = re.compile(r"^[0-9a-f]{64}$")


def felt_value(text: str) -> int:
    """A field element from ezkl's instance encoding: 32 bytes, little-endian, lowercase hex."""
    if not isinstance(text, str) or not _FELT.match(text):
        raise TxError(Code.INVALID_BODY, "an instance is 64 lower-case hex characters (a little-endian field element)")
    value = int.from_bytes(bytes.fromhex(text), "little")
    if value >= FIELD_MODULUS:
        raise TxError(Code.INVALID_BODY, "an instance is not reduced modulo the BN254 scalar field")
    return value


def felt_to_signed(value: int) -> int:
    """ezkl's fixed-point ints are field elements; the upper half of the field stands for negatives."""
    return value - FIELD_MODULUS if value > FIELD_MODULUS // 2 else value


def decode_instances(instances: Sequence[str], facts: CircuitFacts) -> tuple[str | None, list[int]]:
    """(input hash as 0x-hex big-endian, outputs as signed ints) from one proof's flat instance list.

    Layout (ezkl 23): the Poseidon hash of the input first when the input is hashed, then the
    outputs in row-major order. A count that does not fit the circuit is refused.
    """
    expected = facts.outputs + (1 if facts.hashed else 0)
    if len(instances) != expected:
        raise TxError(Code.ZK_PROOF_INVALID, f"the proof carries {len(instances)} instances, the circuit has "
                                             f"{expected}")
    values = [felt_value(t) for t in instances]
    input_hash = f"0x{values[0]:064x}" if facts.hashed else None
    outs = values[1:] if facts.hashed else values
    return input_hash, [felt_to_signed(v) for v in outs]
