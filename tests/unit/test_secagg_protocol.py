"""SecAgg+ rounds: exact sums under every tolerable dropout pattern, clean failures beyond, refusals,
tampering, uniformity of a masked input, determinism."""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass, replace

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from scipy import stats

from fedledger.sdk.secagg import (
    AdvertiseMessage,
    MaskedInputMessage,
    RecoveryError,
    RevealedShare,
    RoundSetup,
    SecAggClient,
    SecAggError,
    ShareKeysMessage,
    ShareKind,
    UnmaskMessage,
    reconstruct,
    setup_round,
    simulate_round,
)
from fedledger.sdk.secagg.prg import Drbg, derive_seed
from fedledger.sdk.secagg.quantize import Quantizer
from fedledger.sdk.secagg.simulate import rounding_seed

CTX = hashlib.sha256(b"block 42").digest()


@dataclass
class Transcript:
    """Every message of one round, as the bulletin board would hold them."""

    roster: list[AdvertiseMessage]
    shares: list[ShareKeysMessage]
    masked: list[MaskedInputMessage]
    unmasks: list[UnmaskMessage]
    clients: dict[int, SecAggClient]

    def encoded(self) -> list[bytes]:
        return [m.to_bytes() for group in (self.roster, self.shares, self.masked, self.unmasks) for m in group]


def play(
    setup: RoundSetup,
    xs: dict[int, np.ndarray],
    silent: Collection[int] = (),
    dropped: Collection[int] = (),
    unresponsive: Collection[int] = (),
    key_seed: bytes = CTX,
) -> Transcript:
    """Run the client stages (no server), dropping clients where told."""
    clients = {u: SecAggClient(setup, u, Drbg(derive_seed(key_seed, "client", u))) for u in setup.members}
    roster = [c.advertise() for c in clients.values()]
    sharing = [u for u in setup.members if u not in silent]
    shares = [clients[u].share_keys(roster) for u in sharing]
    inputting = [u for u in sharing if u not in dropped]
    masked = [clients[u].masked_input(xs[u], shares) for u in inputting]
    alive = set(inputting)
    gone = set(sharing) - alive
    unmasks = [clients[u].unmask(alive, gone) for u in inputting if u not in unresponsive]
    return Transcript(roster, shares, masked, unmasks, clients)


def run(setup: RoundSetup, xs: dict[int, np.ndarray], **drops: Collection[int]) -> np.ndarray:
    tr = play(setup, xs, **drops)
    return reconstruct(setup, tr.roster, tr.shares, tr.masked, tr.unmasks).total


def random_inputs(setup: RoundSetup, seed: int) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    dtype = np.uint32 if setup.field_bits <= 32 else np.uint64
    hi = 2**setup.field_bits
    return {u: rng.integers(0, hi, setup.dim, dtype=np.uint64 if hi > 2**63 else np.int64, endpoint=False)
            .astype(dtype) for u in setup.members}


def reference_sum(xs: dict[int, np.ndarray], clients: Collection[int], bits: int) -> list[int]:
    """Σ x_u mod 2^bits in Python integers."""
    dim = len(next(iter(xs.values())))
    return [sum(int(xs[u][i]) for u in clients) % 2**bits for i in range(dim)]


# --- exactness and failure under dropouts (hypothesis) -----------------------------------------

