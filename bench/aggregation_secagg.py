"""FedLedger's SecAgg+ round, timed stage by stage: client time, server time and bytes per client.

One round of n clients over d coordinates with a seeded dropout set (clients that share their keys
and then never post a masked input, so the server must rebuild their s-keys: the costly case).
Every client runs through `SecAggClient`'s four stages and every message travels as its canonical
bytes, as on the chain. Inputs come from aggregation_support.client_row (the same rows the Flower
side reads), quantized with `Quantizer.for_field(clip, n, 32)`.

What is timed.
- Client: per stage, each client's own call, including X25519 key generation (stage 0), its
  quantization (stage 2) and the encoding of its message. Reported per stage as the median over
  clients (each client is one repetition); client time is the sum of the stage medians.
- Server: decoding every posted message, `reconstruct` and the decoding of the mean, as one call,
  best of `repeats` (reconstruct is pure, so repeating it is honest).
- Bytes: the lengths of the encoded messages; a surviving client posts one message per stage.

Threshold. The protocol's default t = ⌊k/2⌋ + 1 tolerates k − t dropped neighbours per client.
When the round's dropout set leaves some client that must be recovered with fewer than t surviving
neighbours, the bench says so ("default_threshold_recoverable": false) and runs the round at
t = ⌈k/3⌉ instead, a fixed rule rather than one tuned to the draw (graph.py explains why a lower
t is acceptable when, as on FedLedger's chain, the survivor set is public). An explicit threshold
overrides both.
"""

from __future__ import annotations

import hashlib
import math
import statistics
import time
from collections.abc import Collection
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.bench.aggregation_support import BenchError, client_row, dropout_set, measure
from fedledger.sdk.secagg import (
    AdvertiseMessage,
    MaskedInputMessage,
    Quantizer,
    RoundSetup,
    SecAggClient,
    ShareKeysMessage,
    UnmaskMessage,
    reconstruct,
    setup_round,
)
from fedledger.sdk.secagg.prg import Drbg
from fedledger.sdk.secagg.simulate import client_key_seed

__all__ = ["bench_secagg", "recoverable", "round_context"]


def round_context(seed: bytes, n: int, dropout: float) -> bytes:
    """The round's 32-byte context (stands in for the block hash), derived from the bench seed.

    It does not depend on d, so the rounds of one (N, dropout) at every d share their neighbour graph.
    """
    return hashlib.sha256(b"fedledger-bench-secagg/" + seed + f"/{n}/{dropout!r}".encode()).digest()


def recoverable(setup: RoundSetup, dropped: Collection[int], threshold: int) -> bool:
    """Whether every client the server must recover has at least `threshold` surviving neighbours."""
    gone = set(dropped)
    for c in setup.members:
        alive = sum(1 for v in setup.neighbours(c) if v not in gone)
        # A dropout none of whose neighbours survived needs no recovery (it left no mask behind).
        if (c not in gone or alive > 0) and alive < threshold:
            return False
    return True


def _choose_threshold(setup: RoundSetup, dropped: Collection[int], threshold: int | None) -> tuple[int, bool]:
    default_ok = recoverable(setup, dropped, setup.threshold)
    if threshold is not None:
        return threshold, default_ok
    if default_ok:
        return setup.threshold, True
    return max(1, math.ceil(setup.graph.degree / 3)), False


