"""The RDP accountant: golden values against Opacus, exactness, parsing, determinism and budget properties."""

from __future__ import annotations

import decimal
import json
import subprocess
import sys
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedledger.abci_app.accountant import (
    ORDERS,
    ZERO_RDP,
    AccountantError,
    BudgetExceeded,
    Mechanism,
    charge,
    compose,
    debit,
    decode_rdp,
    encode_rdp,
    epsilon,
    parse_delta,
    quantize_epsilon,
    quantize_rdp,
    rdp,
)
from fedledger.abci_app.accountant import logs as acc_logs
from fedledger.abci_app.accountant.rdp import _binomials, _offsets, _per_step

D = Decimal

# --------------------------------------------------------------------------------------------
# Golden rows. Reference ε and optimal order from Opacus 1.6.0 (torch 2.15, numpy 2.4.6,
# scipy 1.17.1, float64), installed in a throwaway venv outside the repo
# (python3 -m venv /tmp/opacus && /tmp/opacus/bin/pip install opacus), computed as
#     acc = opacus.accountants.RDPAccountant(); acc.history = [(sigma, q, T), ...]
#     eps, order = acc.get_privacy_spent(delta=delta, alphas=list(range(2, 65)) + [128, 256])
# i.e. with OUR integer order list passed explicitly (Opacus' default list has fractional
# orders and stops at 63), so both sides minimise over the same orders: a like-for-like check.
# Google's dp-accounting 0.6.0 (RdpAccountant(orders=same list), PoissonSampledDpEvent of a
# GaussianDpEvent, or a plain GaussianDpEvent for q = 1) gives the same orders and agrees with
# Opacus to within 2.3e-10 relative on every row.
# The last column is the exact value from mpmath 1.3.0 at 90 digits (the binomial sum and the
# conversion evaluated directly), to 40 significant digits: float64 references cannot show
# whether our 50-digit arithmetic is right beyond ~1e-10, this can.
# Rows: (history [(σ, q, T), ...], δ, Opacus ε, Opacus order, exact ε).
# --------------------------------------------------------------------------------------------
GOLDEN: list[tuple[list[tuple[str, str, int]], str, float, int, str]] = [
    ([("1.1", "0.01", 100)], "1e-5", 0.9810018640955579, 11, "0.9810018640955584697690793734289465029238"),
    ([("1", "1", 10)], "1e-5", 19.801691480042894, 3, "19.80169148004289498236934290278529853011"),  # q = 1
    ([("10", "1", 1)], "1e-5", 0.3752912223662765, 41, "0.3752912223662765143912721720729200916164"),  # q = 1
    ([("0.5", "0.001", 1000)], "1e-6", 6.114651610849102, 3, "6.114651610849102398280540902771949905221"),  # σ<1
    ([("0.8", "0.02", 10000)], "1e-5", 25.19820051344616, 2, "25.19820051344640489847959295839970258701"),
    ([("4", "0.00001", 100000)], "1e-5", 0.01957160082173695, 256,  # small q, large T
     "0.01957160081716821167303382142613539435163"),
    ([("1.3", "0.000001", 50000)], "1e-9", 0.3534582246344978, 46,  # tiny q
     "0.3534582246359675311999814851604552174076"),
    ([("1", "0.004", 1000000)], "1e-5", 37.61876244708404, 2, "37.61876244708896947365778354094609116744"),  # T=1e6
    ([("2.5", "0.1", 5000)], "1e-7", 20.321446003330365, 3, "20.32144600332995575877402052605643977704"),
    ([("0.6", "0.5", 3)], "0.01", 7.906424235934615, 2, "7.906424235934615577982344181124889855565"),
    ([("1.1", "0.01", 100), ("2", "0.05", 300), ("0.9", "1", 2)], "1e-5", 8.491574029117508, 4,  # a history
     "8.49157402911752191119538070325373887869"),
]


def _mech(sigma: str, q: str, steps: int) -> Mechanism:
    return Mechanism.parse({"noise_multiplier": sigma, "sample_rate": q, "steps": steps})


def _eps(history: list[tuple[str, str, int]], delta: str) -> tuple[Decimal, int]:
    return epsilon(compose(*(rdp(_mech(*h)) for h in history)), delta)