@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_exact_sum_within_threshold_and_clean_failure_beyond(data: st.DataObject) -> None:
    n = data.draw(st.integers(2, 9), label="n")
    members = sorted(data.draw(st.lists(st.integers(0, 40), min_size=n, max_size=n, unique=True), label="members"))
    even = [k for k in range(2, n - 1, 2)]
    degree = data.draw(st.sampled_from([None, n - 1, *even]), label="degree")
    bits = data.draw(st.sampled_from([1, 5, 16, 32, 33, 64]), label="bits")
    dim = data.draw(st.integers(1, 6), label="dim")
    probe = setup_round(CTX, members, dim, bits, degree=degree)
    t = data.draw(st.integers(1, probe.graph.degree), label="threshold")
    setup = setup_round(CTX, members, dim, bits, degree=degree, threshold=t)
    # "ok" three times over: most clients finish, as in practice, so many draws stay feasible.
    stage = data.draw(st.lists(st.sampled_from(["ok", "ok", "ok", "silent", "dropped", "unresponsive"]),
                               min_size=n, max_size=n), label="stage")
    silent = {u for u, s in zip(members, stage, strict=True) if s == "silent"}
    dropped = {u for u, s in zip(members, stage, strict=True) if s == "dropped"}
    unresponsive = {u for u, s in zip(members, stage, strict=True) if s == "unresponsive"}
    xs = random_inputs(setup, data.draw(st.integers(0, 2**32), label="input seed"))

    g = setup.graph
    u1 = set(members) - silent
    u2 = u1 - dropped
    u3 = u2 - unresponsive
    inputs_ok = all(len(set(g.of(u)) & u1) >= t for u in u2)
    # Survivors' self-masks, and the s-keys of dropouts that share a mask with some survivor.
    entangled = {v for v in u1 - u2 if set(g.of(v)) & u2}
    recover = {c: len(set(g.of(c)) & u3) for c in u2 | entangled}
    missing = {c: m for c, m in recover.items() if m < t}
    feasible = bool(u2) and inputs_ok and len(u2) >= t and not missing

    event("exact" if feasible else "recovery error" if u2 and inputs_ok and len(u2) >= t else "refused")
    if feasible:
        total = run(setup, xs, silent=silent, dropped=dropped, unresponsive=unresponsive)
        assert [int(v) for v in total] == reference_sum(xs, u2, bits)
    elif u2 and inputs_ok and len(u2) >= t:
        with pytest.raises(RecoveryError) as err:
            run(setup, xs, silent=silent, dropped=dropped, unresponsive=unresponsive)
        assert err.value.missing == missing and err.value.threshold == t
        c, m = next(iter(missing.items()))
        assert f"cannot recover client {c}: {m} shares < threshold {t}" in str(err.value)
    else:
        with pytest.raises(SecAggError):
            run(setup, xs, silent=silent, dropped=dropped, unresponsive=unresponsive)


def test_larger_round_with_ten_percent_dropout() -> None:
    setup = setup_round(CTX, range(60), 257, 24)
    xs = random_inputs(setup, 1)
    dropped = {3, 10, 17, 29, 41, 55}
    total = run(setup, xs, dropped=dropped, unresponsive={5})
    assert [int(v) for v in total] == reference_sum(xs, set(range(60)) - dropped, 24)


def test_recovery_error_message_names_client_and_counts() -> None:
    setup = setup_round(CTX, range(5), 3, 16, threshold=4)  # complete graph, k = 4
    xs = random_inputs(setup, 2)
    # Client 0 drops and 1 stays silent at unmask, so only 2, 3, 4 answer: 0 and 1 have 3 holders
    # among them, and 2, 3, 4 have 2 each (a client holds no share of itself); all < 4.
    with pytest.raises(RecoveryError) as err:
        run(setup, xs, dropped={0}, unresponsive={1})
    assert err.value.missing == {0: 3, 1: 3, 2: 2, 3: 2, 4: 2}
    assert str(err.value).startswith("cannot recover client 0: 3 shares < threshold 4; cannot recover client 1")


def test_dropout_cut_off_from_every_survivor_needs_no_recovery() -> None:
    # A ring (k = 2): client v and both its neighbours drop, so no survivor carries a mask with v.
    setup = setup_round(CTX, range(8), 5, 16, degree=2, threshold=1)
    v = 0
    a, b = setup.neighbours(v)
    xs = random_inputs(setup, 11)
    total = run(setup, xs, dropped={v, a, b})
    assert [int(t) for t in total] == reference_sum(xs, set(range(8)) - {v, a, b}, 16)


def test_simulate_round_matches_independent_quantized_sum() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(0, 0.5, (12, 300)).astype(np.float32)
    for stochastic in (False, True):
        res = simulate_round(x, 1.0, CTX, dropped=[2, 7], stochastic_rounding=stochastic)
        quant = Quantizer.for_field(1.0, 12, 32)
        survivors = [u for u in range(12) if u not in (2, 7)]
        assert res.aggregate.survivors == tuple(survivors) and res.aggregate.dropped == (2, 7)
        want = sum(quant.quantize(x[u], rounding_seed(CTX, u) if stochastic else None).astype(np.uint64)
                   for u in survivors)
        assert np.array_equal(res.aggregate.total.astype(np.uint64), want)
        clipped = np.clip(x[survivors].astype(np.float64), -1, 1).mean(0)
        assert np.max(np.abs(res.mean - clipped)) <= 1.0 / quant.scale + 1e-6
        assert res.message_bytes["masked_input"][0] == 38 + 13 + 4 * 300
        assert set(res.message_bytes["masked_input"]) == set(survivors)


