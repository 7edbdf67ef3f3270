"""The robust library's value types: its error, the verdict names, a rule's parameters and its result."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from fedledger.abci_app.errors import ProtocolError

__all__ = ["RobustError", "RobustParams", "RobustResult", "Verdict"]


class RobustError(ProtocolError):
    """A robust rule cannot run on this input: bad matrix, bad parameters, or too few clients for f."""

    error_code = "ROBUST"


class Verdict:
    """The per-client verdict strings (plain ``str`` so they serialize as themselves)."""

    KEPT: Final = "kept"
    """The client's update counted in full."""
    TRIMMED: Final = "trimmed"
    """The client's update was partly discarded (trimmed coordinates, a clipped norm)."""
    FLAGGED: Final = "flagged"
    """The rule judged the client an outlier and left its update out (or gave it no weight)."""

    ALL: Final = ("kept", "trimmed", "flagged")


def _is_int(value: object) -> bool:
    # bool is an int subclass; True Byzantine clients is a bug, not 1.
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _is_real(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool | np.bool_)


@dataclass(frozen=True, eq=False)
class RobustParams:
    """Parameters shared by every rule; each rule reads the ones it needs and ignores the others.

    ``f`` is the assumed number of Byzantine clients. ``None`` means "the rule's default", which the
    rule derives from N and f (documented on each rule). Checks that need N (is N large enough for
    f?) happen when the rule runs, since N is not known here.
    """

    f: int = 0
    """Assumed number of Byzantine clients."""
    trim: int | None = None
    """Values dropped from each end per coordinate (trimmed mean; median verdicts). Default: f."""
    m: int | None = None
    """How many clients Multi-Krum averages. Default: N - f."""
    tau: float | None = None
    """Centered clipping radius. Default: the median distance of the clients to the start center."""
    iters: int | None = None
    """Iterations: geometric median's maximum (default 100), centered clipping's count (default 3)."""
    eps: float = 1e-8
    """Weiszfeld smoothing: distances below eps count as eps (absolute, in the data's units)."""
    tol: float = 1e-7
    """Weiszfeld stops when the objective (sum of distances) improves by less than tol, relatively."""
    root_update: npt.NDArray[np.floating] | None = None
    """FLTrust's server update g0, shape (d,), computed on the server's root dataset."""
    center: npt.NDArray[np.floating] | None = None
    """Centered clipping's start center (e.g. the previous round's momentum). Default: the median."""
    flag_k: float = 3.0
    """Geometric median flags a client farther than median + flag_k * 1.4826 * MAD of the distances."""
    threads: int | None = None
    """Worker threads for column blocks (None: the CPU count, at most 8). Never changes a result."""

    def __post_init__(self) -> None:
        if not _is_int(self.f) or self.f < 0:
            raise RobustError(f"f (assumed Byzantine clients) must be an integer >= 0, got {self.f!r}")
        if self.trim is not None and (not _is_int(self.trim) or self.trim < 0):
            raise RobustError(f"trim must be an integer >= 0 or None, got {self.trim!r}")
        if self.m is not None and (not _is_int(self.m) or self.m < 1):
            raise RobustError(f"m (clients Multi-Krum averages) must be an integer >= 1 or None, got {self.m!r}")
        if self.tau is not None and (not _is_real(self.tau) or not math.isfinite(self.tau) or self.tau <= 0):
            raise RobustError(f"tau (clipping radius) must be a finite number > 0 or None, got {self.tau!r}")
        if self.iters is not None and (not _is_int(self.iters) or self.iters < 1):
            raise RobustError(f"iters must be an integer >= 1 or None, got {self.iters!r}")
        if not _is_real(self.eps) or not math.isfinite(self.eps) or self.eps <= 0:
            raise RobustError(f"eps must be a finite number > 0, got {self.eps!r}")
        if not _is_real(self.tol) or not math.isfinite(self.tol) or self.tol < 0:
            raise RobustError(f"tol must be a finite number >= 0, got {self.tol!r}")
        if not _is_real(self.flag_k) or not math.isfinite(self.flag_k) or self.flag_k < 0:
            raise RobustError(f"flag_k must be a finite number >= 0, got {self.flag_k!r}")
        if self.threads is not None and (not _is_int(self.threads) or self.threads < 1):
            raise RobustError(f"threads must be an integer >= 1 or None, got {self.threads!r}")
        for name in ("root_update", "center"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, np.ndarray):
                raise RobustError(f"{name} must be a numpy array or None, got {type(value).__name__}")


# eq=False: field-wise == on numpy arrays is ambiguous, so identity equality is the honest choice.
@dataclass(frozen=True, eq=False)
class RobustResult:
    """What a rule returns: the aggregate, one verdict per client and one score per client.

    The meaning of ``scores`` is the rule's (documented on each rule): a fraction of trimmed
    coordinates, a Krum score, a distance, a trust score. Rows keep the input's order.
    """

    aggregate: npt.NDArray[np.float32]
    """The aggregated update, shape (d,), float32."""
    verdicts: tuple[str, ...]
    """One of Verdict.KEPT / TRIMMED / FLAGGED per client, in row order."""
    scores: npt.NDArray[np.float64]
    """One float64 score per client, in row order."""

    def __post_init__(self) -> None:
        if self.aggregate.ndim != 1 or self.aggregate.dtype != np.float32:
            raise RobustError(
                f"aggregate must be a 1-D float32 array, got {self.aggregate.dtype} {self.aggregate.shape}"
            )
        if self.scores.shape != (len(self.verdicts),) or self.scores.dtype != np.float64:
            raise RobustError(f"need one float64 score per verdict, got {self.scores.shape} for {len(self.verdicts)}")
        unknown = sorted(set(self.verdicts) - set(Verdict.ALL))
        if unknown:
            raise RobustError(f"unknown verdicts {unknown}; known: {list(Verdict.ALL)}")
