"""What a state-machine module provides: tx routes, queries, a genesis section and an end-block hook."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fedledger.abci_app.context import BlockContext, Event, Reader, Writer

__all__ = ["Handler", "Module", "QueryAnswer", "Route"]

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
