"""Byzantine-robust aggregation: pure numpy rules over an (N, d) float32 matrix of client updates.

Rows are clients (N), columns coordinates (d). Every rule returns a RobustResult: the (d,)
float32 aggregate, one verdict per client ("kept", "trimmed" or "flagged"; the chain turns them
into reputation) and one float64 score per client. ROBUST_RULES maps the on-chain rule names to
uniform callables ``rule(x, RobustParams(...))``; get_robust_rule(name) looks one up.

Conventions
-----------
* f is the assumed number of Byzantine clients. Each rule checks that N is large enough for f and
  raises RobustError saying what it needs: median and trimmed mean N >= 2f + 1, Krum and
  Multi-Krum N > 2f + 2, Bulyan N >= 4f + 3. Geometric median, centered clipping and FLTrust
  take no f.
* The median of an even number of values is the average of the two middle values (computed in
  float64, rounded once to float32).
* Trimmed mean drops `trim` (default f) values from each end per coordinate.
* Ties: where a choice between clients must be made (equal Krum scores, equal distances), the
  lowest row index wins. Coordinate-wise results depend on values only, never on row order.
* Input: a 2-D numpy array, float32 or a real dtype whose values float32 holds exactly, all
  finite, N >= 1, d >= 1 (validate_matrix); otherwise RobustError naming the problem.
* Determinism: the same input bytes give the same output bytes, on any machine, any BLAS and any
  thread count. Sums accumulate in float64 in a fixed order (numpy's elementwise ops and its
  pairwise sum: plain IEEE arithmetic, no fast-math) and round once to float32 (reductions.py);
  no value that reaches an output passes through BLAS except the Gram matrix, whose dot products
  are made exact (distances.py). Threads only split columns into fixed blocks (blocks.py).
  A zero in a coordinate-wise result is always +0.0.
* Speed: no Python loop over pairs or coordinates; the data is read a few times per rule in
  cache-sized column blocks. Iterative rules (geometric median, centered clipping) iterate on
  an N x N Gram matrix in coefficient space, not on the data.

Each rule's module documents its verdicts and scores: coordinate.py (median, trimmed mean),
krum.py (Krum, Multi-Krum, Bulyan), geomed.py, clipping.py (centered clipping, norm bounding),
fltrust.py, guards.py (cosine anomaly scores).
"""

from fedledger.node.robust.clipping import centered_clipping, norm_bound
from fedledger.node.robust.coordinate import closest_to_median_mean, coordinate_median, median_vector, trimmed_mean
from fedledger.node.robust.distances import gram_matrix, sq_distances
from fedledger.node.robust.fltrust import fltrust
from fedledger.node.robust.geomed import geometric_median
from fedledger.node.robust.guards import cosine_guard, cosine_scores, flag_below
from fedledger.node.robust.krum import bulyan, krum, krum_scores, multi_krum
from fedledger.node.robust.registry import ROBUST_RULES, RobustRule, get_robust_rule
from fedledger.node.robust.types import RobustError, RobustParams, RobustResult, Verdict
from fedledger.node.robust.validation import validate_matrix, validate_vector

__all__ = [
    "ROBUST_RULES",
    "RobustError",
    "RobustParams",
    "RobustResult",
    "RobustRule",
    "Verdict",
    "bulyan",
    "centered_clipping",
    "closest_to_median_mean",
    "coordinate_median",
    "cosine_guard",
    "cosine_scores",
    "flag_below",
    "fltrust",
    "geometric_median",
    "get_robust_rule",
    "gram_matrix",
    "krum",
    "krum_scores",
    "median_vector",
    "multi_krum",
    "norm_bound",
    "sq_distances",
    "trimmed_mean",
    "validate_matrix",
    "validate_vector",
]
