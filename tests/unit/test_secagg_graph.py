"""The seeded neighbour graph: degree, symmetry, ring structure, determinism."""

from __future__ import annotations

import hashlib
import math

import pytest

from fedledger.sdk.secagg.errors import SecAggError
from fedledger.sdk.secagg.graph import build_graph, default_degree, default_threshold

SEED = hashlib.sha256(b"block").digest()
OTHER = hashlib.sha256(b"another block").digest()


@pytest.mark.parametrize(("n", "k"), [(1, 0), (2, 1), (5, 4), (10, 9), (11, 10), (12, 11), (13, 12),
                                      (100, 20), (500, 28), (1000, 30)])
def test_default_degree(n: int, k: int) -> None:
    assert default_degree(n) == k
    if n > 1:
        assert k >= min(n - 1, 3 * math.log2(n))


@pytest.mark.parametrize(("n", "degree"), [(2, None), (7, None), (7, 4), (40, None), (40, 6), (300, None)])
def test_degree_symmetry_and_ring(n: int, degree: int | None) -> None:
    members = [3 * i + 1 for i in range(n)]  # indices need not be 0..n-1
    g = build_graph(members, SEED, degree)
    k = g.degree
    assert g.members == tuple(members)
    for u in members:
        nb = g.of(u)
        assert len(nb) == k and len(set(nb)) == k and u not in nb
        assert list(nb) == sorted(nb)
        for v in nb:
            assert u in g.of(v)
    if k < n - 1:
        edges = sum(len(g.of(u)) for u in members) // 2
        assert edges == n * k // 2
        # Connected (a BFS reaches everyone).
        seen = {members[0]}
        frontier = [members[0]]
        while frontier:
            nxt = {v for u in frontier for v in g.of(u)} - seen
            seen.update(nxt)
            frontier = sorted(nxt)
        assert len(seen) == n


def test_harary_ring_structure() -> None:
    # Rebuild the ring order from the graph: with k = 2 the graph is a single cycle.
    g = build_graph(list(range(30)), SEED, 2)
    start = 0
    cycle = [start, g.of(start)[0]]
    while len(cycle) < 30:
        a, b = g.of(cycle[-1])
        cycle.append(a if a != cycle[-2] else b)
    assert sorted(cycle) == list(range(30))
    assert cycle[0] in g.of(cycle[-1])
    # With k = 4, the neighbours are exactly the nodes at ring distance 1 and 2 of the k = 2 cycle.
    g4 = build_graph(list(range(30)), SEED, 4)
    for pos, u in enumerate(cycle):
        ring = {cycle[(pos + s) % 30] for s in (-2, -1, 1, 2)}
        assert set(g4.of(u)) == ring


def test_determinism_and_seed_dependence() -> None:
    members = list(range(50))
    a = build_graph(members, SEED)
    assert a == build_graph(list(reversed(members)), SEED)  # member order is irrelevant
    b = build_graph(members, OTHER)
    assert a.neighbours != b.neighbours


def test_threshold_default() -> None:
    assert [default_threshold(k) for k in (0, 1, 2, 3, 20, 30)] == [1, 1, 2, 2, 11, 16]


def test_bad_graph_input() -> None:
    with pytest.raises(SecAggError, match="must be even"):
        build_graph(list(range(20)), SEED, 5)
    with pytest.raises(SecAggError, match="listed twice"):
        build_graph([1, 2, 2], SEED)
    with pytest.raises(SecAggError, match="at least one member"):
        build_graph([], SEED)
    with pytest.raises(SecAggError, match="32 bytes"):
        build_graph([1, 2], b"x")
    with pytest.raises(SecAggError, match="client indices"):
        build_graph([-1, 2], SEED)
    with pytest.raises(SecAggError, match="not a member"):
        build_graph([1, 2], SEED).of(3)
    with pytest.raises(SecAggError, match="degree 0"):
        build_graph([1, 2, 3], SEED, 0)
