"""The inference node's serving core: ONNX runtime, the Open Inference Protocol v2 REST face, dynamic batching."""
