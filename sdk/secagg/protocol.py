"""A SecAgg+ round's public setup and the client's side of it, as pure stage functions.

Stages (Bell et al. 2020, with the chain as the bulletin board that fixes every set below):

    0 advertise     every member posts two X25519 public keys               -> roster  U0
    1 share_keys    every roster member posts encrypted t-of-k shares of its
                    self-mask seed b_u and its s-key for its neighbours     -> sharers U1
    2 masked_input  every sharer posts y_u = x_u + PRG(b_u)
                                       + Σ_{v ∈ N(u) ∩ U1} ±PRG(s_uv)   mod 2^b  -> survivors U2
    3 unmask        every survivor reveals, for each neighbour v in U1, the share of b_v if v ∈ U2
                    or the share of v's s-key if v ∈ U1 \\ U2 (never both)      -> responders U3

The pairwise mask of u and v enters y_u with + when u < v and − when u > v, so it cancels in the
sum of two survivors. The server (`server.reconstruct`) removes the survivors' self-masks and the
masks that survivors share with dropouts. A client object holds one round's secrets and is used
once; nothing is cached across rounds.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Collection, Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fedledger.sdk.secagg import keys
from fedledger.sdk.secagg.errors import SecAggError
from fedledger.sdk.secagg.graph import NeighbourGraph, build_graph, check_members, default_threshold
from fedledger.sdk.secagg.messages import (
    AdvertiseMessage,
    EncryptedShare,
    MaskedInputMessage,
    RevealedShare,
    ShareKeysMessage,
    ShareKind,
    UnmaskMessage,
)
from fedledger.sdk.secagg.prg import MaskAccumulator, RandomSource, check_bits, check_seed
from fedledger.sdk.secagg.shamir import SHARE_BYTES, split_secret

__all__ = ["RoundSetup", "SecAggClient", "index_roster", "setup_round"]


@dataclass(frozen=True)
class RoundSetup:
    """What every party of one round agrees on before it starts (all derivable from chain state)."""

    context: bytes
    members: tuple[int, ...]
    dim: int
    field_bits: int
    graph: NeighbourGraph
    threshold: int

    def neighbours(self, index: int) -> tuple[int, ...]:
        """The neighbours of a member."""
        return self.graph.of(index)


def setup_round(
    context: bytes,
    members: Iterable[int],
    dim: int,
    field_bits: int,
    *,
    degree: int | None = None,
    threshold: int | None = None,
) -> RoundSetup:
    """The round's setup: context is the 32-byte round seed (block hash), which also seeds the graph.

    degree defaults to `graph.default_degree(len(members))`, threshold to ⌊k/2⌋ + 1; the
    threshold must lie in [1, k] for k the graph's degree.
    """
    context = check_seed(context, "round context")
    ordered = check_members(list(members))
    if len(ordered) < 2:
        # The "sum" of one input is that input: there is nothing to hide it among.
        raise SecAggError(f"secure aggregation needs at least 2 members, got {len(ordered)}")
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise SecAggError(f"dimension must be a positive integer, got {dim!r}")
    check_bits(field_bits)
    graph = build_graph(ordered, context, degree)
    t = default_threshold(graph.degree) if threshold is None else threshold
    if isinstance(t, bool) or not isinstance(t, int) or not 1 <= t <= max(graph.degree, 1):
        raise SecAggError(f"threshold must be an integer in [1, {max(graph.degree, 1)}] (the degree), got {t!r}")
    return RoundSetup(context, ordered, dim, field_bits, graph, t)


def index_roster(setup: RoundSetup, roster: Iterable[AdvertiseMessage]) -> dict[int, AdvertiseMessage]:
    """The roster by index, checked: this round's context, members only, one entry each, distinct keys."""
    members = set(setup.members)
    out: dict[int, AdvertiseMessage] = {}
    for msg in roster:
        if not isinstance(msg, AdvertiseMessage):
            raise SecAggError(f"roster entries must be AdvertiseMessage, got {type(msg).__name__}")
        if msg.context != setup.context:
            raise SecAggError(f"advertisement of client {msg.index} belongs to another round")
        if msg.index not in members:
            raise SecAggError(f"client {msg.index} advertised keys but is not a member of this round")
        if msg.index in out:
            raise SecAggError(f"client {msg.index} advertised keys twice")
        if msg.c_pk == msg.s_pk:
            raise SecAggError(f"client {msg.index} advertised the same key as c_pk and s_pk")
        out[msg.index] = msg
    return dict(sorted(out.items()))


