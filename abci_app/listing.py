"""Listing rules: how a proof shows that a listing of the keys under a prefix is complete.

Bucket proofs prove single keys, so a listing is proven complete only by a rule that reads the
record pinning down how many keys the prefix holds (see query_proofs). The generic machinery lives
here; each module declares the rules for the prefixes it lists (`Module.listings`), next to the
queries that list them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fedledger.abci_app.context import Reader
from fedledger.abci_app.records import load_record
from fedledger.abci_app.store.proof import ProofError

__all__ = ["AnswerProofError", "Args", "ListingError", "ListingRule", "counted_listing", "numbered_listing"]


class AnswerProofError(ProofError):
    """A query answer is not proven by its record proofs (bad proof, missing or extra record, other answer)."""

    error_code = "ANSWER_PROOF"


class ListingError(AnswerProofError):
    """A prefix listing cannot be proven complete (no rule covers it, or its rule's check fails)."""

    error_code = "LISTING_UNPROVEN"


Args = tuple[str, ...]


@dataclass(frozen=True)
class ListingRule:
    """How to prove that a listing of the keys under a prefix is complete.

    `pattern` is matched against the whole prefix; its groups are the rule's arguments, and
    `prefix(args)` must rebuild exactly that prefix (so only the key layout the module writes is
    covered). `check(view, args, listed)` reads, through `view`, the records that pin down what
    the prefix holds and raises ListingError unless `listed` (the keys returned, sorted) is all of
    it. On the server its reads are recorded, so the client gets their proofs; on the client they
    come from proven records only. Build rules with `counted_listing` or `numbered_listing`.
    """

    name: str
    pattern: re.Pattern[bytes]
    prefix: Callable[[Args], bytes]
    check: Callable[[Reader, Args, Sequence[bytes]], None]

    def match(self, prefix: bytes) -> Args | None:
        """The rule's arguments if it covers `prefix`, else None."""
        m = self.pattern.fullmatch(prefix)
        if m is None:
            return None
        args = tuple(g.decode("ascii") for g in m.groups())
        return args if self.prefix(args) == prefix else None


def counted_listing(name: str, pattern: bytes, prefix: Callable[[Args], bytes],
                    counter_key: Callable[[Args], bytes], counter_field: str) -> ListingRule:
    """A prefix whose keys a record counts: complete when the listing holds exactly `counter_field` keys.

    Sound only if every write of a new key under the prefix increments the counter in the same tx,
    nothing deletes those keys, and no key exists there before its counter record does (an absent
    counter record counts 0).
    """
    def check(view: Reader, args: Args, listed: Sequence[bytes]) -> None:
        rec = load_record(view, counter_key(args))
        expected = rec[counter_field] if rec is not None else 0
        if len(listed) != expected:
            raise ListingError(f"{counter_key(args)!r} counts {expected} ({counter_field}), "
                               f"but the listing holds {len(listed)}")
    return ListingRule(name, re.compile(pattern), prefix, check)


def numbered_listing(name: str, pattern: bytes, prefix: Callable[[Args], bytes],
                     key: Callable[[Args, int], bytes], first: int) -> ListingRule:
    """A prefix holding keys numbered first, first+1, ... with no gap: complete when the next number is absent.

    Sound only if new keys are only ever written with the next number, nothing deletes them, and
    nothing else is written under the prefix.
    """
    def check(view: Reader, args: Args, listed: Sequence[bytes]) -> None:
        for i, k in enumerate(listed):
            if k != key(args, first + i):
                raise ListingError(f"the keys must be numbered {first}..{first + len(listed) - 1} in order, "
                                   f"but position {i} holds {k!r}")
        nxt = key(args, first + len(listed))
        if view.get(nxt) is not None:
            raise ListingError(f"{nxt!r} exists, and the listing leaves it out")
    return ListingRule(name, re.compile(pattern), prefix, check)