@pytest.mark.parametrize(("history", "delta", "ref", "ref_order", "exact"), GOLDEN)
def test_golden_against_opacus(history: list[tuple[str, str, int]], delta: str, ref: float, ref_order: int,
                               exact: str) -> None:
    eps, order = _eps(history, delta)
    assert order == ref_order
    # Only the assertion converts to float: the reference is a float64.
    assert abs(float(eps) - ref) / ref <= 1e-6
    # Against the 40-digit exact value: far beyond what the float reference can confirm.
    assert abs(eps - D(exact)) / D(exact) < D("1e-38")


def test_q_one_is_alpha_over_two_sigma_squared() -> None:
    vec = rdp(_mech("2", "1", 3))
    assert vec == tuple(D(3 * a) / 8 for a in ORDERS)


def test_small_q_keeps_relative_precision() -> None:
    # q = 1e-12, σ = 1: A_2 = 1 + B with B = q²(e − 1) exactly (k = 2 is the only term with k ≥ 2),
    # so ε_RDP(2) = ln(1 + B) = B(1 − B/2 + …). A naive ln(A) at 50 digits would keep only ~26 of B's
    # digits; we must agree with B to ~1e-24 relative (the size of B/2).
    vec = rdp(_mech("1", "0.000000000001", 1))
    ctx = decimal.Context(prec=80)
    expected = ctx.multiply(D("1e-24"), ctx.subtract(ctx.exp(D(1)), 1))
    assert ctx.divide(abs(ctx.subtract(vec[0], expected)), expected) < D("1e-23")


# ------------------------------------------------------------------------------- parsing


def test_mechanism_parse_and_canonical_json() -> None:
    body = {"noise_multiplier": "1.1", "sample_rate": "0.01", "steps": 100}
    mech = Mechanism.parse(body)
    assert mech == Mechanism(D("1.1"), D("0.01"), 100)
    assert mech.to_json() == body
    assert Mechanism.parse(mech.to_json()) == mech
    # Decimals are normalized, so equal values make equal (and equally serialized) mechanisms.
    same = Mechanism(D("1.100"), D("0.0100"), 100)
    assert same == mech and hash(same) == hash(mech) and same.to_json() == body
    big = Mechanism.parse({"noise_multiplier": "10000", "sample_rate": "1", "steps": 1})
    assert big.to_json()["noise_multiplier"] == "10000"


@pytest.mark.parametrize(("field", "value", "message"), [
    ("noise_multiplier", 1.1, "decimal string"),
    ("noise_multiplier", "1.10", "not a canonical plain decimal: write '1.1'"),
    ("noise_multiplier", "01.1", "not a canonical"),
    ("noise_multiplier", "+1.1", "not a canonical"),
    ("noise_multiplier", " 1.1", "not a canonical"),
    ("noise_multiplier", "1_1", "not a canonical"),
    ("noise_multiplier", "NaN", "not a canonical"),
    ("noise_multiplier", "Infinity", "not a canonical"),
    ("noise_multiplier", "1.1234567", "more than 6 decimal places"),
    ("noise_multiplier", "0.05", "must be in [0.1, 10000]"),
    ("noise_multiplier", "10001", "must be in [0.1, 10000]"),
    ("noise_multiplier", "-1", "must be positive"),
    ("noise_multiplier", "1" * 65, "longer than 64"),
    ("sample_rate", "1e-5", "write '0.00001'"),
    ("sample_rate", "0", "must be in (0, 1]"),
    ("sample_rate", "1.5", "must be in (0, 1]"),
    ("sample_rate", "0.0000000000001", "more than 12 decimal places"),
    ("sample_rate", 0, "decimal string"),
    ("steps", 0, "steps must be in [1, 1000000000]"),
    ("steps", 10**9 + 1, "steps must be in [1, 1000000000]"),
    ("steps", True, "steps must be an integer"),
    ("steps", "100", "steps must be an integer"),
    ("steps", 100.0, "steps must be an integer"),
])
def test_mechanism_parse_rejects(field: str, value: object, message: str) -> None:
    body: dict[str, object] = {"noise_multiplier": "1.1", "sample_rate": "0.01", "steps": 100}
    body[field] = value
    with pytest.raises(AccountantError, match=None) as info:
        Mechanism.parse(body)
    assert message in str(info.value)
    assert field in str(info.value)


def test_mechanism_parse_rejects_shape() -> None:
    with pytest.raises(AccountantError, match="missing \\['steps'\\], unexpected \\['x'\\]"):
        Mechanism.parse({"noise_multiplier": "1.1", "sample_rate": "0.01", "x": 1})
    with pytest.raises(AccountantError, match="must be an object"):
        Mechanism.parse(["1.1", "0.01", 100])  # type: ignore[arg-type]
    with pytest.raises(AccountantError, match="must be Decimals"):
        Mechanism("1.1", D("0.01"), 1)  # type: ignore[arg-type]
    assert issubclass(AccountantError, ValueError)  # callers may catch ValueError


