"""The server's side of a SecAgg+ round: from the posted messages to the exact sum of the survivors' inputs.

`reconstruct` validates every message against the round setup, rebuilds each survivor's
self-mask seed and each dropout's s-key from the revealed shares (checking them against the
self-mask commitment and the advertised s_pk, so tampered shares fail loudly), and only then does
the vector work: one pass adding the masked inputs, one PRG expansion subtracted per survivor,
and one expansion per (dropout, surviving neighbour) pair. Everything is integer arithmetic mod
2^b, so the result is bit-identical whatever order the messages arrive in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from fedledger.sdk.secagg import keys
from fedledger.sdk.secagg.errors import RecoveryError, SecAggError
from fedledger.sdk.secagg.messages import (
    AdvertiseMessage,
    MaskedInputMessage,
    ShareKeysMessage,
    ShareKind,
    UnmaskMessage,
)
from fedledger.sdk.secagg.prg import MaskAccumulator, UIntArray
from fedledger.sdk.secagg.protocol import RoundSetup, index_roster
from fedledger.sdk.secagg.shamir import ShamirError, Share, combine_secret

__all__ = ["AggregateResult", "reconstruct"]


# eq=False: the sum is a numpy array; compare results by their fields explicitly.
@dataclass(frozen=True, eq=False)
class AggregateResult:
    """The unmasked sum mod 2^b of the survivors' quantized inputs, and who was in and out."""

    total: UIntArray
    field_bits: int
    survivors: tuple[int, ...]
    dropped: tuple[int, ...]
    responders: tuple[int, ...]

    @property
    def count(self) -> int:
        """How many inputs the sum holds."""
        return len(self.survivors)


_M = TypeVar("_M", ShareKeysMessage, MaskedInputMessage, UnmaskMessage)


def _index_by_sender(messages: Iterable[_M], cls: type[_M], setup: RoundSetup, what: str) -> dict[int, _M]:
    out: dict[int, _M] = {}
    for msg in messages:
        if not isinstance(msg, cls):
            raise SecAggError(f"expected {cls.__name__} for the {what}, got {type(msg).__name__}")
        if msg.context != setup.context:
            raise SecAggError(f"the {what} of client {msg.sender} belongs to another round")
        if msg.sender in out:
            raise SecAggError(f"client {msg.sender} posted its {what} twice")
        out[msg.sender] = msg
    return dict(sorted(out.items()))


def reconstruct(
    setup: RoundSetup,
    roster: Iterable[AdvertiseMessage],
    share_messages: Iterable[ShareKeysMessage],
    masked_inputs: Iterable[MaskedInputMessage],
    unmask_messages: Iterable[UnmaskMessage],
) -> AggregateResult:
    """The exact sum mod 2^b of the quantized inputs of the clients that posted masked inputs.

    Raises RecoveryError (a SecAggError) naming every client whose secret has fewer than t
    revealed shares, and SecAggError for any message that breaks the protocol.
    """
    t = setup.threshold
    advertised = index_roster(setup, roster)
    sharers = _index_by_sender(share_messages, ShareKeysMessage, setup, "shares")
    inputs = _index_by_sender(masked_inputs, MaskedInputMessage, setup, "masked input")
    responses = _index_by_sender(unmask_messages, UnmaskMessage, setup, "unmask shares")
    for v in sharers:
        if v not in advertised:
            raise SecAggError(f"client {v} posted shares but never advertised keys")
    for u, msg in inputs.items():
        if u not in sharers:
            raise SecAggError(f"client {u} posted a masked input but never shared keys")
        if msg.field_bits != setup.field_bits or msg.dim != setup.dim:
            raise SecAggError(
                f"the masked input of client {u} is {msg.dim} elements of Z_2^{msg.field_bits}, "
                f"expected {setup.dim} of Z_2^{setup.field_bits}"
            )
    if not inputs:
        raise SecAggError("no client posted a masked input; there is nothing to aggregate")
    survivors = set(inputs)
    dropped = set(sharers) - survivors

    # Gather the revealed shares per (owner, kind), checking each responder's right to hold them.
    gathered: dict[int, list[Share]] = {c: [] for c in sharers}
    for w, resp in responses.items():
        if w not in survivors:
            raise SecAggError(f"client {w} revealed shares but posted no masked input")
        for share in resp.shares:
            owner = share.owner
            if owner not in sharers or not setup.graph.are_neighbours(w, owner):
                raise SecAggError(f"client {w} revealed a share of client {owner}, which never shared with it")
            expected = ShareKind.SELF_MASK if owner in survivors else ShareKind.SECRET_KEY
            if share.kind != expected:
                status = "survived" if owner in survivors else "dropped"
                raise SecAggError(
                    f"client {w} revealed the {share.kind.name} share of client {owner}, which {status}; "
                    f"only its {expected.name} share may be revealed"
                )
            gathered[owner].append(Share(w + 1, share.value))

    # A dropout none of whose neighbours survived left no mask in the sum: its key is not needed
    # (and could not be rebuilt, since only survivors reveal shares).
    entangled = {v for v in dropped if any(u in survivors for u in setup.neighbours(v))}
    needed = sorted(survivors | entangled)
    missing = {c: len(gathered[c]) for c in needed if len(gathered[c]) < t}
    if missing:
        raise RecoveryError(t, missing)

    b_seeds: dict[int, bytes] = {}
    s_keys: dict[int, X25519PrivateKey] = {}
    for c in needed:
        try:
            secret = combine_secret(gathered[c], t)
        except ShamirError as exc:
            raise SecAggError(f"cannot reconstruct the secret of client {c}: {exc}") from None
        if c in survivors:
            commitment = sharers[c].b_commitment
            if keys.self_mask_commitment(setup.context, c, secret) != commitment:
                raise SecAggError(f"the self-mask seed rebuilt for client {c} does not match its commitment")
            b_seeds[c] = secret
        else:
            s_key = keys.load_private_key(secret)
            if keys.public_bytes(s_key) != advertised[c].s_pk:
                raise SecAggError(f"the s-key rebuilt for dropped client {c} does not match its advertised s_pk")
            s_keys[c] = s_key

    acc = MaskAccumulator(setup.dim, setup.field_bits)
    for u in sorted(survivors):
        acc.add_vector(inputs[u].vector)
        acc.subtract_seed(b_seeds[u])
    for v in sorted(entangled):
        for u in setup.neighbours(v):
            if u not in survivors:
                continue
            seed = keys.mask_seed(s_keys[v], advertised[u].s_pk, setup.context)
            # y_u carries +PRG(s_uv) when u < v and −PRG(s_uv) when u > v; take it back out.
            if u < v:
                acc.subtract_seed(seed)
            else:
                acc.add_seed(seed)
    return AggregateResult(
        total=acc.result(),
        field_bits=setup.field_bits,
        survivors=tuple(sorted(survivors)),
        dropped=tuple(sorted(dropped)),
        responders=tuple(responses),
    )
