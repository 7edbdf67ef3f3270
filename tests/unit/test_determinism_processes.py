"""Determinism across processes: the recorded chains replay to the same app hash under different hash seeds.

A determinism check inside one process (f(x) == f(x)) cannot see what differs between validators:
set and dict-of-str iteration order changes with PYTHONHASHSEED, which is drawn per process. Here
the recorded chains (every registered tx type but the two zk ones, see test_replay.py) are replayed
in separate interpreters with PYTHONHASHSEED 0, 12345 and one random seed, each printing the app
hash after every block (tests/replay_child.py); any difference fails, naming the first block.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from tests.imports import ROOT
from tests.replay_child import FILES, FIXTURES
from tests.replay_record import read


def run_child(seed: str) -> list[str]:
    """The child's per-block lines under PYTHONHASHSEED=seed."""
    env = {**os.environ, "PYTHONHASHSEED": seed}
    proc = subprocess.run([sys.executable, "-m", "tests.replay_child"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, (seed, proc.stderr[-2000:])
    return proc.stdout.splitlines()


def first_difference(a: list[str], b: list[str]) -> str | None:
    """The first `<chain> <height>` whose app hash differs between two runs, or None if they agree."""
    for x, y in zip(a, b, strict=False):
        if x != y:
            return f"chain {x.split()[0]} height {x.split()[1]}: {x.split()[2]} != {y.split()[2]}"
    if len(a) != len(b):
        return f"one run committed {len(a)} blocks, the other {len(b)}"
    return None


def test_first_difference_names_the_block() -> None:
    assert first_difference(["0 1 aa", "0 2 bb"], ["0 1 aa", "0 2 bb"]) is None
    assert first_difference(["0 1 aa", "3 7 bb"], ["0 1 aa", "3 7 cc"]) == "chain 3 height 7: bb != cc"
    assert first_difference(["0 1 aa"], ["0 1 aa", "0 2 bb"]) == "one run committed 1 blocks, the other 2"


def test_replays_agree_across_hash_seeds() -> None:
    seeds = ["0", "12345", str(random.SystemRandom().randrange(1, 2**32 - 1))]
    with ThreadPoolExecutor(len(seeds)) as pool:
        runs = list(pool.map(run_child, seeds))
    expected = sum(1 + len(c["blocks"]) for name in FILES for c in read(FIXTURES / name))
    assert len(runs[0]) == expected > 2000
    for seed, run in zip(seeds[1:], runs[1:], strict=True):
        difference = first_difference(runs[0], run)
        assert difference is None, f"PYTHONHASHSEED=0 vs {seed}: {difference}"