# --- refusals ----------------------------------------------------------------------------------

def staged(n: int = 6, t: int | None = None, degree: int | None = None) -> tuple[RoundSetup, Transcript]:
    setup = setup_round(CTX, range(n), 4, 16, threshold=t, degree=degree)
    return setup, play(setup, random_inputs(setup, 4))


def test_client_never_reveals_both_shares_of_a_neighbour() -> None:
    setup = setup_round(CTX, range(6), 4, 16)
    clients = {u: SecAggClient(setup, u, Drbg(derive_seed(CTX, "c", u))) for u in range(6)}
    roster = [c.advertise() for c in clients.values()]
    shares = [c.share_keys(roster) for c in clients.values()]
    xs = random_inputs(setup, 5)
    for u, c in clients.items():
        c.masked_input(xs[u], shares)
    c0 = clients[0]
    first = c0.unmask({0, 1, 2, 3, 4}, {5})
    assert {(s.owner, s.kind) for s in first.shares} == {(1, ShareKind.SELF_MASK), (2, ShareKind.SELF_MASK),
                                                         (3, ShareKind.SELF_MASK), (4, ShareKind.SELF_MASK),
                                                         (5, ShareKind.SECRET_KEY)}
    # An equivocating server now claims 5 survived: 0 would hand out the other share of 5.
    with pytest.raises(SecAggError, match="already revealed the SECRET_KEY share of client 5"):
        c0.unmask({0, 1, 2, 3, 4, 5}, set())
    # Asking the same question again is harmless.
    assert c0.unmask({0, 1, 2, 3, 4}, {5}).to_bytes() == first.to_bytes()
    c1 = clients[1]
    with pytest.raises(SecAggError, match="both as survivors and as dropped"):
        c1.unmask({0, 1, 2, 3, 4, 5}, {5})
    with pytest.raises(SecAggError, match="client 1 is not among the survivors"):
        c1.unmask({0, 2, 3, 4, 5}, {1})
    with pytest.raises(SecAggError, match="neighbour 5 shared keys but is neither"):
        c1.unmask({0, 1, 2, 3, 4}, set())
    with pytest.raises(SecAggError, match="only 2 survivors < threshold 3"):
        c1.unmask({0, 1}, {2, 3, 4, 5})


def test_stage_order_and_roster_checks() -> None:
    setup = setup_round(CTX, range(4), 4, 16)
    c = SecAggClient(setup, 0, Drbg(CTX))
    with pytest.raises(SecAggError, match="share_keys is stage 1, but the client is at stage 0"):
        c.share_keys([])
    other = SecAggClient(setup, 1, Drbg(derive_seed(CTX, "1")))
    adv0 = c.advertise()
    with pytest.raises(SecAggError, match="advertise is stage 0"):
        c.advertise()
    other.advertise()
    with pytest.raises(SecAggError, match="advertised keys twice"):
        other.share_keys([adv0, adv0])
    c2 = SecAggClient(setup, 2, Drbg(derive_seed(CTX, "2")))
    c2.advertise()
    with pytest.raises(SecAggError, match="does not carry this client's own keys"):
        c2.share_keys([adv0])
    with pytest.raises(SecAggError, match="not a member"):
        SecAggClient(setup, 9)
    with pytest.raises(SecAggError, match="at least 2 members"):
        setup_round(CTX, [3], 4, 16)
    with pytest.raises(SecAggError, match="threshold must be an integer in \\[1, 3\\]"):
        setup_round(CTX, range(4), 4, 16, threshold=4)
    stranger = replace(adv0, index=7)
    c3 = SecAggClient(setup, 3, Drbg(derive_seed(CTX, "3")))
    c3.advertise()
    with pytest.raises(SecAggError, match="client 7 advertised keys but is not a member"):
        c3.share_keys([stranger])


def test_client_refuses_when_too_few_neighbours_advertised_or_shared() -> None:
    setup = setup_round(CTX, range(5), 4, 16, threshold=3)
    clients = {u: SecAggClient(setup, u, Drbg(derive_seed(CTX, "c", u))) for u in range(5)}
    roster = [c.advertise() for c in clients.values()]
    with pytest.raises(SecAggError, match="client 0: only 2 neighbours advertised keys < threshold 3"):
        clients[0].share_keys(roster[:3])
    shares = [clients[u].share_keys(roster) for u in (1, 2, 3)]
    with pytest.raises(SecAggError, match="client 1: only 2 neighbours shared keys < threshold 3"):
        clients[1].masked_input(np.zeros(4, dtype=np.uint32), shares)