def test_mechanism_of_rounds_conservatively() -> None:
    mech = Mechanism.of(D("1.23456789"), Fraction(64, 60000), 10)
    assert mech.noise_multiplier == D("1.234567")  # σ down
    assert mech.sample_rate == D("0.001066666667")  # q up
    assert Mechanism.of("1.1", "1e-2", 5) == _mech("1.1", "0.01", 5)
    with pytest.raises(AccountantError, match="not float"):
        Mechanism.of(1.1, "0.01", 5)  # type: ignore[arg-type]


def test_delta_validation() -> None:
    assert parse_delta("1e-5") == D("0.00001") == parse_delta(D("0.00001"))
    for bad, message in [("0", "(0, 1)"), ("1", "(0, 1)"), ("1e-31", "more than 30 decimal places"),
                         ("1e-5000", "not a decimal number"), ("abc", "not a decimal number")]:
        with pytest.raises(AccountantError, match=None) as info:
            parse_delta(bad)
        assert message in str(info.value)
    with pytest.raises(AccountantError, match="not float"):
        epsilon(ZERO_RDP, 1e-5)  # type: ignore[arg-type]
    with pytest.raises(AccountantError, match="more than 30 decimal places"):
        parse_delta(D("1e-999999999"))  # refused without printing a billion zeros


def test_vector_validation() -> None:
    with pytest.raises(AccountantError, match="one value per order"):
        compose(ZERO_RDP[:-1])
    with pytest.raises(AccountantError, match="non-negative"):
        epsilon((D(-1),) + ZERO_RDP[1:], "1e-5")
    with pytest.raises(AccountantError, match="non-negative"):
        compose((D("NaN"),) + ZERO_RDP[1:])
    with pytest.raises(AccountantError, match="Mechanism"):
        rdp({"noise_multiplier": "1"})  # type: ignore[arg-type]
    assert compose() == tuple(D(0) for _ in ORDERS)


# ------------------------------------------------------------------------------- quantization


def test_quantize_epsilon_rounds_up() -> None:
    assert quantize_epsilon(D("1")) == 1_000_000
    assert quantize_epsilon(D("1.0000001")) == 1_000_001
    assert quantize_epsilon(D("0.0000000000001")) == 1
    assert quantize_epsilon(D(0)) == 0
    for bad in (D(-1), D("Infinity"), 1.5):
        with pytest.raises(AccountantError):
            quantize_epsilon(bad)  # type: ignore[arg-type]
    with pytest.raises(AccountantError, match="too large"):
        quantize_epsilon(D(10) ** 13)


def test_rdp_encoding_is_canonical_and_conservative() -> None:
    vec = rdp(_mech("1.1", "0.01", 100))
    enc = encode_rdp(vec)
    assert len(enc) == len(ORDERS)
    assert all(len(s.split(".")[1]) == 12 for s in enc)
    dec = decode_rdp(enc)
    assert dec == quantize_rdp(vec)
    assert all(stored >= exact for stored, exact in zip(dec, vec, strict=True))
    assert all(stored - exact < D("1e-12") for stored, exact in zip(dec, vec, strict=True))
    assert encode_rdp(dec) == enc  # idempotent
    assert epsilon(dec, "1e-5")[0] >= epsilon(vec, "1e-5")[0]
    assert json.dumps(enc).isascii()
    assert encode_rdp(ZERO_RDP) == ["0.000000000000"] * len(ORDERS)
    for bad in (enc[:-1], [*enc[:-1], "1.5"], [*enc[:-1], "01.000000000000"], [*enc[:-1], 1],
                [*enc[:-1], "1e-12"], "x"):
        with pytest.raises(AccountantError):
            decode_rdp(bad)


def test_epsilon_clamps_at_zero_for_large_delta() -> None:
    eps, order = epsilon(ZERO_RDP, "0.999")
    assert eps == 0 and order in ORDERS


# ------------------------------------------------------------------------------- properties

