"""Proofs of whole query answers: record every store read while answering, re-derive the answer from proven records.

How an answer is proven
-----------------------
A query function is a pure function of a `Reader` (the committed state) and its path arguments.
With `prove`, the state machine answers through a `RecordingView`, which notes every key the
function reads (`get`, present or absent) and every key a listing (`iter_prefix`) returns. The
answer then carries one `RecordProof` per noted key: the record's value, or its absence, with
its bucket Merkle proof against the app hash.

A client checks every record proof against an app hash it trusts, then re-runs the same query
function on a `ProvenView` holding only the proven records, and demands that the result equal
the answer it received, byte for byte (`verify_answer`). A tampered answer, a tampered or forged
record, a missing record (the function reads a key no proof covers) and an extra record (a proof
the answer never read) all fail.

What a listing proof guarantees
-------------------------------
Bucket proofs prove single keys: each listed record is proven present with its value, but the
absence of *other* keys under a prefix cannot be shown (keys are hashed into buckets, so a range
of keys has no Merkle path). A listing is therefore proven complete only when a `ListingRule`
covers its prefix: the rule reads a record that pins down how many keys the prefix holds (and
that record is proven like any other). A listing that no rule covers cannot be proven complete,
and `verify_answer` refuses the answer rather than accept a list a node may have cut short.

The rules rely on invariants the state machine keeps (a client trusting the app hash trusts the
state machine's rules anyway):

* `fl/contrib/<task>/<round>/` (`/contributions/T/R`): only commit_contribution writes there, one
  key per contribution, and it increments the round record's `contributions` counter in the same
  tx; nothing deletes contributions. Complete when the proven keys number exactly that counter
  (0 when the round record is proven absent).
* `fl/version/<task>/` (`/versions/T`, and any query listing a task's versions): version 0 is
  written by create_task and each propose_version writes `latest_version + 1`; nothing deletes a
  version or writes other keys there, so the keys are exactly versions 0..n-1. Complete when the
  proven keys are versions 0..n-1 in order and version n is proven absent.

Answers built only from point reads (task, round, contribution, version, lineage, budget, org,
member, whois, nonce, key, and point-read answers of other modules) need no rule: every record
they used is proven, present or absent. A module whose query lists a prefix makes that answer
provable by declaring a `counted_listing` or `numbered_listing` (abci_app/listing.py) in its
`Module.listings`, next to the query (federation/queries.py holds the two above); `listing_rules()`
collects them in module order, and both the node and the client use that table, so both must run
the same code.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fedledger.abci_app.canonical import CanonicalError, canonical_bytes
from fedledger.abci_app.context import Reader
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.listing import (
    AnswerProofError,
    Args,
    ListingError,
    ListingRule,
    counted_listing,
    numbered_listing,
)
from fedledger.abci_app.modules.auth.nonces import last_nonce
from fedledger.abci_app.modules.base import Module, QueryAnswer
from fedledger.abci_app.store.proof import ProofError, RecordProof

__all__ = [
    "PROOF_OP_TYPE",
    "AnswerProofError",
    "ListingError",
    "ListingRule",
    "ProvenAnswer",
    "ProvenView",
    "QueryFn",
    "RecordingView",
    "UnprovenReadError",
    "answer_query",
    "counted_listing",
    "find_listing_rule",
    "listing_rules",
    "numbered_listing",
    "query_table",
    "verify_answer",
]

log = logging.getLogger(__name__)

#: The ProofOp type of a RecordProof in an ABCI query response.
PROOF_OP_TYPE = "fedledger:bucket-merkle"

#: A module's query function: answer(view, path arguments).
QueryFn = Callable[[Reader, list[str]], QueryAnswer]

_SEG = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


class UnprovenReadError(AnswerProofError):
    """Re-deriving an answer read a store key for which the answer carries no proof."""

    error_code = "UNPROVEN_READ"


# ----------------------------------------------------------------------------- listing rules

def listing_rules() -> tuple[ListingRule, ...]:
    """Every module's listing rules, in module order; a prefix is covered by the first rule that matches it.

    Each module declares the rules of the prefixes its queries list (`Module.listings`); both the
    node and the client use this table, so both run the same code.
    """
    global _RULES
    if _RULES is None:
        from fedledger.abci_app.modules.registry import DEFAULT_MODULES

        _RULES = tuple(rule for module in DEFAULT_MODULES for rule in module.listings)
    return _RULES


_RULES: tuple[ListingRule, ...] | None = None


def __getattr__(name: str) -> tuple[ListingRule, ...]:
    # LISTING_RULES stays importable; it is built on first use (the modules import late, see listing_rules).
    if name == "LISTING_RULES":
        return listing_rules()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def find_listing_rule(prefix: bytes, rules: Sequence[ListingRule] | None = None) -> tuple[ListingRule, Args] | None:
    """The first rule covering `prefix` (of `rules`, default: every module's), with its arguments; None if none does."""
    for rule in listing_rules() if rules is None else rules:
        args = rule.match(prefix)
        if args is not None:
            return rule, args
    return None


# ----------------------------------------------------------------------------- views

class RecordingView:
    """A Reader over `base` that notes every key read and every key a listing returned, in first-read order.

    A listing covered by a rule also runs the rule's check through this view, so the records the
    rule needs are noted (and later proven) too. An unknown listing is served and noted as is: the
    client will refuse it as not provably complete.
    """

    def __init__(self, base: Reader, rules: Sequence[ListingRule] | None = None) -> None:
        self._base = base
        self._rules = listing_rules() if rules is None else tuple(rules)
        self._reads: dict[bytes, None] = {}  # an ordered set

    @property
    def height(self) -> int | None:
        """The base view's committed height, if it has one (a query may report the height it answers at)."""
        h = getattr(self._base, "height", None)
        return h if isinstance(h, int) and not isinstance(h, bool) else None

    @property
    def reads(self) -> tuple[bytes, ...]:
        """Every key read so far (by get, a listing, or a listing rule), each once, in first-read order."""
        return tuple(self._reads)

    def get(self, key: bytes) -> bytes | None:
        """The value at key (None if absent); the key is noted either way."""
        value = self._base.get(key)
        self._reads.setdefault(key, None)
        return value

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """The pairs under prefix, sorted by key; every key is noted, then the prefix's rule reads its witnesses."""
        items = list(self._base.iter_prefix(prefix))
        for key, _ in items:
            self._reads.setdefault(key, None)
        found = find_listing_rule(prefix, self._rules)
        if found is not None:
            rule, params = found
            try:
                rule.check(self, params, [k for k, _ in items])
            except ListingError as exc:
                # Committed state breaks the rule's invariant: answer anyway, the client will refuse the proof.
                log.error("listing %r breaks its completeness rule (%s): %s", prefix, rule.name, exc)
        return iter(items)


class ProvenView:
    """A Reader made only of proven records: reading any other key, or an uncovered listing, is an error.

    The first such error is also remembered (`failure`), so a query function that catches
    exceptions cannot turn a missing proof into an answer.
    """

    def __init__(self, records: Mapping[bytes, bytes | None], rules: Sequence[ListingRule] | None = None,
                 height: int | None = None) -> None:
        #: The committed height the records are proven at, as the node's view would report it.
        self.height = height
        self._records = dict(records)
        self._rules = listing_rules() if rules is None else tuple(rules)
        self._used: set[bytes] = set()
        self._listed: list[bytes] = []
        self.failure: AnswerProofError | None = None

    def _fail(self, exc: AnswerProofError) -> AnswerProofError:
        if self.failure is None:
            self.failure = exc
        return exc

    def get(self, key: bytes) -> bytes | None:
        """The proven value at key (None if proven absent); UnprovenReadError if no proof covers the key."""
        if key not in self._records:
            raise self._fail(UnprovenReadError(f"the answer depends on record {key!r}, which it does not prove"))
        self._used.add(key)
        return self._records[key]

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """The proven-present records under prefix, sorted; ListingError unless a rule proves the list complete."""
        items = sorted((k, v) for k, v in self._records.items() if v is not None and k.startswith(prefix))
        for key, _ in items:
            self._used.add(key)
        found = find_listing_rule(prefix, self._rules)
        if found is None:
            raise self._fail(ListingError(
                f"the answer lists the keys under {prefix!r}, and no rule can prove such a list complete "
                "(bucket proofs cannot show that a node left no key out)"))
        rule, params = found
        try:
            rule.check(self, params, [k for k, _ in items])
        except ListingError as exc:
            raise self._fail(ListingError(f"the listing under {prefix!r} is not proven complete: {exc}")) from None
        self._listed.append(prefix)
        return iter(items)

    @property
    def listed(self) -> tuple[bytes, ...]:
        """Prefixes whose listings were proven complete, in order."""
        return tuple(self._listed)

    def unused(self) -> list[bytes]:
        """Proven keys that nothing read, sorted."""
        return sorted(set(self._records) - self._used)


# ----------------------------------------------------------------------------- answering

def query_table(modules: Sequence[Module]) -> dict[str, QueryFn]:
    """Query kind -> function over `modules`, as the state machine builds it; a kind registered twice raises."""
    table: dict[str, QueryFn] = {}
    for module in modules:
        for name, fn in module.queries.items():
            if name in table:
                raise RuntimeError(f"module {module.name} registers query {name!r} twice")
            table[name] = fn
    return table


def answer_query(queries: Mapping[str, QueryFn], path: str, data: bytes, view: Reader,
                 prove: bool) -> tuple[bytes, bytes]:
    """The answer to a query: (response key, response value); TxError for a refused query.

    The one definition of what a query path means: the state machine answers with it, and
    `verify_answer` re-derives answers with it. `/key` returns the raw value at `data` (with
    `prove`, an absent key answers empty bytes instead of QUERY_NOT_FOUND); every other path
    answers canonical JSON, with the record's key for single-record answers.
    """
    key: bytes | None
    if path.startswith("/nonce/"):
        value: Any = {"signer": path[7:], "last_nonce": last_nonce(view, path[7:])}
        key = None
    elif path == "/key":
        raw = view.get(data)
        if raw is None and not prove:
            raise TxError(Code.QUERY_NOT_FOUND, "key not found")
        return data, raw or b""
    else:
        parts = [p for p in path.split("/") if p]
        if not parts or not all(_SEG.match(p) for p in parts):
            raise TxError(Code.BAD_QUERY, f"malformed query path {path!r}")
        answer = queries.get(parts[0])
        if answer is None:
            kinds = ", ".join(f"/{k}" for k in sorted([*queries, "nonce", "key"]))
            raise TxError(Code.BAD_QUERY, f"unknown query {path!r}; known: {kinds}")
        result = answer(view, parts[1:])
        value, key = result.value, result.key
    try:
        body = canonical_bytes(value)
    except CanonicalError as exc:
        raise TxError(Code.BAD_QUERY, str(exc)) from exc
    return key or b"", body


# ----------------------------------------------------------------------------- verifying

@dataclass(frozen=True)
class ProvenAnswer:
    """What `verify_answer` established about an answer."""

    present: int  # records proven present, with their values
    absent: int  # keys proven absent
    listings: tuple[bytes, ...]  # prefixes whose listings were proven complete


_DEFAULT_QUERIES: dict[str, QueryFn] | None = None


def _default_queries() -> dict[str, QueryFn]:
    global _DEFAULT_QUERIES
    if _DEFAULT_QUERIES is None:
        from fedledger.abci_app.modules.registry import DEFAULT_MODULES

        _DEFAULT_QUERIES = query_table(DEFAULT_MODULES)
    return _DEFAULT_QUERIES


def _decode_ops(ops: Sequence[tuple[str, bytes, bytes]]) -> dict[bytes, RecordProof]:
    records: dict[bytes, RecordProof] = {}
    for i, op in enumerate(ops):
        if not isinstance(op, tuple) or len(op) != 3:
            raise AnswerProofError(f"proof op {i} must be a (type, key, data) triple")
        op_type, op_key, data = op
        if op_type != PROOF_OP_TYPE:
            raise AnswerProofError(f"proof op {i} has type {op_type!r}, not {PROOF_OP_TYPE!r}")
        try:
            record = RecordProof.decode(data)
        except ProofError as exc:
            raise AnswerProofError(f"proof op {i} ({op_key!r}) is malformed: {exc}") from None
        if record.key != op_key:
            raise AnswerProofError(f"proof op {i} is labelled {op_key!r} but proves {record.key!r}")
        if record.key in records:
            raise AnswerProofError(f"record {record.key!r} is proven twice")
        records[record.key] = record
    return records


def verify_answer(path: str, data: bytes, value: bytes, ops: Sequence[tuple[str, bytes, bytes]], app_hash: bytes,
                  *, key: bytes = b"", code: int = 0, log: str = "", height: int | None = None,
                  queries: Mapping[str, QueryFn] | None = None) -> ProvenAnswer:
    """Check that the answer (`code`, `log`, `key`, `value`) to query `path`/`data` is what state `app_hash` gives.

    `ops` are the response's proof ops as (type, key, data). Every op must be a RecordProof that
    verifies against `app_hash`; the answer is then re-derived by running the query on a view of
    the proven records only (with `queries`, default: this build's modules) and must equal the
    one given exactly; every proven record must have been read. Raise AnswerProofError (a
    ProofError) naming the first thing that fails. `path` and `data` must be what the caller
    asked, never what a node reports. `height` is the committed height the answer is for (the
    response's height, which the header H+1 carrying `app_hash` pins down): a query that reports
    the height it answers at (e.g. a reputation score decayed to now) is re-derived with it.
    """
    records = _decode_ops(ops)
    for rkey, record in records.items():
        try:
            record.verify(app_hash)
        except ProofError as exc:
            raise AnswerProofError(f"the Merkle proof of record {rkey!r} does not verify: {exc}") from None
    view = ProvenView({k: r.value for k, r in records.items()}, height=height)
    derived_code, derived_log, derived_key, derived_value = 0, "", b"", b""
    try:
        derived_key, derived_value = answer_query(queries if queries is not None else _default_queries(),
                                                  path, data, view, prove=True)
    except AnswerProofError:
        pass  # remembered in view.failure, raised below
    except TxError as exc:
        derived_code, derived_log = int(exc.code), exc.log
    except Exception as exc:  # any crash of the re-derivation: not proven
        if view.failure is None:
            raise AnswerProofError(f"re-deriving the answer from the proven records failed: "
                                   f"{type(exc).__name__}: {exc}") from None
    if view.failure is not None:
        raise view.failure
    if derived_code != code:
        raise AnswerProofError(
            f"the answer has code {code}, but the proven records give code {derived_code}"
            + (f" ({derived_log})" if derived_log else ""))
    if code != 0 and derived_log != log:
        raise AnswerProofError(f"the answer says {log!r}, but the proven records give {derived_log!r}")
    if derived_key != key:
        raise AnswerProofError(f"the answer names record {key!r}, but the proven records give {derived_key!r}")
    if derived_value != value:
        raise AnswerProofError("the answer differs from the one the proven records give "
                               f"({len(value)} bytes received, {len(derived_value)} bytes re-derived)")
    extra = view.unused()
    if extra:
        raise AnswerProofError(f"the answer carries proofs of records it does not use: {extra[:5]!r}"
                               + (f" and {len(extra) - 5} more" if len(extra) > 5 else ""))
    present = sum(1 for r in records.values() if r.value is not None)
    return ProvenAnswer(present=present, absent=len(records) - present, listings=view.listed)