def test_input_validation() -> None:
    setup = setup_round(CTX, range(3), 4, 8)
    clients = {u: SecAggClient(setup, u, Drbg(derive_seed(CTX, "c", u))) for u in range(3)}
    roster = [c.advertise() for c in clients.values()]
    shares = [c.share_keys(roster) for c in clients.values()]
    with pytest.raises(SecAggError, match="values must lie in \\[0, 2\\^8\\)"):
        clients[0].masked_input(np.array([0, 1, 2, 256]), shares)
    with pytest.raises(SecAggError, match="expected \\(4,\\)"):
        clients[1].masked_input(np.zeros(5, dtype=np.uint32), shares)
    with pytest.raises(SecAggError, match="quantized integers"):
        clients[2].masked_input(np.zeros(4), shares)


# --- tampering and protocol violations at the server --------------------------------------------

def test_tampered_ciphertext_fails_authentication_naming_the_pair() -> None:
    setup = setup_round(CTX, range(4), 4, 16)
    clients = {u: SecAggClient(setup, u, Drbg(derive_seed(CTX, "c", u))) for u in range(4)}
    roster = [c.advertise() for c in clients.values()]
    shares = [c.share_keys(roster) for c in clients.values()]
    enc = shares[2].shares[0]  # from client 2 to client 0
    assert enc.recipient == 0
    bad = replace(enc, ciphertext=enc.ciphertext[:-1] + bytes([enc.ciphertext[-1] ^ 0x80]))
    shares[2] = replace(shares[2], shares=(bad, *shares[2].shares[1:]))
    with pytest.raises(SecAggError, match="shares from client 2 to client 0 fail authentication"):
        clients[0].masked_input(np.zeros(4, dtype=np.uint32), shares)


def test_tampered_revealed_share_is_caught_by_the_commitments() -> None:
    setup, tr = staged(6, t=3)
    # Shift one revealed self-mask share of a survivor by one: the seed moves, the commitment catches it.
    msg = tr.unmasks[0]
    first = msg.shares[0]
    crafted = replace(first, value=(first.value + 1) % (2**521 - 1))
    tr.unmasks[0] = replace(msg, shares=(crafted, *msg.shares[1:]))
    with pytest.raises(SecAggError, match=f"self-mask seed rebuilt for client {first.owner} does not match"):
        reconstruct(setup, tr.roster, tr.shares, tr.masked, tr.unmasks)

    setup = setup_round(CTX, range(6), 4, 16, threshold=3)
    xs = random_inputs(setup, 6)
    tr = play(setup, xs, dropped={4})
    # Tamper with every s-key share of client 4 that is revealed: whichever t the server uses, the key is wrong.
    for i, msg in enumerate(tr.unmasks):
        tr.unmasks[i] = replace(msg, shares=tuple(
            replace(sh, value=(sh.value + 7) % (2**521 - 1)) if sh.kind == ShareKind.SECRET_KEY else sh
            for sh in msg.shares))
    with pytest.raises(SecAggError, match="s-key rebuilt for dropped client 4 does not match its advertised s_pk"):
        reconstruct(setup, tr.roster, tr.shares, tr.masked, tr.unmasks)