sigmas = st.decimals(min_value=D("0.3"), max_value=D("20"), places=2)
rates = st.decimals(min_value=D("0.0001"), max_value=D("1"), places=4).filter(lambda q: q > 0)
step_counts = st.integers(min_value=1, max_value=100_000)
deltas = st.sampled_from(["1e-5", "1e-7", "0.001"])
PROPS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(sigmas, rates, step_counts, step_counts, deltas)
def test_monotone_in_steps(sigma: Decimal, q: Decimal, t1: int, t2: int, delta: str) -> None:
    lo, hi = sorted((t1, t2))
    assert epsilon(rdp(Mechanism(sigma, q, lo)), delta)[0] <= epsilon(rdp(Mechanism(sigma, q, hi)), delta)[0]


@PROPS
@given(sigmas, rates, rates, step_counts, deltas)
def test_monotone_in_rate(sigma: Decimal, q1: Decimal, q2: Decimal, steps: int, delta: str) -> None:
    lo, hi = sorted((q1, q2))
    a, b = rdp(Mechanism(sigma, lo, steps)), rdp(Mechanism(sigma, hi, steps))
    assert all(x <= y for x, y in zip(a, b, strict=True))
    assert epsilon(a, delta)[0] <= epsilon(b, delta)[0]


@PROPS
@given(sigmas, sigmas, rates, step_counts, deltas)
def test_antimonotone_in_sigma(s1: Decimal, s2: Decimal, q: Decimal, steps: int, delta: str) -> None:
    lo, hi = sorted((s1, s2))
    a, b = rdp(Mechanism(lo, q, steps)), rdp(Mechanism(hi, q, steps))
    assert all(x >= y for x, y in zip(a, b, strict=True))
    assert epsilon(a, delta)[0] >= epsilon(b, delta)[0]


@PROPS
@given(sigmas, rates, step_counts, step_counts)
def test_composition_is_additive(sigma: Decimal, q: Decimal, t1: int, t2: int) -> None:
    joint = rdp(Mechanism(sigma, q, t1 + t2))
    parts = compose(rdp(Mechanism(sigma, q, t1)), rdp(Mechanism(sigma, q, t2)))
    for x, y in zip(joint, parts, strict=True):
        assert abs(x - y) <= x * D("1e-45")
    assert compose(parts, ZERO_RDP) == parts


@PROPS
@given(st.lists(st.tuples(sigmas, rates, step_counts), min_size=1, max_size=4), deltas)
def test_compose_is_order_independent(history: list[tuple[Decimal, Decimal, int]], delta: str) -> None:
    vecs = [rdp(Mechanism(*h)) for h in history]
    forward, backward = compose(*vecs), compose(*reversed(vecs))
    for x, y in zip(forward, backward, strict=True):
        assert abs(x - y) <= x * D("1e-45")


def _clear_caches() -> None:
    _per_step.cache_clear()
    _offsets.cache_clear()
    _binomials.cache_clear()
    acc_logs._tables.cache_clear()


SAMPLES = [("1.1", "0.01", 100), ("0.5", "0.001", 1000), ("2", "1", 7), ("1", "0.000000000001", 3),
           ("10000", "0.5", 10), ("0.1", "0.999999999999", 1000000000)]


def _outputs() -> list[object]:
    # as_tuple() is the exact representation (sign, digits, exponent): equal means bit-identical.
    out: list[object] = []
    for s, q, t in SAMPLES:
        vec = rdp(_mech(s, q, t))
        eps, order = epsilon(vec, "1e-5")
        out.append(([v.as_tuple() for v in vec], eps.as_tuple(), order, quantize_epsilon(eps), encode_rdp(vec)))
    return out


