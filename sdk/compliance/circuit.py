"""The norm-bound circuit: an ONNX graph whose one public output is 1 iff sum(x_i^2) <= C^2, C a constant.

Graph (opset 13): x[1, d] -> MatMul(x, Transpose(x)) -> LessOrEqual(., C2) -> Cast(float) -> [1, 1].
Only the boolean is public: the norm itself stays private. The input is "hashed", so the
proof's first instance is the Poseidon hash of the quantized update: the client's commitment to
exactly the update the proof is about.

Fixed point (ezkl, input and param scale s = 13): each x_i becomes the int q_i = round(x_i * 2^s)
(that is what the Poseidon hash commits to). The constant C2 is written as floor(C^2 * 2^s) / 2^s,
exactly representable, so its quantized form is exact and never above C^2. ezkl rescales the dot
product (scale 2s) back to scale s by a rounded division, so an accepted proof means

    sum(q_i^2) / 2^(2s) <= C2 + 2^-(s+1) <= C^2 + 2^-(s+1)        (rounding slack of the rescale)

i.e. ||q / 2^s|| <= C + 2^-(s+2)/C: the committed (quantized) update is within C up to ~3e-5/C.
The float update the client holds differs from q / 2^s by at most 2^-(s+1) per entry, so its norm
is within C + 2^-(s+2)/C + sqrt(d) * 2^-(s+1) (d = 4810: +0.0042). ezkl also range-checks every
input and the comparison's difference (decomposition base 2^14, 2 legs), so entries are bounded
and sum(q_i^2) cannot wrap around the field: an update far above the bound has no witness at all.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import numpy as np

from fedledger.sdk.compliance.errors import NormCircuitError
from fedledger.sdk.zk.setup import SCALE

__all__ = ["MAX_DIM", "OPSET", "bound_fixed_point", "norm_circuit", "parse_clip", "slack"]

OPSET = 13
MAX_DIM = 1 << 20
_F32_EXACT = 1 << 24  # ints up to 2^24 are exact in float32, so the constant's quantization is exact


def parse_clip(clip: str) -> Decimal:
    """The clip bound C from its decimal string (the chain's form); NormCircuitError if not a positive decimal."""
    try:
        value = Decimal(clip)
    except (InvalidOperation, TypeError):
        raise NormCircuitError(f"the clip bound must be a decimal string such as '1.0', got {clip!r}") from None
    if not value.is_finite() or value <= 0:
        raise NormCircuitError(f"the clip bound must be positive and finite, got {clip!r}")
    return value


def bound_fixed_point(clip: str) -> int:
    """floor(C^2 * 2^SCALE): the circuit's constant as an int at the input scale (never above C^2)."""
    c = parse_clip(clip)
    q = int((c * c * (1 << SCALE)).to_integral_value(rounding="ROUND_FLOOR"))
    if not 0 < q < _F32_EXACT:
        raise NormCircuitError(f"clip {clip!r} gives C^2 * 2^{SCALE} = {q}, outside (0, 2^24): at this fixed "
                               "point the bound must be in about (0.011, 45.2]")
    return q


def slack(clip: str, dim: int) -> float:
    """How far above C a float update may be and still prove (rescale rounding plus per-entry quantization)."""
    c = float(parse_clip(clip))
    return 2.0 ** -(SCALE + 2) / c + float(np.sqrt(dim)) * 2.0 ** -(SCALE + 1)


def norm_circuit(clip: str, dim: int) -> bytes:
    """The serialized ONNX graph for bound `clip` over `dim` entries; the same bytes for the same arguments."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if not isinstance(dim, int) or isinstance(dim, bool) or not 1 <= dim <= MAX_DIM:
        raise NormCircuitError(f"the dimension must be an int in [1, {MAX_DIM}], got {dim!r}")
    c2 = np.array([[bound_fixed_point(clip) / (1 << SCALE)]], dtype=np.float32)
    nodes = [
        helper.make_node("Transpose", ["update"], ["update_t"], perm=[1, 0]),
        helper.make_node("MatMul", ["update", "update_t"], ["norm_sq"]),  # one dot product: a single rescale
        helper.make_node("LessOrEqual", ["norm_sq", "bound_sq"], ["within_bool"]),
        helper.make_node("Cast", ["within_bool"], ["within"], to=TensorProto.FLOAT),
    ]
    graph = helper.make_graph(
        nodes, "fedledger-norm-bound",
        [helper.make_tensor_value_info("update", TensorProto.FLOAT, [1, dim])],
        [helper.make_tensor_value_info("within", TensorProto.FLOAT, [1, 1])],
        [numpy_helper.from_array(c2, "bound_sq")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="fedledger-compliance", producer_version="1")
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString(deterministic=True))
