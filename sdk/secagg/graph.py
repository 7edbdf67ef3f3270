"""The SecAgg+ neighbour graph: a Harary graph on a ring permuted by the round seed (Bell et al. 2020).

Construction. The members are sorted, then placed on a ring in the order of a permutation drawn
from the 32-byte round seed (the block hash) with the AES-CTR PRG; each member is joined to the
k/2 nearest members on either side. The graph is symmetric and every member has degree exactly k,
and any party holding the seed and the member list derives the same graph.

Degree. By default k is the smallest even number ≥ 3·log2(n), capped at n − 1 (a complete graph
when n − 1 ≤ that, in which case k = n − 1 may be odd): n = 100 → 20, n = 500 → 28,
n = 1000 → 30. Bell et al. show that O(log n) neighbours suffice for privacy and dropout
robustness against a constant fraction of corrupt or dropped clients, with constants set by the
security parameters; 3 is a practical default, and `degree` can be given explicitly.

Threshold. A client's secrets are shared t-of-k among its neighbours. By default
t = ⌊k/2⌋ + 1: a strict majority of the neighbourhood, so no two disjoint sets of neighbours can
each reach t (a server that obtained both the self-mask share and the key share of one client from
different neighbours would unmask that client's input). The dropout tolerance follows: every
client whose mask must be removed needs t of its k neighbours to answer the unmask stage, so each
neighbourhood tolerates k − t dropouts (9 of 20 at n = 100). Higher dropout rates need a lower t
(which weakens that guarantee unless, as with FedLedger's chain, the survivor set is public and
cannot be equivocated) or a larger k.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fedledger.sdk.secagg.errors import SecAggError
from fedledger.sdk.secagg.prg import check_seed, derive_seed, permutation

__all__ = [
    "DEGREE_FACTOR",
    "MAX_INDEX",
    "NeighbourGraph",
    "build_graph",
    "check_members",
    "default_degree",
    "default_threshold",
]

DEGREE_FACTOR = 3.0
MAX_INDEX = 2**32 - 2  # indices travel as uint32 and the Shamir point is index + 1


def default_degree(n: int, factor: float = DEGREE_FACTOR) -> int:
    """The smallest even k ≥ factor·log2(n), capped at n − 1 (0 for a single member)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise SecAggError(f"the number of members must be a positive integer, got {n!r}")
    if not factor > 0:
        raise SecAggError(f"degree factor must be positive, got {factor}")
    if n == 1:
        return 0
    k = 2 * math.ceil(factor * math.log2(n) / 2)
    return min(max(k, 2), n - 1)


def default_threshold(degree: int) -> int:
    """⌊k/2⌋ + 1: a strict majority of the k neighbours (1 for k ≤ 1)."""
    if degree < 0:
        raise SecAggError(f"degree must be non-negative, got {degree}")
    return degree // 2 + 1 if degree >= 1 else 1


def check_members(members: Sequence[int]) -> tuple[int, ...]:
    """Return members as a sorted tuple; SecAggError if empty, duplicated or not indices in [0, 2^32 − 2]."""
    for m in members:
        if isinstance(m, bool) or not isinstance(m, int) or not 0 <= m <= MAX_INDEX:
            raise SecAggError(f"client indices must be integers in [0, {MAX_INDEX}], got {m!r}")
    ordered = tuple(sorted(members))
    if not ordered:
        raise SecAggError("a round needs at least one member")
    for a, b in zip(ordered, ordered[1:], strict=False):
        if a == b:
            raise SecAggError(f"client {a} is listed twice among the members")
    return ordered


@dataclass(frozen=True)
class NeighbourGraph:
    """An undirected graph over the round's members; `neighbours[u]` is sorted and excludes u."""

    members: tuple[int, ...]
    degree: int
    neighbours: Mapping[int, tuple[int, ...]]

    def of(self, index: int) -> tuple[int, ...]:
        """The neighbours of index; SecAggError if index is not a member."""
        try:
            return self.neighbours[index]
        except KeyError:
            raise SecAggError(f"client {index} is not a member of this round") from None

    def are_neighbours(self, u: int, v: int) -> bool:
        """Whether u and v are joined (False for non-members)."""
        return v in self.neighbours.get(u, ())


def build_graph(members: Sequence[int], seed: bytes, degree: int | None = None) -> NeighbourGraph:
    """The neighbour graph of members for the round seed; degree defaults to `default_degree`."""
    ordered = check_members(members)
    check_seed(seed, "graph seed")
    n = len(ordered)
    k = default_degree(n) if degree is None else degree
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise SecAggError(f"degree must be a non-negative integer, got {degree!r}")
    if n > 1 and k == 0:
        raise SecAggError("degree 0 leaves every client without neighbours")
    if k >= n - 1:
        # Complete graph: a degree of n − 1 or more cannot be anything else.
        k = n - 1
        neighbours = {u: tuple(v for v in ordered if v != u) for u in ordered}
        return NeighbourGraph(ordered, k, neighbours)
    if k % 2:
        raise SecAggError(f"degree {k} must be even when it is below n − 1 = {n - 1} (k/2 on each side of the ring)")
    ring = [ordered[int(i)] for i in permutation(derive_seed(seed, "neighbour-graph", n), n)]
    half = k // 2
    built: dict[int, set[int]] = {u: set() for u in ordered}
    for pos, u in enumerate(ring):
        for step in range(1, half + 1):
            v = ring[(pos + step) % n]
            built[u].add(v)
            built[v].add(u)
    return NeighbourGraph(ordered, k, {u: tuple(sorted(built[u])) for u in ordered})
