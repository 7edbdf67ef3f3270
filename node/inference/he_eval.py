"""Evaluating one polynomial stage on a CKKS ciphertext, under a client's public evaluation context.

The node holds only its stage's matrix. It never sees a secret key: a context that carries one is
refused (accepting it would mean the client leaked its key). Contexts are cached by sha256, the
hash the client signs, so the ~53 MB context travels once per client key, not with every request.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import tenseal as ts

from fedledger.sdk.he.errors import HEContextError, HEContextMissingError, HEFormatError, HEIntegrityError
from fedledger.sdk.he.keys import sha256_hex
from fedledger.sdk.he.params import CKKS_PARAMS, CKKSParams
from fedledger.sdk.he.poly import PolyStage

__all__ = ["ContextCache", "evaluate_stage", "load_context"]


def load_context(data: bytes, params: CKKSParams = CKKS_PARAMS) -> ts.Context:
    """Deserialize a public evaluation context and check it is one a stage can use with params."""
    try:
        ctx = ts.context_from(data)
    except Exception as exc:  # TenSEAL raises bare exceptions of several types on bad bytes
        raise HEFormatError(f"evaluation context does not deserialize: {type(exc).__name__}") from None
    if ctx.has_secret_key() or not ctx.is_public():
        raise HEContextError("the evaluation context holds a secret key; a node never accepts one")
    if not (ctx.has_galois_keys() and ctx.has_relin_keys()):
        raise HEContextError("the evaluation context lacks Galois or relinearization keys")
    # The ring degree and the full modulus chain must be ours: the stage's depth budget depends on them.
    degree, bits = _modulus_chain(ctx)
    if degree != params.poly_modulus_degree or bits != params.coeff_mod_bit_sizes:
        raise HEContextError(f"evaluation context has degree {degree} and primes {bits}; this node evaluates "
                             f"{params.label()}")
    if int(round(ctx.global_scale)) != 2 ** params.scale_bits:
        raise HEContextError(f"evaluation context scale is not 2^{params.scale_bits}")
    return ctx


def _modulus_chain(ctx: ts.Context) -> tuple[int, tuple[int, ...]]:
    """The context's ring degree and its primes' bit sizes in creation order.

    TenSEAL does not expose SEAL's Modulus objects, so the sizes are read off the modulus chain: each
    level's total bit count drops by the prime it loses (the special prime first, then from the last
    middle prime down); the last level holds only the first prime.
    """
    data = ctx.seal_context().data.key_context_data()
    degree = int(data.parms().poly_modulus_degree())
    totals: list[int] = []
    while data is not None:
        totals.append(int(data.total_coeff_modulus_bit_count()))
        data = data.next_context_data()
    drops = [a - b for a, b in zip(totals, totals[1:], strict=False)]
    if not drops:
        return degree, tuple(totals)
    return degree, (totals[-1], *reversed(drops[1:]), drops[0])


class ContextCache:
    """Public contexts by their sha256, least recently used dropped first (each is tens of MB in memory)."""

    def __init__(self, capacity: int = 4, params: CKKSParams = CKKS_PARAMS) -> None:
        self.capacity, self.params = capacity, params
        self._items: OrderedDict[str, ts.Context] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, sha256: str, inline: bytes | None) -> ts.Context:
        """The context the client signed: the inline one if its hash matches, else a cached one."""
        if inline is not None:
            actual = sha256_hex(inline)
            if actual != sha256:
                raise HEIntegrityError(f"the evaluation context's sha256 {actual[:16]}... is not the one the "
                                       f"client signed ({sha256[:16]}...)")
            ctx = load_context(inline, self.params)
            with self._lock:
                self._items[sha256] = ctx
                self._items.move_to_end(sha256)
                while len(self._items) > self.capacity:
                    self._items.popitem(last=False)
            return ctx
        with self._lock:
            cached = self._items.get(sha256)
            if cached is not None:
                self._items.move_to_end(sha256)
                return cached
        raise HEContextMissingError(f"no evaluation context {sha256[:16]}... here; send it inline with the request")


def evaluate_stage(ctx: ts.Context, ciphertext: bytes, stage: PolyStage) -> bytes:
    """Deserialize the ciphertext under ctx, apply the stage, and serialize the result."""
    try:
        vector = ts.ckks_vector_from(ctx, ciphertext)
    except Exception as exc:
        raise HEFormatError(f"ciphertext does not deserialize under the evaluation context: "
                            f"{type(exc).__name__}") from None
    if vector.size() != stage.in_dim:
        raise HEFormatError(f"ciphertext holds {vector.size()} values, stage {stage.index} reads {stage.in_dim}")
    try:
        out = vector.matmul(stage.matrix.tolist())
        if stage.square:
            out = out.square()
    except Exception as exc:  # e.g. a ciphertext with too few levels left, or keys that do not fit it
        raise HEContextError(f"the stage cannot be evaluated on this ciphertext: {exc}") from None
    return bytes(out.serialize())