class SecAggClient:
    """One member's side of one round: call advertise, share_keys, masked_input, unmask in order."""

    def __init__(self, setup: RoundSetup, index: int, rng: RandomSource = os.urandom) -> None:
        if not isinstance(setup, RoundSetup):
            raise SecAggError("SecAggClient needs a RoundSetup")
        setup.graph.of(index)  # membership check with a clear error
        self.setup = setup
        self.index = index
        self._rng = rng
        self._c_key = keys.generate_private_key(rng)
        self._s_key = keys.generate_private_key(rng)
        self._stage = 0
        self._b_seed = b""
        self._roster: dict[int, AdvertiseMessage] = {}
        # Neighbour v -> (share of b_v, share of v's s-key) that v sent this client.
        self._held: dict[int, tuple[int, int]] = {}
        self._revealed: dict[int, ShareKind] = {}

    def _advance(self, expected: int, name: str) -> None:
        if self._stage != expected:
            raise SecAggError(
                f"client {self.index}: {name} is stage {expected}, but the client is at stage {self._stage}"
            )
        self._stage = expected + 1

    def advertise(self) -> AdvertiseMessage:
        """Stage 0: the two public keys."""
        self._advance(0, "advertise")
        return AdvertiseMessage(
            self.setup.context, self.index, keys.public_bytes(self._c_key), keys.public_bytes(self._s_key)
        )

    def share_keys(self, roster: Iterable[AdvertiseMessage]) -> ShareKeysMessage:
        """Stage 1: encrypted t-of-k shares of b_u and of the s-key for every neighbour in the roster."""
        self._advance(1, "share_keys")
        setup = self.setup
        self._roster = index_roster(setup, roster)
        mine = self._roster.get(self.index)
        if mine is None or mine.c_pk != keys.public_bytes(self._c_key) or mine.s_pk != keys.public_bytes(self._s_key):
            raise SecAggError(f"client {self.index}: the roster does not carry this client's own keys")
        targets = [v for v in setup.neighbours(self.index) if v in self._roster]
        if len(targets) < setup.threshold:
            raise SecAggError(
                f"client {self.index}: only {len(targets)} neighbours advertised keys < threshold {setup.threshold}; "
                "its input could never be unmasked"
            )
        self._b_seed = self._rng(32)
        points = [v + 1 for v in targets]
        b_shares = split_secret(self._b_seed, points, setup.threshold, self._rng)
        s_shares = split_secret(keys.private_bytes(self._s_key), points, setup.threshold, self._rng)
        out = []
        for v, b_share, s_share in zip(targets, b_shares, s_shares, strict=True):
            plaintext = struct.pack(">II", self.index, v) + b_share.value_bytes() + s_share.value_bytes()
            key = keys.aead_key(self._c_key, self._roster[v].c_pk, setup.context)
            out.append(EncryptedShare(v, keys.encrypt_share(key, setup.context, self.index, v, plaintext)))
        commitment = keys.self_mask_commitment(setup.context, self.index, self._b_seed)
        return ShareKeysMessage(setup.context, self.index, commitment, tuple(out))

    def _receive(self, share_messages: Iterable[ShareKeysMessage]) -> None:
        setup = self.setup
        neighbours = set(setup.neighbours(self.index))
        for msg in share_messages:
            if not isinstance(msg, ShareKeysMessage):
                raise SecAggError(f"expected ShareKeysMessage, got {type(msg).__name__}")
            v = msg.sender
            if v not in neighbours:
                continue  # other pairs' ciphertexts are none of this client's business
            if msg.context != setup.context:
                raise SecAggError(f"the shares of client {v} belong to another round")
            if v in self._held:
                raise SecAggError(f"client {v} posted shares twice")
            if v not in self._roster:
                raise SecAggError(f"client {v} posted shares but never advertised keys")
            enc = msg.share_for(self.index)
            if enc is None:
                raise SecAggError(f"client {v} shared keys but sent no share to its neighbour {self.index}")
            key = keys.aead_key(self._c_key, self._roster[v].c_pk, setup.context)
            plain = keys.decrypt_share(key, setup.context, v, self.index, enc.ciphertext)
            if struct.unpack(">II", plain[:8]) != (v, self.index):
                raise SecAggError(f"the share from client {v} names the wrong sender or recipient")
            b_val = int.from_bytes(plain[8 : 8 + SHARE_BYTES], "big")
            s_val = int.from_bytes(plain[8 + SHARE_BYTES :], "big")
            RevealedShare(v, ShareKind.SELF_MASK, b_val)  # range checks
            RevealedShare(v, ShareKind.SECRET_KEY, s_val)
            self._held[v] = (b_val, s_val)

    def masked_input(
        self, x_quantized: npt.ArrayLike, share_messages: Iterable[ShareKeysMessage]
    ) -> MaskedInputMessage:
        """Stage 2: y_u from the quantized input and the shares posted by the sharers (U1).

        share_messages may hold every sharer's message: those of non-neighbours are ignored.
        Each neighbour's ciphertext is decrypted and authenticated now, so tampering surfaces here.
        """
        self._advance(2, "masked_input")
        setup = self.setup
        x = np.asarray(x_quantized)
        if x.shape != (setup.dim,):
            raise SecAggError(f"client {self.index}: input has shape {x.shape}, expected ({setup.dim},)")
        if not np.issubdtype(x.dtype, np.integer):
            raise SecAggError(f"client {self.index}: input must be quantized integers, got dtype {x.dtype}")
        if x.size and (int(x.min()) < 0 or int(x.max()) >> setup.field_bits):
            raise SecAggError(f"client {self.index}: quantized input values must lie in [0, 2^{setup.field_bits})")
        self._receive(share_messages)
        if len(self._held) < setup.threshold:
            raise SecAggError(
                f"client {self.index}: only {len(self._held)} neighbours shared keys < threshold {setup.threshold}"
            )
        acc = MaskAccumulator(setup.dim, setup.field_bits)
        acc.add_vector(x.astype(acc.dtype, copy=False))
        acc.add_seed(self._b_seed)
        for v in sorted(self._held):
            seed = keys.mask_seed(self._s_key, self._roster[v].s_pk, setup.context)
            if self.index < v:
                acc.add_seed(seed)
            else:
                acc.subtract_seed(seed)
        return MaskedInputMessage(setup.context, self.index, setup.field_bits, acc.result())

    def unmask(self, survivors: Collection[int], dropped: Collection[int]) -> UnmaskMessage:
        """Stage 3: per sharing neighbour, the b-share if it survived, the s-key share if it dropped.

        Refuses (SecAggError) unless this client is a survivor, the two sets are disjoint, every
        neighbour that shared is in exactly one of them, and at least t clients survived. A client
        reveals at most one kind of share per neighbour, ever: asked again with a contradicting
        classification it refuses, because both shares together would expose that neighbour's input.
        """
        if self._stage not in (3, 4):
            raise SecAggError(f"client {self.index}: unmask comes after masked_input")
        self._stage = 4
        alive = set(survivors)
        gone = set(dropped)
        both = alive & gone
        if both:
            raise SecAggError(f"clients {sorted(both)} are listed both as survivors and as dropped; refusing to unmask")
        if self.index not in alive:
            raise SecAggError(f"client {self.index} is not among the survivors; it reveals nothing")
        if len(alive) < self.setup.threshold:
            raise SecAggError(
                f"only {len(alive)} survivors < threshold {self.setup.threshold}; refusing to unmask so small a sum"
            )
        shares = []
        for v, (b_val, s_val) in sorted(self._held.items()):
            if v in alive:
                kind, value = ShareKind.SELF_MASK, b_val
            elif v in gone:
                kind, value = ShareKind.SECRET_KEY, s_val
            else:
                raise SecAggError(f"neighbour {v} shared keys but is neither a survivor nor dropped")
            earlier = self._revealed.get(v)
            if earlier is not None and earlier != kind:
                raise SecAggError(
                    f"client {self.index} already revealed the {earlier.name} share of client {v}; "
                    f"revealing its {kind.name} share too would expose its input"
                )
            shares.append(RevealedShare(v, kind, value))
        for share in shares:
            self._revealed[share.owner] = share.kind
        return UnmaskMessage(self.setup.context, self.index, tuple(shares))
