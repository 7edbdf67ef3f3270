"""Flower's SecAgg+ work, played with Flower's own primitives on the same round as FedLedger's.

Flower runs SecAgg+ as a client mod (flwr.client.mod.secure_aggregation.secaggplus_mod) and a
server workflow (flwr.server.workflow.secure_aggregation.secaggplus_workflow) that talk through
Flower's message runtime. The bench does not start that runtime: it calls, in the same order and
with the same arguments, the primitives those two files call, so the timed work is Flower's
cryptography and vector arithmetic without its messaging:

- client stage 0: two SECP384R1 key pairs (flwr.supercore.primitives.asymmetric), PEM-encoded;
- client stage 1: `create_shares` (pycryptodome Shamir over GF(2^128), 16-byte chunks) of the
  32-byte self-mask seed and of the PEM private key, then per neighbour `generate_shared_key`
  (ECDH + HKDF) and Fernet `encrypt` of `share_keys_plaintext_concat`;
- client stage 2: Fernet `decrypt` of every neighbour's shares, `parameters_multiply`, stochastic
  `quantize`, `factor_combine`, the self mask and one pairwise mask per neighbour from
  `pseudo_rand_gen` (numpy RandomState seeded with 32 bits), `parameters_mod`, `ndarray_to_bytes`;
- client stage 3: the lists of revealed shares;
- server: `bytes_to_ndarray` + `parameters_addition` of every masked vector and `parameters_mod`
  (collect stage), then `combine_shares` per client (all the shares it collected, as Flower does),
  the self mask of each survivor, and per dropout one `generate_shared_key` + `pseudo_rand_gen`
  per neighbour, `parameters_mod`, `factor_extract`, `dequantize` (unmask stage). The share
  reconstruction is timed apart from the vector work (it does not depend on d) and the two add up.

Same round. The neighbours are FedLedger's graph for the round (degree k, so Flower's num_shares is
k + 1: a client keeps one share of its own), the same threshold, dropout set, clipping range,
quantization levels (`target_range` = FedLedger's L) and modulus 2^b. Every client contributes
num_examples = max_weight = 1, so Flower's weight factor is exact.

What is real and what stands in. Per-client times come from `clients` real surviving clients
(their neighbours run stage 1 untimed so that their ciphertexts exist). The server's work does not
depend on the values it unmasks, so its masked vectors are random int64 arrays of the right shape
(distinct ones up to 2 GiB, then reused) and its shares are real shares of real secrets and keys;
the unmasked vector is then meaningless, so `flower_round_check` runs one complete small round
through the same code and checks that its sum is exact.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Collection
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.bench.aggregation_support import client_row, measure, rng_for
from fedledger.sdk.secagg import Quantizer, RoundSetup

__all__ = ["FlowerClient", "flower_primitives", "flower_round_check", "flower_secagg"]

_POOL_BYTES = 2 << 30


class FlowerClient:
    """One client's four SecAgg+ stages, as Flower's secaggplus_mod performs them."""

    def __init__(self, nid: int, group: tuple[int, ...], threshold: int) -> None:
        # group: this client and its neighbours, ascending; Flower hands share i to the i-th member.
        self.nid = nid
        self.group = group
        self.threshold = threshold
        self.keys: dict[int, tuple[bytes, bytes]] = {}
        self.ss2: dict[int, bytes] = {}
        self.b_shares: dict[int, bytes] = {}
        self.sk1_shares: dict[int, bytes] = {}

    def setup(self) -> tuple[bytes, bytes]:
        """Stage 0: two key pairs; returns the PEM public keys."""
        from flwr.supercore.primitives.asymmetric import generate_key_pairs, private_key_to_bytes, public_key_to_bytes

        sk1, pk1 = generate_key_pairs()
        sk2, pk2 = generate_key_pairs()
        self.sk1, self.pk1 = private_key_to_bytes(sk1), public_key_to_bytes(pk1)
        self.sk2, self.pk2 = private_key_to_bytes(sk2), public_key_to_bytes(pk2)
        return self.pk1, self.pk2

    def share_keys(self, keys: dict[int, tuple[bytes, bytes]]) -> dict[int, bytes]:
        """Stage 1: Shamir shares of the self-mask seed and of sk1, encrypted to each neighbour."""
        from flwr.common.secure_aggregation.crypto.shamir import create_shares
        from flwr.common.secure_aggregation.crypto.symmetric_encryption import encrypt, generate_shared_key
        from flwr.common.secure_aggregation.secaggplus_utils import share_keys_plaintext_concat
        from flwr.supercore.primitives.asymmetric import bytes_to_private_key, bytes_to_public_key

        self.keys = keys
        flat = [k for pair in keys.values() for k in pair]
        if len(set(flat)) != len(flat) or keys[self.nid] != (self.pk1, self.pk2):
            raise ValueError(f"Flower client {self.nid}: inconsistent public keys")
        self.rd_seed = os.urandom(32)
        b_shares = create_shares(self.rd_seed, self.threshold, len(keys))
        sk1_shares = create_shares(self.sk1, self.threshold, len(keys))
        out = {}
        for i, (nid, (_, pk2)) in enumerate(keys.items()):
            if nid == self.nid:
                self.b_shares[nid], self.sk1_shares[nid] = b_shares[i], sk1_shares[i]
                continue
            shared = generate_shared_key(bytes_to_private_key(self.sk2), bytes_to_public_key(pk2))
            self.ss2[nid] = shared
            out[nid] = encrypt(shared, share_keys_plaintext_concat(self.nid, nid, b_shares[i], sk1_shares[i]))
        return out

    def masked(self, received: dict[int, bytes], row: npt.NDArray[np.float32], clip: float, target: int,
               mod: int) -> tuple[list[bytes], list[npt.NDArray[Any]]]:
        """Stage 2: the masked, quantized input as Flower's wire arrays; also the quantized input (for checks)."""
        from flwr.common import ndarray_to_bytes
        from flwr.common.secure_aggregation.crypto.symmetric_encryption import decrypt, generate_shared_key
        from flwr.common.secure_aggregation.ndarrays_arithmetic import (
            factor_combine,
            parameters_addition,
            parameters_mod,
            parameters_multiply,
            parameters_subtraction,
        )
        from flwr.common.secure_aggregation.quantization import quantize
        from flwr.common.secure_aggregation.secaggplus_utils import pseudo_rand_gen, share_keys_plaintext_separate
        from flwr.supercore.primitives.asymmetric import bytes_to_private_key, bytes_to_public_key

        available = []
        for src, ciphertext in received.items():
            actual, dst, b_share, sk1_share = share_keys_plaintext_separate(decrypt(self.ss2[src], ciphertext))
            if (actual, dst) != (src, self.nid):
                raise ValueError(f"Flower client {self.nid}: misaddressed share from {actual}")
            available.append(src)
            self.b_shares[src], self.sk1_shares[src] = b_share, sk1_share
        q_ratio = target  # num_examples / max_weight = 1
        params = parameters_multiply([row], q_ratio / target)
        quantized = factor_combine(q_ratio, quantize(params, clip, target))
        shapes = [a.shape for a in quantized]
        vec = parameters_addition(quantized, pseudo_rand_gen(self.rd_seed, mod, shapes))
        sk1 = bytes_to_private_key(self.sk1)
        for nid in available:
            shared = generate_shared_key(sk1, bytes_to_public_key(self.keys[nid][0]))
            mask = pseudo_rand_gen(shared, mod, shapes)
            vec = parameters_addition(vec, mask) if self.nid > nid else parameters_subtraction(vec, mask)
        vec = parameters_mod(vec, mod)
        return [ndarray_to_bytes(a) for a in vec], quantized

    def unmask(self, active: Collection[int], dead: Collection[int]) -> tuple[list[int], list[bytes]]:
        """Stage 3: b-shares of active group members, sk1-shares of dead ones."""
        alive = [v for v in self.group if v in active]
        gone = [v for v in self.group if v in dead]
        return alive + gone, [self.b_shares[v] for v in alive] + [self.sk1_shares[v] for v in gone]