def test_server_rejects_protocol_violations() -> None:
    setup, tr = staged(8, t=3, degree=4)

    def fails(match: str, **changes: list) -> None:  # type: ignore[type-arg]
        args = {"roster": tr.roster, "share_messages": tr.shares, "masked_inputs": tr.masked,
                "unmask_messages": tr.unmasks, **changes}
        with pytest.raises(SecAggError, match=match):
            reconstruct(setup, **args)

    fails("posted its masked input twice", masked_inputs=tr.masked + tr.masked[:1])
    fails("client 0 posted a masked input but never shared keys", share_messages=tr.shares[1:],
          unmask_messages=[])
    fails("client 0 posted shares but never advertised keys", roster=tr.roster[1:])
    fails("no client posted a masked input", masked_inputs=[], unmask_messages=[])
    other = [replace(m, context=derive_seed(CTX, "other")) for m in tr.masked]
    fails("belongs to another round", masked_inputs=other)
    short = setup_round(CTX, range(8), 3, 16, threshold=3, degree=4)
    with pytest.raises(SecAggError, match="is 4 elements of Z_2\\^16, expected 3"):
        reconstruct(short, tr.roster, tr.shares, tr.masked, tr.unmasks)
    # A responder that reveals the wrong kind of share (a survivor's s-key share).
    msg = tr.unmasks[0]
    s0 = msg.shares[0]
    wrong = replace(msg, shares=(RevealedShare(s0.owner, ShareKind.SECRET_KEY, s0.value), *msg.shares[1:]))
    fails(f"revealed the SECRET_KEY share of client {s0.owner}, which survived",
          unmask_messages=[wrong, *tr.unmasks[1:]])
    # A responder claiming a share of a non-neighbour.
    non_nb = next(v for v in range(8) if v != msg.sender and v not in setup.neighbours(msg.sender))
    odd = replace(msg, shares=tuple(sorted((*msg.shares, RevealedShare(non_nb, ShareKind.SELF_MASK, 1)),
                                           key=lambda s: s.owner)))
    fails(f"revealed a share of client {non_nb}, which never shared with it", unmask_messages=[odd, *tr.unmasks[1:]])
    fails("expected UnmaskMessage", unmask_messages=tr.masked)


# --- privacy: a masked input looks uniform -----------------------------------------------------

@pytest.mark.parametrize("bits", [20, 32, 40])
def test_single_masked_input_is_indistinguishable_from_uniform(bits: int) -> None:
    dim = 1 << 17
    setup = setup_round(CTX, range(5), dim, bits)
    # The most structured input there is: all zeros (and a ramp for a second client).
    xs = {u: np.zeros(dim, dtype=np.uint32 if bits <= 32 else np.uint64) for u in range(5)}
    xs[1] = (np.arange(dim) % 7).astype(xs[1].dtype)
    tr = play(setup, xs)
    for u in (0, 1):
        y = tr.masked[u].vector.astype(np.float64)
        # Chi-square on 512 buckets of the top bits and on 512 buckets of the low bits.
        top = (tr.masked[u].vector >> np.uint64(bits - 9)).astype(np.int64)
        low = (tr.masked[u].vector & np.uint64(511)).astype(np.int64)
        for buckets in (top, low):
            counts = np.bincount(buckets, minlength=512)
            assert stats.chisquare(counts).pvalue > 1e-3
        assert stats.kstest(y / 2**bits, "uniform").pvalue > 1e-3
    # The test has power: the same statistic on the unmasked ramp rejects at any level.
    counts = np.bincount((xs[1] & np.uint64(511)).astype(np.int64), minlength=512)
    assert stats.chisquare(counts + 1).pvalue < 1e-12


# --- determinism -------------------------------------------------------------------------------

def test_same_seeds_same_bytes_and_other_seeds_other_bytes() -> None:
    setup = setup_round(CTX, range(7), 64, 32)
    xs = random_inputs(setup, 8)
    a = play(setup, xs, dropped={2})
    b = play(setup_round(CTX, range(7), 64, 32), xs, dropped={2})
    assert a.encoded() == b.encoded()
    ra = reconstruct(setup, a.roster, a.shares, a.masked, a.unmasks)
    rb = reconstruct(setup, list(reversed(b.roster)), list(reversed(b.shares)), list(reversed(b.masked)),
                     list(reversed(b.unmasks)))
    assert ra.total.tobytes() == rb.total.tobytes()
    c = play(setup, xs, dropped={2}, key_seed=derive_seed(CTX, "other keys"))
    assert c.masked[0].to_bytes() != a.masked[0].to_bytes()
    rc = reconstruct(setup, c.roster, c.shares, c.masked, c.unmasks)
    assert rc.total.tobytes() == ra.total.tobytes()  # other masks, same sum

    x = np.random.default_rng(9).uniform(-1, 1, (6, 50)).astype(np.float32)
    s1 = simulate_round(x, 1.0, CTX, dropped=[1], stochastic_rounding=True)
    s2 = simulate_round(x, 1.0, CTX, dropped=[1], stochastic_rounding=True)
    assert s1.aggregate.total.tobytes() == s2.aggregate.total.tobytes()
    assert s1.mean.tobytes() == s2.mean.tobytes()
    assert s1.message_bytes == s2.message_bytes
