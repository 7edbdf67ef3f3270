"""The exceptions of the compression library."""

from __future__ import annotations

from fedledger.abci_app.errors import ProtocolError

__all__ = ["CompressionError", "WireError"]


class CompressionError(ProtocolError):
    """An input a compressor refuses (wrong dtype or shape, non-finite values, k out of range), with the reason."""

    error_code = "COMPRESSION"


class WireError(CompressionError):
    """Bytes that are not a valid compressed-update payload (garbage, truncated, trailing bytes, bad fields)."""

    error_code = "COMPRESSION_WIRE"
