"""The recursion limit EVM execution needs, raised only while it runs.

py-evm recurses in Python for every nested message call (about nine frames per level), and the
EVM allows 1024 levels, so it needs py-evm's own limit of 12288 frames; the rest of the ABCI app
keeps the interpreter's default. If the interpreter still runs out, the execution is refused
(deterministically: the same code on every validator recurses the same way).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["EVM_RECURSION_LIMIT", "evm_recursion"]

EVM_RECURSION_LIMIT = 12 * 1024


@contextmanager
def evm_recursion() -> Iterator[None]:
    """Run the block with the recursion limit at least EVM_RECURSION_LIMIT, then restore it."""
    before = sys.getrecursionlimit()
    if before < EVM_RECURSION_LIMIT:
        sys.setrecursionlimit(EVM_RECURSION_LIMIT)
    try:
        yield
    finally:
        sys.setrecursionlimit(before)
