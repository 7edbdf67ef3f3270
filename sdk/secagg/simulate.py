"""An in-memory run of one whole SecAgg+ round, for tests and benchmarks.

`simulate_round` plays every member and the server through the same stage functions a chain
driver calls one by one, passing every message through its canonical bytes as the bulletin
board would. Client key material comes from per-client `Drbg`s derived from the seed, so a
simulation is reproducible bit for bit; real clients draw theirs from os.urandom. Timing is the
caller's business: nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fedledger.sdk.secagg.errors import SecAggError
from fedledger.sdk.secagg.messages import (
    AdvertiseMessage,
    MaskedInputMessage,
    ShareKeysMessage,
    UnmaskMessage,
)
from fedledger.sdk.secagg.prg import Drbg, check_seed, derive_seed
from fedledger.sdk.secagg.protocol import RoundSetup, SecAggClient, setup_round
from fedledger.sdk.secagg.quantize import Quantizer
from fedledger.sdk.secagg.server import AggregateResult, reconstruct

__all__ = ["STAGES", "SimulationResult", "client_key_seed", "rounding_seed", "simulate_round"]

STAGES = ("advertise", "shares", "masked_input", "unmask")


def client_key_seed(seed: bytes, index: int) -> bytes:
    """The seed of the Drbg that plays client index's randomness in a simulation."""
    return derive_seed(seed, "simulated-client", index)


def rounding_seed(seed: bytes, index: int) -> bytes:
    """The stochastic-rounding seed of client index in a simulation."""
    return derive_seed(seed, "stochastic-rounding", index)


@dataclass(frozen=True, eq=False)
class SimulationResult:
    """What a simulated round produced: the aggregate, its float mean, and every message's size."""

    setup: RoundSetup
    quantizer: Quantizer
    aggregate: AggregateResult
    mean: npt.NDArray[np.float32]
    # Stage name -> {client index: bytes of the message it posted in that stage}.
    message_bytes: dict[str, dict[int, int]]

    def bytes_sent(self, index: int) -> int:
        """Total bytes client index posted over the round."""
        return sum(stage.get(index, 0) for stage in self.message_bytes.values())


def _subset(name: str, values: Collection[int], members: set[int]) -> set[int]:
    out = set(values)
    strangers = sorted(out - members)
    if strangers:
        raise SecAggError(f"{name} names clients {strangers[:5]} that are not members of the round")
    return out


def simulate_round(
    inputs: npt.ArrayLike,
    clip: float,
    seed: bytes,
    dropped: Collection[int] = (),
    *,
    threshold: int | None = None,
    degree: int | None = None,
    members: Sequence[int] | None = None,
    field_bits: int = 32,
    value_bits: int | None = None,
    stochastic_rounding: bool = False,
    silent: Collection[int] = (),
    unresponsive: Collection[int] = (),
) -> SimulationResult:
    """Run one round over inputs (N, d) float: row i is the input of members[i] (default i).

    Dropouts, by the stage they miss (client indices): `silent` advertise keys but never share
    them; `dropped` share keys but never post a masked input (their s-keys must be recovered);
    `unresponsive` post a masked input but never answer the unmask stage. The seed is the round
    context (and graph seed). The quantizer covers the whole member list: value_bits if given,
    else `Quantizer.for_field(clip, N, field_bits)`.
    """
    seed = check_seed(seed, "round seed")
    x = np.asarray(inputs)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise SecAggError(f"inputs must be a non-empty (N, d) array, got shape {x.shape}")
    n, dim = x.shape
    ids = list(range(n)) if members is None else list(members)
    if len(ids) != n:
        raise SecAggError(f"{len(ids)} members for {n} input rows")
    if value_bits is None:
        quantizer = Quantizer.for_field(clip, n, field_bits)
    else:
        quantizer = Quantizer(float(clip), value_bits, n)
    setup = setup_round(seed, ids, dim, quantizer.field_bits, degree=degree, threshold=threshold)
    member_set = set(setup.members)
    silent_set = _subset("silent", silent, member_set)
    dropped_set = _subset("dropped", dropped, member_set)
    unresponsive_set = _subset("unresponsive", unresponsive, member_set)
    row = {index: i for i, index in enumerate(ids)}
    sizes: dict[str, dict[int, int]] = {stage: {} for stage in STAGES}

    clients = {u: SecAggClient(setup, u, Drbg(client_key_seed(seed, u))) for u in setup.members}
    roster = []
    for u, client in clients.items():
        data = client.advertise().to_bytes()
        sizes["advertise"][u] = len(data)
        roster.append(AdvertiseMessage.from_bytes(data))

    sharing = [u for u in setup.members if u not in silent_set]
    share_msgs = []
    for u in sharing:
        data = clients[u].share_keys(roster).to_bytes()
        sizes["shares"][u] = len(data)
        share_msgs.append(ShareKeysMessage.from_bytes(data))

    inputting = [u for u in sharing if u not in dropped_set]
    masked = []
    for u in inputting:
        rounding = rounding_seed(seed, u) if stochastic_rounding else None
        xq = quantizer.quantize(x[row[u]], rounding)
        data = clients[u].masked_input(xq, share_msgs).to_bytes()
        sizes["masked_input"][u] = len(data)
        masked.append(MaskedInputMessage.from_bytes(data))

    survivors = set(inputting)
    gone = set(sharing) - survivors
    unmasks = []
    for u in inputting:
        if u in unresponsive_set:
            continue
        data = clients[u].unmask(survivors, gone).to_bytes()
        sizes["unmask"][u] = len(data)
        unmasks.append(UnmaskMessage.from_bytes(data))

    aggregate = reconstruct(setup, roster, share_msgs, masked, unmasks)
    mean = quantizer.dequantize_mean(aggregate.total, aggregate.count)
    return SimulationResult(setup, quantizer, aggregate, mean, sizes)