def _unshare(shares: dict[int, list[bytes]], threshold: int) -> dict[int, bytes]:
    """Flower's unmask stage, first half: combine_shares of every client's collected shares."""
    from flwr.common.secure_aggregation.crypto.shamir import combine_shares

    secrets = {}
    for nid, share_list in shares.items():
        if len(share_list) < threshold:
            raise ValueError(f"Flower server: {len(share_list)} shares of client {nid} < threshold {threshold}")
        secrets[nid] = combine_shares(share_list)
    return secrets


def _server(masked: list[list[bytes]], secrets: dict[int, bytes], active: set[int], setup: RoundSetup,
            pk1: dict[int, bytes], clip: float, target: int, mod: int) -> list[npt.NDArray[Any]]:
    """Flower's collect stage and the vector half of its unmask stage: the unmasked sum, then the float result."""
    from flwr.common import bytes_to_ndarray
    from flwr.common.secure_aggregation.crypto.symmetric_encryption import generate_shared_key
    from flwr.common.secure_aggregation.ndarrays_arithmetic import (
        factor_extract,
        get_parameters_shape,
        parameters_addition,
        parameters_mod,
        parameters_subtraction,
    )
    from flwr.common.secure_aggregation.quantization import dequantize
    from flwr.common.secure_aggregation.secaggplus_utils import pseudo_rand_gen
    from flwr.supercore.primitives.asymmetric import bytes_to_private_key, bytes_to_public_key

    total: list[npt.NDArray[Any]] | None = None
    for posted in masked:
        vec = [bytes_to_ndarray(b) for b in posted]
        total = vec if total is None else parameters_addition(total, vec)
    assert total is not None
    total = parameters_mod(total, mod)
    shapes = get_parameters_shape(total)
    for nid, secret in secrets.items():
        if nid in active:
            total = parameters_subtraction(total, pseudo_rand_gen(secret, mod, shapes))
            continue
        sk1 = bytes_to_private_key(secret)
        for v in setup.neighbours(nid):
            mask = pseudo_rand_gen(generate_shared_key(sk1, bytes_to_public_key(pk1[v])), mod, shapes)
            total = parameters_addition(total, mask) if nid > v else parameters_subtraction(total, mask)
    total = parameters_mod(total, mod)
    q_total, recon = factor_extract(total)
    out = dequantize(recon, clip, target)
    for arr in out:
        arr += -(len(active) - 1) * clip
        arr *= target / q_total
    result: list[np.ndarray[Any, Any]] = [total[1], *out]  # flwr untyped (or absent): give mypy one shape
    return result


