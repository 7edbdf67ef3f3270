"""What a state-machine module provides: tx routes, queries, a genesis section and an end-block hook."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fedledger.abci_app.context import BlockContext, Event, Reader, TxResult, ValidatorUpdate, Writer
from fedledger.abci_app.listing import ListingRule

__all__ = ["Handler", "Module", "QueryAnswer", "RawEnvelope", "Route"]

# A handler checks against `view` and, when `state` is given, executes into it (check, then write).
Handler = Callable[[Reader, Writer | None, BlockContext, str, Any], list[Event]]


class QueryAnswer:
    """A query's JSON answer and, for single-record answers, the store key it came from (for proofs)."""

    def __init__(self, value: Any, key: bytes | None) -> None:
        self.value = value
        self.key = key


@dataclass(frozen=True)
class Route:
    """One tx type: its stateless body parser and its handler."""

    parse: Callable[[dict[str, Any]], object]
    handle: Handler


@dataclass(frozen=True)
class RawEnvelope:
    """A second kind of tx bytes, told apart by a prefix, that a module authenticates and executes itself.

    stateless(view, raw): the checks a proposal's txs must pass (view: committed state, for
    constants fixed at genesis); raises TxError.
    check(view, ctx, raw, pending, recheck): CheckTx against committed state; `pending` maps
    mempool keys to the last nonce admitted to the mempool; returns (mempool key, nonce).
    deliver(state, ctx, raw): FinalizeBlock; raises TxError with nothing written.
    budget(view, raw): optional; (what the tx uses of a per-block budget, the budget), e.g. EVM gas,
    so that PrepareProposal leaves for the next block what would not fit in this one.
    """

    prefix: bytes
    stateless: Callable[[Reader, bytes], None]
    check: Callable[[Reader, BlockContext, bytes, Mapping[str, int], bool], tuple[str, int]]
    deliver: Callable[[Writer, BlockContext, bytes], TxResult]
    budget: Callable[[Reader, bytes], tuple[int, int]] | None = None


def _no_genesis(state: Writer, section: Mapping[str, Any]) -> None:
    if section:
        raise ValueError(f"this module takes no genesis section, got keys {sorted(section)}")


def _no_end_block(state: Writer, ctx: BlockContext) -> list[Event]:
    return []


@dataclass(frozen=True)
class Module:
    """A module of the state machine. Its name is its genesis section and its query namespace owner."""

    name: str
    routes: Mapping[str, Route] = field(default_factory=dict)
    # query kind (first path segment) -> answer(view, args)
    queries: Mapping[str, Callable[[Reader, list[str]], QueryAnswer]] = field(default_factory=dict)
    init_genesis: Callable[[Writer, Mapping[str, Any]], None] = _no_genesis
    end_block: Callable[[Writer, BlockContext], list[Event]] = _no_end_block
    # A module may accept a tx kind of its own, outside the canonical JSON envelope (the EVM's txs).
    envelope: RawEnvelope | None = None
    # How the prefixes its queries list are proven complete (see abci_app/listing.py, query_proofs.py).
    listings: tuple[ListingRule, ...] = ()
    # A module that keeps the validator set: InitChain's validators go to init_validators (after every
    # module's genesis), and FinalizeBlock emits what validator_updates returns (after every end_block).
    init_validators: Callable[[Writer, Sequence[ValidatorUpdate]], None] | None = None
    validator_updates: Callable[[Writer], list[ValidatorUpdate]] | None = None
