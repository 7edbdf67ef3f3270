"""Argument checks shared by the update-level DP modules (private)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.sdk.dp.errors import UpdateDPError

__all__ = ["finite_real", "nonnegative_int", "positive_int", "positive_real", "seed_or_none", "update_array"]


def finite_real(value: object, what: str) -> float:
    """``value`` as a finite float of any sign; bools, strings and NaN are refused."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating) \
            or not math.isfinite(float(value)):
        raise UpdateDPError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def positive_real(value: object, what: str, allow_zero: bool = False) -> float:
    """``value`` as a finite float > 0 (or ≥ 0 with allow_zero); bools, strings and NaN are refused."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise UpdateDPError(f"{what} must be a real number, not {type(value).__name__}")
    out = float(value)
    if not math.isfinite(out) or out < 0 or (out == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise UpdateDPError(f"{what} must be finite and {bound}, got {value!r}")
    return out


def positive_int(value: object, what: str) -> int:
    """``value`` as an int ≥ 1 (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise UpdateDPError(f"{what} must be a positive int, got {value!r}")
    return int(value)


def nonnegative_int(value: object, what: str) -> int:
    """``value`` as an int ≥ 0 (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise UpdateDPError(f"{what} must be a non-negative int, got {value!r}")
    return int(value)


def seed_or_none(seed: object) -> bytes | None:
    """A test seed must be bytes (any length; it is hashed); None means a fresh OS seed."""
    if seed is None:
        return None
    if not isinstance(seed, bytes | bytearray):
        raise UpdateDPError(f"seed must be bytes or None, not {type(seed).__name__}")
    return bytes(seed)


def update_array(x: Any, what: str = "update") -> npt.NDArray[np.float32]:
    """``x`` if it is a float32 ndarray with only finite values, else UpdateDPError saying what is wrong."""
    if not isinstance(x, np.ndarray):
        raise UpdateDPError(f"{what} must be a numpy array, not {type(x).__name__}")
    if x.dtype != np.float32:
        raise UpdateDPError(f"{what} must be float32, got {x.dtype} (convert explicitly)")
    if not np.isfinite(x).all():
        raise UpdateDPError(f"{what} contains NaN or infinite values")
    return x
