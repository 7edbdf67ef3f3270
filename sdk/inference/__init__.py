"""The inference side of the sdk: ONNX artifacts, graph splitting and the canonical forms clients and nodes agree on."""