def test_independent_of_global_context_and_repeatable() -> None:
    _clear_caches()
    baseline = _outputs()
    _clear_caches()
    assert _outputs() == baseline  # recomputed from scratch: bit-identical strings
    assert _outputs() == baseline  # from the caches
    weird = decimal.Context(prec=3, rounding=decimal.ROUND_DOWN, Emax=10, Emin=-10, capitals=0,
                            traps=[decimal.Inexact, decimal.Rounded, decimal.Overflow, decimal.Underflow,
                                   decimal.InvalidOperation, decimal.DivisionByZero, decimal.Subnormal,
                                   decimal.Clamped])
    with decimal.localcontext(weird):
        _clear_caches()
        # Any use of the thread's context with these traps would raise; any use of its precision would differ.
        inside = _outputs()
    assert inside == baseline


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="needs the C decimal module to compare against")
def test_pure_python_decimal_gives_the_same_digits() -> None:
    # Validators may in principle run the pure-Python decimal (_pydecimal): every operation used is
    # correctly rounded by the specification, so its digits must equal libmpdec's.
    assert type(D(1)).__module__ == "decimal" and decimal.__name__ == "decimal"
    samples = SAMPLES[:3]
    script = (
        "import sys, json\n"
        "assert 'decimal' not in sys.modules\n"
        "sys.modules['_decimal'] = None  # decimal then falls back to _pydecimal\n"
        "import decimal, _pydecimal; assert decimal.Decimal is _pydecimal.Decimal\n"
        "from fedledger.abci_app.accountant import Mechanism, rdp, epsilon, encode_rdp\n"
        f"out = []\nfor s, q, t in {samples!r}:\n"
        "    v = rdp(Mechanism.parse({'noise_multiplier': s, 'sample_rate': q, 'steps': t}))\n"
        "    e, o = epsilon(v, '1e-5')\n"
        "    out.append([[str(x) for x in v], str(e), o])\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    native = []
    for s, q, t in samples:
        vec = rdp(_mech(s, q, t))
        eps, order = epsilon(vec, "1e-5")
        native.append([[str(x) for x in vec], str(eps), order])
    assert json.loads(done.stdout) == native


# ------------------------------------------------------------------------------- budgets


def test_debit_refuses_overspend() -> None:
    assert debit(8_000_000, 1_000_000, 500_000) == 1_500_000
    assert debit(8_000_000, 1_000_000, 7_000_000) == 8_000_000  # exactly to the budget
    with pytest.raises(BudgetExceeded, match="would bring spent ε to 8000001 µε, over the budget of 8000000 µε "
                                             "\\(7000000 µε remain\\)"):
        debit(8_000_000, 1_000_000, 7_000_001)
    for args in [(-1, 0, 0), (10, 0, -1), (10, 11, 0), (True, 0, 0), (10, 0, 1.5)]:
        with pytest.raises(AccountantError):
            debit(*args)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10**12), st.lists(st.integers(min_value=0, max_value=10**11), max_size=30))
def test_remaining_budget_never_negative(budget: int, costs: list[int]) -> None:
    spent = 0
    for cost in costs:
        try:
            new = debit(budget, spent, cost)
        except BudgetExceeded:
            assert spent + cost > budget  # refused only when it would overspend, and nothing changed
            continue
        assert new == spent + cost
        spent = new
        assert budget - spent >= 0


def test_chain_charges_what_the_client_planned() -> None:
    """A participant contributes round after round until the budget refuses; plan == charge, bit for bit."""
    mech = _mech("1.1", "0.01", 100)
    budget = 3_000_000
    stored = encode_rdp(ZERO_RDP)  # what state holds: strings
    spent = 0
    planned = []
    rounds = 0
    while True:
        # The client plans from the queried state; the chain recomputes from its own copy.
        plan = charge(decode_rdp(json.loads(json.dumps(stored))), mech, "1e-5")
        chain = charge(decode_rdp(stored), mech, "0.00001")
        assert plan == chain and encode_rdp(plan.rdp) == encode_rdp(chain.rdp)
        assert plan.epsilon_micro >= spent  # a debit never refunds
        try:
            spent = debit(budget, spent, chain.epsilon_micro - spent)
        except BudgetExceeded:
            break
        stored = encode_rdp(chain.rdp)
        planned.append(plan.epsilon_micro)
        rounds += 1
    assert rounds >= 3 and spent == planned[-1] <= budget
    # The stored history equals running all rounds at once (up to the 1e-12 rounding-up of each round).
    eps_all = epsilon(rdp(Mechanism(mech.noise_multiplier, mech.sample_rate, mech.steps * rounds)), "1e-5")[0]
    assert quantize_epsilon(eps_all) <= spent <= quantize_epsilon(eps_all) + 1


def test_imports_only_the_standard_library() -> None:
    # Consensus code and clients import the accountant; it must not drag in numpy, torch or chain internals.
    # The error family (abci_app/errors.py, itself standard library only) is the one exception.
    script = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import fedledger.abci_app.accountant\n"
        "ours = ('fedledger', 'fedledger.abci_app', 'fedledger.abci_app.errors')\n"
        "new = sorted(set(sys.modules) - before)\n"
        "print([m for m in new if m not in ours and not m.startswith('fedledger.abci_app.accountant')\n"
        "       and m.split('.')[0] not in sys.stdlib_module_names or m.startswith('fedledger.abci_app.') and\n"
        "       not m.startswith('fedledger.abci_app.accountant') and m not in ours])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"
