"""The rules under their on-chain names, each as a uniform callable (x, params) -> RobustResult."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from fedledger.node.robust.clipping import centered_clipping
from fedledger.node.robust.coordinate import coordinate_median, trimmed_mean
from fedledger.node.robust.fltrust import fltrust
from fedledger.node.robust.geomed import geometric_median
from fedledger.node.robust.krum import bulyan, krum, multi_krum
from fedledger.node.robust.types import RobustError, RobustParams, RobustResult

__all__ = ["ROBUST_RULES", "RobustRule", "get_robust_rule"]


class RobustRule(Protocol):
    """A robust aggregator: the (N, d) float32 updates and the parameters in, the result out."""

    def __call__(self, x: npt.NDArray[np.float32], params: RobustParams, /) -> RobustResult:
        """Aggregate x; raise RobustError if the input or the parameters do not fit the rule."""
        ...


def _median(x: npt.NDArray[np.float32], p: RobustParams) -> RobustResult:
    return coordinate_median(x, f=p.f, trim=p.trim, threads=p.threads)


def _trimmed_mean(x: npt.NDArray[np.float32], p: RobustParams) -> RobustResult:
    return trimmed_mean(x, f=p.f, trim=p.trim, threads=p.threads)


def _krum(x: npt.NDArray[np.float32], p: RobustParams) -> RobustResult:
    return krum(x, p.f, threads=p.threads)


def _multi_krum(x: npt.NDArray[np.float32], p: RobustParams) -> RobustResult:
    return multi_krum(x, p.f, m=p.m, threads=p.threads)


def _bulyan(x: npt.NDArray[np.float32], p: RobustParams) -> RobustResult:
    return bulyan(x, p.f, threads=p.threads)


def _geomed(x: npt.NDArray[np.float32], p: RobustParams) -> RobustResult:
    return geometric_median(x, iters=p.iters, eps=p.eps, tol=p.tol, flag_k=p.flag_k, threads=p.threads)


def _centered_clipping(x: npt.NDArray[np.float32], p: RobustParams) -> RobustResult:
    return centered_clipping(x, tau=p.tau, iters=p.iters, center=p.center, threads=p.threads)


def _fltrust(x: npt.NDArray[np.float32], p: RobustParams) -> RobustResult:
    return fltrust(x, p.root_update, threads=p.threads)


ROBUST_RULES: dict[str, RobustRule] = {
    "median": _median,
    "trimmed_mean": _trimmed_mean,
    "krum": _krum,
    "multi_krum": _multi_krum,
    "bulyan": _bulyan,
    "geomed": _geomed,
    "centered_clipping": _centered_clipping,
    "fltrust": _fltrust,
}


def get_robust_rule(name: str) -> RobustRule:
    """The rule registered under its on-chain name, or RobustError listing the known names."""
    try:
        return ROBUST_RULES[name]
    except (KeyError, TypeError):
        raise RobustError(f"unknown robust rule {name!r}; known rules: {sorted(ROBUST_RULES)}") from None
