"""The one exception of the update-level DP library."""

from __future__ import annotations

__all__ = ["UpdateDPError"]


class UpdateDPError(ValueError):
    """An update, clip norm, noise parameter or seed that update-level DP refuses, with the reason."""
