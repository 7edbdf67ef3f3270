"""SecAgg+ (Bell et al. 2020) as a pure library: keys, PRG, Shamir, neighbour graph, quantization, rounds.

No chain, no network: stage functions and small per-round state objects over bytes and numpy
arrays, so a driver can run a round with the ledger as the bulletin board (each stage's messages
become signed txs or IPFS payloads named by their SHA-256). Cryptography comes only from
`cryptography`: X25519 + HKDF-SHA256 (keys.py), AES-128-CTR as the mask PRG (prg.py),
ChaCha20-Poly1305 for the shares in transit, Shamir over GF(2^521 − 1) (shamir.py).

A round, in order (see protocol.py for the sets U0 ⊇ U1 ⊇ U2 ⊇ U3):

    setup   = setup_round(block_hash, members, dim, quantizer.field_bits)
    client  = SecAggClient(setup, index)            # one object per member per round
    client.advertise() -> client.share_keys(roster) -> client.masked_input(xq, share_msgs)
           -> client.unmask(survivors, dropped)
    reconstruct(setup, roster, share_msgs, masked_inputs, unmask_msgs).total
        == Σ_{u ∈ U2} quantizer.quantize(x_u)  (mod 2^b, which never wraps; quantize.py)

Group size g: the privacy/robustness trade-off of `groups.py`. The aggregator learns one sum per
group and nothing finer, so privacy grows with g: each client hides among g − 1 others, and its
input stays hidden unless the aggregator colludes with the rest of its group. Robustness shrinks
with g: a robust rule (median, trimmed mean, Krum, …) then runs over only G = N/g group means,
and a single Byzantine client contaminates its whole group's mean. With f Byzantine clients up to
min(f, G) groups are bad; a rule that tolerates a fraction β of bad inputs needs
min(f, G) < β·G, i.e. roughly f < β·N/g once f ≥ G. g = 1 is plain robust aggregation with no
secure aggregation at all; g = N is plain SecAgg+ with a single sum and no robustness. Smaller
groups also cost less: client work grows with the group's log-degree, not with N.
"""

from __future__ import annotations

from fedledger.sdk.secagg.errors import RecoveryError, SecAggError
from fedledger.sdk.secagg.graph import NeighbourGraph, build_graph, default_degree, default_threshold
from fedledger.sdk.secagg.groups import GroupedResult, group_context, group_means, partition, simulate_grouped_round
from fedledger.sdk.secagg.messages import (
    AdvertiseMessage,
    EncryptedShare,
    MaskedInputMessage,
    RevealedShare,
    ShareKeysMessage,
    ShareKind,
    UnmaskMessage,
)
from fedledger.sdk.secagg.protocol import RoundSetup, SecAggClient, setup_round
from fedledger.sdk.secagg.quantize import Quantizer
from fedledger.sdk.secagg.server import AggregateResult, reconstruct
from fedledger.sdk.secagg.simulate import SimulationResult, simulate_round

__all__ = [
    "AdvertiseMessage",
    "AggregateResult",
    "EncryptedShare",
    "GroupedResult",
    "MaskedInputMessage",
    "NeighbourGraph",
    "Quantizer",
    "RecoveryError",
    "RevealedShare",
    "RoundSetup",
    "SecAggClient",
    "SecAggError",
    "ShareKeysMessage",
    "ShareKind",
    "SimulationResult",
    "UnmaskMessage",
    "build_graph",
    "default_degree",
    "default_threshold",
    "group_context",
    "group_means",
    "partition",
    "reconstruct",
    "setup_round",
    "simulate_grouped_round",
    "simulate_round",
]
