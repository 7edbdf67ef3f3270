"""The inference node's errors: a model that will not load, a request that breaks the protocol, a failed run."""

from __future__ import annotations

from fedledger.abci_app.errors import ConfigError, ProtocolError

__all__ = ["InferenceError", "InferenceRunError", "ModelLoadError", "OIPError", "ServerStartError"]


class InferenceError(ProtocolError):
    """Base of the inference node's errors about models and requests."""

    error_code = "INFERENCE_NODE"


class ModelLoadError(InferenceError):
    """The bytes are not an ONNX model onnxruntime can load, or the graph uses types the node cannot serve."""

    error_code = "INFERENCE_MODEL"


class InferenceRunError(InferenceError):
    """onnxruntime refused to run the model on inputs that passed the declared checks (e.g. an index out of range)."""

    error_code = "INFERENCE_RUN"


class OIPError(InferenceError):
    """An Open Inference Protocol request is malformed or cannot be served; `status` is the HTTP status to answer."""

    error_code = "OIP_REQUEST"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ServerStartError(ConfigError):
    """The inference server could not start (most often: its port is taken); pick another host or port."""

    error_code = "INFERENCE_PORT"
