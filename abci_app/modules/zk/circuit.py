"""What the chain reads from an ezkl settings file: the run arguments it insists on, logrows and the instance layout.

Pure JSON inspection, deterministic: the settings bytes a registrant sends are the canonical form
(sorted keys, compact, no timestamp), so every validator derives the same facts and the same hash.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fedledger.abci_app.errors import Code, TxError

__all__ = ["EZKL_VERSION", "MAX_OUTPUTS", "CircuitFacts", "circuit_facts", "input_visibility"]

# The ezkl release whose verifier the validators run; a circuit from another release is refused,
# because its proofs would not be checked by the code that made them (pyproject pins the same).
EZKL_VERSION = "23.0.5"
MAX_OUTPUTS = 4096  # most public output values one circuit may expose


@dataclass(frozen=True)
class CircuitFacts:
    """What the handlers need from a circuit's settings."""

    logrows: int
    outputs: int  # output values in a proof's instances
    output_scale: int  # an output int o stands for o / 2^output_scale
    hashed: bool  # the first instance is the Poseidon hash of the input


def input_visibility(mode: str) -> Any:
    """The run_args.input_visibility ezkl writes for an input mode ("hashed" | "private")."""
    return {"Hashed": {"hash_is_public": True, "outlets": []}} if mode == "hashed" else "Private"


def _shape_size(shape: Any) -> int:
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and 0 < d <= MAX_OUTPUTS
                                              for d in shape):
        raise TxError(Code.ZK_CIRCUIT, "settings: model_instance_shapes must be lists of positive ints")
    size = 1
    for d in shape:
        size *= d
    return size


def circuit_facts(settings: bytes, input_mode: str) -> CircuitFacts:
    """Check that settings describe a circuit the chain accepts for `input_mode`, and read its facts.

    Required: this ezkl release, fixed (committed) parameters, public outputs, and the input
    visibility of the mode. TxError(ZK_VERSION_MISMATCH | ZK_CIRCUIT) says what is off.
    """
    try:
        doc = json.loads(settings)
    except (ValueError, UnicodeDecodeError):
        raise TxError(Code.ZK_CIRCUIT, "settings are not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("run_args"), dict):
        raise TxError(Code.ZK_CIRCUIT, "settings lack run_args: pass the file ezkl's gen_settings wrote")
    if doc.get("version") != EZKL_VERSION:
        raise TxError(Code.ZK_VERSION_MISMATCH, f"settings come from ezkl {str(doc.get('version'))[:20]!r}; "
                                                f"validators verify with ezkl {EZKL_VERSION}: rebuild the circuit")
    if "timestamp" in doc or settings != json.dumps(doc, sort_keys=True, separators=(",", ":")).encode():
        raise TxError(Code.ZK_CIRCUIT, "settings must be canonical (sorted keys, compact, no timestamp), so that "
                                       "anyone rebuilding them gets the same sha256")
    run = doc["run_args"]
    if run.get("param_visibility") != "Fixed":
        raise TxError(Code.ZK_CIRCUIT, "param_visibility must be fixed: the vk must commit to the weights")
    if run.get("output_visibility") != "Public":
        raise TxError(Code.ZK_CIRCUIT, "output_visibility must be public: the chain records the outputs")
    if run.get("input_visibility") != input_visibility(input_mode):
        raise TxError(Code.ZK_CIRCUIT, f"input_visibility {str(run.get('input_visibility'))[:60]} does not match "
                                       f"input mode {input_mode!r}")
    logrows = run.get("logrows")
    if not isinstance(logrows, int) or isinstance(logrows, bool) or not 1 <= logrows <= 26:
        raise TxError(Code.ZK_CIRCUIT, "settings: logrows must be an int in [1, 26]")
    shapes = doc.get("model_instance_shapes")
    scales = doc.get("model_output_scales")
    if not isinstance(shapes, list) or len(shapes) != 1:
        raise TxError(Code.ZK_CIRCUIT, "settings: the circuit must have exactly one public output tensor")
    if (not isinstance(scales, list) or len(scales) != 1 or not isinstance(scales[0], int)
            or isinstance(scales[0], bool) or not 0 <= scales[0] <= 30):
        raise TxError(Code.ZK_CIRCUIT, "settings: model_output_scales must be one int in [0, 30]")
    outputs = _shape_size(shapes[0])
    if outputs > MAX_OUTPUTS:
        raise TxError(Code.ZK_CIRCUIT, f"settings: {outputs} outputs, at most {MAX_OUTPUTS}")
    return CircuitFacts(logrows=logrows, outputs=outputs, output_scale=scales[0], hashed=input_mode == "hashed")
