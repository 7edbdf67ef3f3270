"""The exceptions of the compression library."""

from __future__ import annotations

__all__ = ["CompressionError", "WireError"]


class CompressionError(ValueError):
    """An input a compressor refuses (wrong dtype or shape, non-finite values, k out of range), with the reason."""


class WireError(CompressionError):
    """Bytes that are not a valid compressed-update payload (garbage, truncated, trailing bytes, bad fields)."""
