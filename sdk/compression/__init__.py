"""Compression of federated updates: deltas, top-k with error feedback, 8-bit quantization, shared masks, wire.

Pure numpy (plus ``cryptography`` for the AES-CTR PRG). Compressors work on 1-D float32 vectors;
``fedledger.sdk.flat`` turns a model's named tensors into one. ``wire`` encodes every form into
canonical bytes so the size of a real payload can be measured.
"""

from fedledger.sdk.compression.delta import delta, restore, tensor_delta, tensor_restore
from fedledger.sdk.compression.errors import CompressionError, WireError
from fedledger.sdk.compression.quant8 import Quantized8, dequantize8, quantize8
from fedledger.sdk.compression.sparse_mask import SharedSparseUpdate, gather, scatter, shared_coordinates
from fedledger.sdk.compression.topk import ErrorFeedback, SparseUpdate, top_k
from fedledger.sdk.compression.wire import Compressed, decode, encode, encoded_size

__all__ = [
    "Compressed",
    "CompressionError",
    "ErrorFeedback",
    "Quantized8",
    "SharedSparseUpdate",
    "SparseUpdate",
    "WireError",
    "decode",
    "delta",
    "dequantize8",
    "encode",
    "encoded_size",
    "gather",
    "quantize8",
    "restore",
    "scatter",
    "shared_coordinates",
    "tensor_delta",
    "tensor_restore",
    "top_k",
]
