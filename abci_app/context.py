"""What consensus code may know about the block it runs in, and the event and result types it emits."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["BlockContext", "Event", "Reader", "TxResult", "ValidatorUpdate", "Writer"]


@dataclass(frozen=True)
class BlockContext:
    """Block facts agreed by consensus. Handlers read time and randomness only from here."""

    height: int
    time_ns: int  # the block header's time, never the wall clock
    block_hash: bytes  # the only source of randomness (round seeds, selection)
    chain_id: str


@dataclass(frozen=True)
class Event:
    """A typed, indexed ABCI event; attributes keep their order so validators emit identical bytes."""

    type: str
    attributes: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ValidatorUpdate:
    """A change CometBFT applies to its validator set: an Ed25519 key (32 raw bytes) and its new power (0 removes)."""

    pub_key: bytes
    power: int


@dataclass
class TxResult:
    """Outcome of one tx: code 0 on success, otherwise a registered error code and a log."""

    code: int = 0
    log: str = ""
    data: bytes = b""
    events: list[Event] = field(default_factory=list)
    codespace: str = ""


class Reader(Protocol):
    """Read access to state (committed or working)."""

    def get(self, key: bytes) -> bytes | None:
        """The value at key, or None."""
        ...

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Key/value pairs under prefix, sorted by key."""
        ...


class Writer(Reader, Protocol):
    """Read and write access to a working copy of state."""

    def set(self, key: bytes, value: bytes) -> None:
        """Write key."""
        ...

    def delete(self, key: bytes) -> None:
        """Remove key."""
        ...
