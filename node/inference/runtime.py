"""One ONNX model loaded into onnxruntime on the CPU, with its declared inputs and outputs in OIP terms."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from fedledger.node.inference.errors import InferenceRunError, ModelLoadError
from fedledger.sdk.inference.datatypes import BYTES, NUMPY_OF, OIP_OF_ONNX

__all__ = ["DEFAULT_INTRA_OP_THREADS", "LoadedModel", "TensorSpec"]

# One thread per session: several nodes (or several models) often share one machine, and onnxruntime's
# default of one thread per core makes them fight over the same cores and spin-wait on each other.
DEFAULT_INTRA_OP_THREADS = 1


@dataclass(frozen=True)
class TensorSpec:
    """A declared input or output: its name, OIP datatype ("FP32", "INT64", ...) and shape (-1 for a dynamic dim)."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    @property
    def numpy_dtype(self) -> np.dtype[np.generic] | None:
        """The numpy dtype of its elements; None for datatypes the node does not serve (BYTES, BF16)."""
        return NUMPY_OF.get(self.datatype)

    def accepts_shape(self, shape: tuple[int, ...]) -> bool:
        """Whether a concrete shape fits the declared one (same rank; -1 matches any size)."""
        return len(shape) == len(self.shape) and all(d == -1 or d == s for d, s in zip(self.shape, shape, strict=True))

    def metadata(self) -> dict[str, object]:
        """The OIP model-metadata entry: {name, datatype, shape}."""
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


def _spec(arg: ort.NodeArg, role: str) -> TensorSpec:
    datatype = OIP_OF_ONNX.get(arg.type)
    if datatype is None:
        raise ModelLoadError(f"{role} {arg.name!r} has type {arg.type}; the node serves tensors of "
                             f"{', '.join(sorted(set(OIP_OF_ONNX.values()) - {BYTES, 'BF16'}))} only")
    # onnxruntime reports a dynamic dim as its symbolic name (a str) or as None; OIP writes both as -1.
    shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in (arg.shape or []))
    return TensorSpec(arg.name, datatype, shape)


class LoadedModel:
    """An onnxruntime session for one model version; `run` may be called from any thread."""

    def __init__(self, session: ort.InferenceSession, *, name: str, version: str) -> None:
        self.name = name
        self.version = version
        self._session = session
        self.inputs: tuple[TensorSpec, ...] = tuple(_spec(a, "input") for a in session.get_inputs())
        self.outputs: tuple[TensorSpec, ...] = tuple(_spec(a, "output") for a in session.get_outputs())
        self._output_names = [o.name for o in self.outputs]
        self._input_by_name = {i.name: i for i in self.inputs}
        self._runs = 0
        self._runs_lock = threading.Lock()
        if not self.inputs:
            raise ModelLoadError(f"model {name!r} declares no inputs; the node serves graphs that take tensors")

    @classmethod
    def from_bytes(cls, model_bytes: bytes, *, name: str, version: str,
                   intra_op_num_threads: int = DEFAULT_INTRA_OP_THREADS) -> LoadedModel:
        """Load serialized ONNX bytes on the CPU; raises ModelLoadError when onnxruntime cannot load them."""
        if intra_op_num_threads < 1:
            raise ModelLoadError(f"intra_op_num_threads must be at least 1, got {intra_op_num_threads}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_num_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Receipts sign outputs that a verifier recomputes: kernels must not pick nondeterministic paths.
        options.use_deterministic_compute = True
        options.log_severity_level = 3  # errors only: warnings about unused initializers are noise in a node's log
        try:
            session = ort.InferenceSession(model_bytes, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own pybind classes, all plain Exception subclasses
            raise ModelLoadError(f"model {name!r} version {version!r} is not an ONNX model onnxruntime can load "
                                 f"({len(model_bytes)} bytes): {_first_line(exc)}") from exc
        return cls(session, name=name, version=version)

    def input(self, name: str) -> TensorSpec | None:
        """The declared input called `name`, if any."""
        return self._input_by_name.get(name)

    def check(self, inputs: Mapping[str, np.ndarray]) -> None:
        """Raise InferenceRunError unless `inputs` are exactly the declared inputs, with their dtypes and shapes."""
        if set(inputs) != set(self._input_by_name):
            raise InferenceRunError(f"model {self.name!r} version {self.version!r} takes inputs "
                                    f"{sorted(self._input_by_name)}, got {sorted(inputs)}")
        for spec in self.inputs:
            value = inputs[spec.name]
            if value.dtype != spec.numpy_dtype or not spec.accepts_shape(value.shape):
                raise InferenceRunError(f"input {spec.name!r} of model {self.name!r} version {self.version!r} is "
                                        f"{spec.datatype} {list(spec.shape)}, got {value.dtype} {list(value.shape)}")

    @property
    def batchable(self) -> bool:
        """Whether dim 0 of every input and output is dynamic, so requests can be stacked along it."""
        return all(t.shape and t.shape[0] == -1 for t in (*self.inputs, *self.outputs))

    @property
    def runs(self) -> int:
        """How many times the session has run (a batch of stacked requests counts once)."""
        return self._runs

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every declared output, computed from `inputs` (name -> array); raises InferenceRunError on failure."""
        with self._runs_lock:
            self._runs += 1
        try:
            values = self._session.run(self._output_names, dict(inputs))
        except Exception as exc:  # onnxruntime's InvalidArgument, Fail, RuntimeException ...
            raise InferenceRunError(f"model {self.name!r} version {self.version!r} failed to run: "
                                    f"{_first_line(exc)}") from exc
        return {name: np.asarray(v) for name, v in zip(self._output_names, values, strict=True)}

    def __repr__(self) -> str:
        return f"LoadedModel(name={self.name!r}, version={self.version!r})"


def _first_line(exc: BaseException) -> str:
    # onnxruntime prefixes its messages with "[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : "; the rest is the news.
    text = str(exc).strip()
    if text.startswith("[ONNXRuntimeError]"):
        text = text.split(" : ", 3)[-1]
    return " ".join(text.split())[:500]