def _group(setup: RoundSetup, u: int) -> tuple[int, ...]:
    return tuple(sorted((u, *setup.neighbours(u))))


# (context, threshold, dropped) -> (pk1 per client, the recovered secrets, the share-reconstruction timing).
ShareCache = dict[tuple[bytes, int, frozenset[int]], tuple[dict[int, bytes], dict[int, bytes], dict[str, Any]]]


def flower_secagg(setup: RoundSetup, quantizer: Quantizer, dropped: Collection[int], seed: bytes, repeats: int,
                  *, clients: int = 3, single_over_s: float = 20.0, cache: ShareCache | None = None) -> dict[str, Any]:
    """Time Flower's client stages on `clients` real survivors and its server on the round's shape.

    Server time = share reconstruction (combine_shares per client, independent of d) + vector work.
    With a `cache`, the reconstruction is measured once per (context, threshold, dropout set) and
    reused for every d of that round shape (the same graph, dropouts and share counts).
    """
    from flwr.common import ndarray_to_bytes
    from flwr.common.secure_aggregation.crypto.shamir import create_shares

    n, d, t = len(setup.members), setup.dim, setup.threshold
    mod, target, clip = 1 << setup.field_bits, quantizer.levels, quantizer.clip
    gone = frozenset(dropped)
    active = {u for u in setup.members if u not in gone}
    sample = sorted(active)[:clients]
    players = {u: FlowerClient(u, _group(setup, u), t) for u in setup.members}
    stage_s: dict[str, list[float]] = {"setup": [], "share_keys": [], "masked_input": [], "unmask": []}
    sizes: dict[str, list[int]] = {stage: [] for stage in stage_s}
    pub: dict[int, tuple[bytes, bytes]] = {}
    for u, c in players.items():
        start = time.perf_counter()
        pub[u] = c.setup()
        if u in sample:
            stage_s["setup"].append(time.perf_counter() - start)
            sizes["setup"].append(len(pub[u][0]) + len(pub[u][1]))
    needed = set(sample) | {v for u in sample for v in setup.neighbours(u)}
    sent: dict[int, dict[int, bytes]] = {}
    for u in sorted(needed):
        start = time.perf_counter()
        sent[u] = players[u].share_keys({v: pub[v] for v in players[u].group})
        if u in sample:
            stage_s["share_keys"].append(time.perf_counter() - start)
            sizes["share_keys"].append(sum(len(c) for c in sent[u].values()))
    for u in sample:
        received = {v: sent[v][u] for v in setup.neighbours(u)}
        row = client_row(seed, n, d, u)
        start = time.perf_counter()
        posted, _ = players[u].masked(received, row, clip, target, mod)
        stage_s["masked_input"].append(time.perf_counter() - start)
        sizes["masked_input"].append(sum(len(b) for b in posted))
        start = time.perf_counter()
        nids, shares = players[u].unmask(active, gone)
        stage_s["unmask"].append(time.perf_counter() - start)
        sizes["unmask"].append(sum(len(s) for s in shares) + 8 * len(nids))

    # The server's inputs: real shares of real secrets, random masked vectors (module docstring).
    key = (setup.context, t, gone)
    material = None if cache is None else cache.get(key)
    reused = material is not None
    if material is None:
        collected: dict[int, list[bytes]] = {}
        for u in setup.members:
            secret = os.urandom(32) if u in active else players[u].sk1
            shares = create_shares(secret, t, len(players[u].group))
            collected[u] = [s for v, s in zip(players[u].group, shares, strict=True) if v in active]
        unshare = measure(lambda: _unshare(collected, t), repeats, single_over_s)
        material = ({u: pub[u][0] for u in setup.members}, unshare.result, unshare.to_json())
        if cache is not None:
            cache[key] = material
    pk1, secrets, unshare_json = material
    del players
    pool_size = max(1, min(len(active), _POOL_BYTES // (8 * d + 1)))
    rng = rng_for(seed, "flower-masked", n, d)
    pool = [[ndarray_to_bytes(np.array([rng.integers(0, mod)], dtype=np.int64)),
             ndarray_to_bytes(rng.integers(0, mod, d, dtype=np.int64))] for _ in range(pool_size)]
    masked = [pool[i % pool_size] for i in range(len(active))]
    vectors = measure(lambda: _server(masked, secrets, active, setup, pk1, clip, target, mod), repeats,
                      single_over_s)
    medians = {stage: statistics.median(s) for stage, s in stage_s.items()}
    per_stage_bytes = {stage: round(statistics.fmean(b), 1) for stage, b in sizes.items()}
    return {
        "client_s": round(sum(medians.values()), 6),
        "client_stage_median_s": {stage: round(s, 6) for stage, s in medians.items()},
        "clients_timed": len(sample),
        "server": {"best_s": round(unshare_json["best_s"] + vectors.best, 6),
                   "share_reconstruction": unshare_json | {"reused_from_other_d": reused},
                   "vector_work": vectors.to_json(),
                   "masked_vectors": f"random int64, {pool_size} distinct"},
        "bytes_per_client": round(sum(per_stage_bytes.values())),
        "bytes_per_stage": per_stage_bytes,
        "num_shares": setup.graph.degree + 1,
        "threshold": t,
    }


def flower_round_check(n: int = 10, d: int = 1000, seed: bytes = bytes(32)) -> dict[str, Any]:
    """One complete small round through FlowerClient and _server: is the unmasked sum exact?"""
    from fedledger.sdk.secagg import setup_round

    quantizer = Quantizer.for_field(1.0, n, 32)
    setup = setup_round(seed, range(n), d, quantizer.field_bits)
    mod, target = 1 << setup.field_bits, quantizer.levels
    gone = {0}
    active = set(setup.members) - gone
    players = {u: FlowerClient(u, _group(setup, u), setup.threshold) for u in setup.members}
    pub = {u: c.setup() for u, c in players.items()}
    sent = {u: c.share_keys({v: pub[v] for v in c.group}) for u, c in players.items()}
    masked, expected = [], np.zeros(d, dtype=np.int64)
    for u in sorted(active):
        posted, quantized = players[u].masked({v: sent[v][u] for v in setup.neighbours(u)},
                                              client_row(seed, n, d, u), quantizer.clip, target, mod)
        masked.append(posted)
        expected += quantized[1]
    collected: dict[int, list[bytes]] = {u: [] for u in setup.members}
    for w in sorted(active):
        for owner, share in zip(*players[w].unmask(active, gone), strict=True):
            collected[owner].append(share)
    pk1 = {u: pub[u][0] for u in setup.members}
    out = _server(masked, _unshare(collected, setup.threshold), active, setup, pk1, quantizer.clip, target, mod)
    return {"N": n, "d": d, "dropped": len(gone), "exact": bool(np.array_equal(out[0], expected % mod))}


def flower_primitives(d: int, degree: int, threshold: int, bits: int, repeats: int) -> dict[str, Any]:
    """Single primitives side by side: one mask expansion of d elements, one key agreement, Shamir split/combine.

    Mask: Flower's pseudo_rand_gen (RandomState) vs FedLedger's AES-CTR prg.expand. Key agreement:
    P-384 ECDH + HKDF (generate_shared_key) vs X25519 + HKDF (keys.mask_seed). Shamir: a 32-byte
    secret into degree + 1 shares (Flower) or degree shares (FedLedger) at the same threshold, and
    back from threshold shares. Times per operation, best of `repeats` batches.
    """
    from flwr.common.secure_aggregation.crypto.shamir import combine_shares, create_shares
    from flwr.common.secure_aggregation.crypto.symmetric_encryption import generate_shared_key
    from flwr.common.secure_aggregation.secaggplus_utils import pseudo_rand_gen
    from flwr.supercore.primitives.asymmetric import generate_key_pairs

    from fedledger.sdk.secagg import keys, prg, shamir

    secret = bytes(range(32))
    context = bytes(32)
    ops = 20

    def per_op(fn: Any) -> float:
        def batch() -> None:
            for _ in range(ops):
                fn()
        return measure(batch, repeats).best / ops

    f_sk, _ = generate_key_pairs()
    _, f_pk = generate_key_pairs()
    o_sk = keys.generate_private_key()
    o_pk = keys.public_bytes(keys.generate_private_key())
    points = list(range(1, degree + 1))
    f_shares = create_shares(secret, threshold, degree + 1)
    o_shares = shamir.split_secret(secret, points, threshold)
    rows = {
        "mask_expand": (measure(lambda: pseudo_rand_gen(secret, 1 << bits, [(d,)]), repeats).best,
                        measure(lambda: prg.expand(secret, d, bits), repeats).best),
        "key_agreement": (per_op(lambda: generate_shared_key(f_sk, f_pk)),
                          per_op(lambda: keys.mask_seed(o_sk, o_pk, context))),
        "shamir_split": (per_op(lambda: create_shares(secret, threshold, degree + 1)),
                         per_op(lambda: shamir.split_secret(secret, points, threshold))),
        "shamir_combine": (per_op(lambda: combine_shares(f_shares[:threshold])),
                           per_op(lambda: shamir.combine_secret(o_shares[:threshold], threshold))),
    }
    out: dict[str, Any] = {"d": d, "degree": degree, "threshold": threshold}
    for name, (flower_s, ours_s) in rows.items():
        out[name] = {"flower_s": round(flower_s, 7), "fedledger_s": round(ours_s, 7),
                     "ratio_flower_over_fedledger": round(flower_s / ours_s, 2) if ours_s > 0 else None}
    return out