def bench_secagg(
    n: int,
    d: int,
    dropout: float,
    seed: bytes,
    repeats: int = 3,
    *,
    clip: float = 1.0,
    threshold: int | None = None,
    single_over_s: float = 20.0,
    outputs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run and time one round; `outputs` (tests) receives the total, the mean, the quantizer and the survivors."""
    if n < 2 or d < 1:
        raise BenchError(f"a SecAgg+ round needs N >= 2 and d >= 1, got N={n}, d={d}")
    quantizer = Quantizer.for_field(clip, n, 32)
    context = round_context(seed, n, dropout)
    dropped = dropout_set(seed, n, dropout)
    probe = setup_round(context, range(n), d, quantizer.field_bits)
    t, default_ok = _choose_threshold(probe, dropped, threshold)
    report: dict[str, Any] = {
        "N": n, "d": d, "dropout": dropout, "dropped": len(dropped), "k": probe.graph.degree,
        "default_threshold": probe.threshold, "default_threshold_recoverable": default_ok, "threshold": t,
        "field_bits": quantizer.field_bits, "value_bits": quantizer.value_bits, "clip": clip,
    }
    if not recoverable(probe, dropped, t):
        report["status"] = f"not recoverable at threshold {t}: some client keeps fewer than {t} surviving neighbours"
        return report
    setup = setup_round(context, range(n), d, quantizer.field_bits, threshold=t)
    stage_s: dict[str, list[float]] = {"advertise": [], "share_keys": [], "masked_input": [], "unmask": []}
    sizes: dict[str, list[int]] = {stage: [] for stage in stage_s}

    def timed(stage: str, start: float, data: bytes) -> bytes:
        stage_s[stage].append(time.perf_counter() - start)
        sizes[stage].append(len(data))
        return data

    clients: dict[int, SecAggClient] = {}
    roster_bytes = []
    for u in setup.members:
        start = time.perf_counter()
        clients[u] = SecAggClient(setup, u, Drbg(client_key_seed(context, u)))
        roster_bytes.append(timed("advertise", start, clients[u].advertise().to_bytes()))
    roster = [AdvertiseMessage.from_bytes(b) for b in roster_bytes]
    share_bytes = []
    for u in setup.members:
        start = time.perf_counter()
        share_bytes.append(timed("share_keys", start, clients[u].share_keys(roster).to_bytes()))
    share_msgs = [ShareKeysMessage.from_bytes(b) for b in share_bytes]
    survivors = [u for u in setup.members if u not in dropped]
    expected = np.zeros(d, dtype=np.uint64)
    masked_bytes = []
    for u in survivors:
        row = client_row(seed, n, d, u)
        start = time.perf_counter()
        xq = quantizer.quantize(row)
        masked_bytes.append(timed("masked_input", start, clients[u].masked_input(xq, share_msgs).to_bytes()))
        expected += xq  # untimed: the plain sum the unmasked total must equal
    unmask_bytes = []
    for u in survivors:
        start = time.perf_counter()
        unmask_bytes.append(timed("unmask", start, clients[u].unmask(survivors, dropped).to_bytes()))
    del clients

    def server() -> tuple[Any, npt.NDArray[np.float32]]:
        result = reconstruct(
            setup,
            [AdvertiseMessage.from_bytes(b) for b in roster_bytes],
            [ShareKeysMessage.from_bytes(b) for b in share_bytes],
            [MaskedInputMessage.from_bytes(b) for b in masked_bytes],
            [UnmaskMessage.from_bytes(b) for b in unmask_bytes],
        )
        return result, quantizer.dequantize_mean(result.total, result.count)

    timing = measure(server, repeats, single_over_s)
    result, mean = timing.result
    expected &= np.uint64((1 << quantizer.field_bits) - 1)
    medians = {stage: statistics.median(times) for stage, times in stage_s.items()}
    per_stage_bytes = {stage: round(statistics.fmean(b), 1) for stage, b in sizes.items()}
    report.update({
        "exact": bool(np.array_equal(result.total.astype(np.uint64), expected)),
        "client_s": round(sum(medians.values()), 6),
        "client_stage_median_s": {stage: round(s, 6) for stage, s in medians.items()},
        "server": timing.to_json(),
        "bytes_per_client": round(sum(per_stage_bytes.values())),
        "bytes_per_stage": per_stage_bytes,
    })
    if outputs is not None:
        outputs.update(total=result.total, mean=mean, quantizer=quantizer, survivors=tuple(survivors),
                       context=context)
    return report
