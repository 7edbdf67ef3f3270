"""Input checks shared by every rule: the (N, d) float32 matrix, a (d,) vector, and N against f."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fedledger.node.robust.types import RobustError

__all__ = ["require_clients", "require_finite", "validate_matrix", "validate_vector"]

# Elements checked per np.isfinite call: a chunk that stays in cache, so the check costs one pass.
_FINITE_CHUNK = 1 << 18


def _as_float32(value: object, name: str) -> npt.NDArray[np.float32]:
    """The value as a C-contiguous float32 array, copied only when its dtype or layout requires it."""
    if not isinstance(value, np.ndarray):
        raise RobustError(f"{name} must be a numpy array, got {type(value).__name__}")
    if value.dtype == np.float32:
        return np.ascontiguousarray(value)
    if value.dtype.kind not in "fiu":
        raise RobustError(f"{name} must hold real numbers (float32, or exactly convertible), got dtype {value.dtype}")
    converted = np.ascontiguousarray(value, dtype=np.float32)
    # "Convertible exactly": a float64 0.1 would silently become another number in float32.
    # NaN never equals itself, so the finiteness check below reports it rather than this one.
    with np.errstate(invalid="ignore", over="ignore"):
        same = (converted.astype(value.dtype) == value) | ~np.isfinite(value)
    if not bool(np.all(same)):
        raise RobustError(f"{name} has dtype {value.dtype} with values that float32 cannot represent exactly")
    return converted


def _require_finite(arr: npt.NDArray[np.float32], name: str) -> None:
    flat = arr.reshape(-1)
    buf = np.empty(min(_FINITE_CHUNK, flat.size), dtype=np.bool_)
    for start in range(0, flat.size, _FINITE_CHUNK):
        chunk = flat[start : start + _FINITE_CHUNK]
        out = buf[: chunk.size]
        np.isfinite(chunk, out=out)
        if not bool(out.all()):
            # Only on failure: find the rows to name (the slow path is fine here).
            bad = np.argwhere(~np.isfinite(arr))
            where = ", ".join(str(tuple(int(i) for i in idx)) for idx in bad[:5])
            more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
            raise RobustError(f"{name} has {len(bad)} non-finite value(s) (NaN or inf) at {where}{more}")


def require_finite(arr: npt.NDArray[np.float32], name: str = "x") -> None:
    """Raise RobustError naming where arr holds NaN or inf (one cache-friendly pass when it is clean)."""
    _require_finite(arr, name)


def validate_matrix(x: object, check_finite: bool = True) -> npt.NDArray[np.float32]:
    """Check the (N, d) update matrix and return it as C-contiguous float32 (no copy if it already is).

    Requires a 2-D numpy array with N >= 1 rows and d >= 1 columns, float32 or a real dtype whose
    values float32 holds exactly, and only finite values. check_finite=False leaves the last check
    to a caller that sees every value anyway (the coordinate-wise rules check their sorted ends).
    """
    if isinstance(x, np.ndarray) and x.ndim != 2:
        raise RobustError(f"x must be a 2-D (N clients, d coordinates) array, got shape {x.shape}")
    arr = _as_float32(x, "x")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise RobustError(f"x must have at least one client and one coordinate, got shape {arr.shape}")
    if check_finite:
        _require_finite(arr, "x")
    return arr


def validate_vector(v: object, d: int, name: str) -> npt.NDArray[np.float32]:
    """Check a (d,) vector that goes with an (N, d) matrix (a root update, a center) and return it as float32."""
    if isinstance(v, np.ndarray) and v.shape != (d,):
        raise RobustError(f"{name} must have shape ({d},) to match x, got {v.shape}")
    arr = _as_float32(v, name)
    _require_finite(arr, name)
    return arr


def require_clients(rule: str, n: int, needed: int, condition: str) -> None:
    """Raise RobustError unless n >= needed; condition spells the rule's requirement, e.g. "N > 2f + 2"."""
    if n < needed:
        raise RobustError(f"{rule} needs {condition}, i.e. at least {needed} clients; got N={n}")
