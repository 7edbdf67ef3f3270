"""The deterministic FedLedger state machine, independent of the ABCI wire format.

Each tx goes through three phases: stateless (`decode_tx` plus body schema), stateful check
against a read-only view, and execution into the block's working state. Handlers raise before
they write, so a rejected tx leaves no trace except its consumed nonce.
"""

from __future__ import annotations

import json
import logging
import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from fedledger.abci_app.canonical import CanonicalError, canonical_bytes, parse_canonical
from fedledger.abci_app.context import BlockContext, Event, Reader, TxResult, Writer
from fedledger.abci_app.errors import CODESPACE, Code, TxError
from fedledger.abci_app.modules.auth.nonces import check_nonce, last_nonce, set_nonce
from fedledger.abci_app.modules.base import Module, QueryAnswer, Route
from fedledger.abci_app.modules.registry import DEFAULT_MODULES
from fedledger.abci_app.tx import Tx, decode_tx

__all__ = ["QueryResult", "StateMachine", "Store", "WorkingStore"]

_SEG = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")

log = logging.getLogger(__name__)
CHAIN_ID_KEY = b"meta/chain_id"
_DECODE_CACHE = 50_000
# Mempool txs one signer may have waiting; beyond it CheckTx refuses (nobody floods the mempool).
MAX_PENDING = 32


class WorkingStore(Writer, Protocol):
    """A block's working copy: writes are pending until committed; root() is the would-be app hash."""

    def root(self) -> bytes:
        """App hash of the working state."""
        ...


class Store(Reader, Protocol):
    """The committed, Merkle-authenticated store."""

    @property
    def height(self) -> int:
        """Last committed height."""
        ...

    @property
    def app_hash(self) -> bytes:
        """Last committed app hash."""
        ...

    def working(self) -> Any:
        """A new working copy on top of committed state."""
        ...

    def commit(self, working: Any, height: int) -> bytes:
        """Persist a working copy atomically as the state at height."""
        ...

    def prove(self, key: bytes) -> tuple[bytes | None, Any]:
        """Committed value at key with its Merkle proof against app_hash."""
        ...


@dataclass
class QueryResult:
    """Answer to a query: JSON value bytes, and for single records the key and an encoded proof."""

    code: int = 0
    log: str = ""
    key: bytes = b""
    value: bytes = b""
    proof: bytes = b""
    height: int = 0
    codespace: str = ""


def _error(exc: TxError) -> TxResult:
    return TxResult(code=int(exc.code), log=exc.log, codespace=CODESPACE)


class StateMachine:
    """FedLedger's application logic: check, execute, commit and query."""

    def __init__(self, store: Store, chain_id: str | None = None,
                 modules: Sequence[Module] = DEFAULT_MODULES) -> None:
        self.store = store
        self.modules = tuple(modules)
        self.routes: dict[str, Route] = {}
        self.queries: dict[str, Callable[[Reader, list[str]], QueryAnswer]] = {}
        for module in self.modules:
            for table, items in ((self.routes, module.routes), (self.queries, module.queries)):
                for name, item in items.items():
                    if name in table:
                        raise RuntimeError(f"module {module.name} registers {name!r} twice")
                    table[name] = item  # type: ignore[assignment]
        stored = store.get(CHAIN_ID_KEY)
        self.chain_id: str | None = stored.decode("ascii") if stored is not None else chain_id
        if stored is not None and chain_id is not None and stored.decode("ascii") != chain_id:
            raise RuntimeError(f"store belongs to chain {stored.decode()!r}, not {chain_id!r}")
        self._pending: WorkingStore | None = None  # written by init_chain/finalize_block, saved by commit
        self._pending_height = 0
        self._mempool_nonces: dict[str, int] = {}  # last nonce per signer among txs admitted to the mempool
        # Signature checks dominate the cost of a tx and each tx is checked up to four times (CheckTx,
        # PrepareProposal, ProcessProposal, FinalizeBlock). Decoding is a pure function of the bytes,
        # so caching successful decodes cannot change any outcome.
        self._decoded: OrderedDict[bytes, Tx] = OrderedDict()
        self.block_events: list[Event] = []  # end-block events of the last finalized block

    # ----- lifecycle -----
    @property
    def height(self) -> int:
        """Last committed height."""
        return self.store.height

    @property
    def app_hash(self) -> bytes:
        """Last committed app hash."""
        return self.store.app_hash

    def init_chain(self, chain_id: str, app_state: bytes) -> bytes:
        """Set up genesis state (committed together with the first block) and return its root.

        app_state is a JSON object with one section per module name; a section for no module is
        refused, so a typo in genesis halts the chain at height 0 instead of being ignored.
        """
        if self.chain_id is not None and self.chain_id != chain_id:
            raise RuntimeError(f"app was started for chain {self.chain_id!r} but genesis says {chain_id!r}")
        self.chain_id = chain_id
        working: WorkingStore = self.store.working()
        working.set(CHAIN_ID_KEY, chain_id.encode("ascii"))
        sections: dict[str, Any] = {}
        if app_state.strip() not in (b"", b"null"):
            sections = json.loads(app_state)
            if not isinstance(sections, dict):
                raise RuntimeError("genesis app_state must be a JSON object with one section per module")
        known = {m.name for m in self.modules}
        unknown = sorted(set(sections) - known)
        if unknown:
            raise RuntimeError(f"genesis app_state has sections for no module: {unknown}; modules: {sorted(known)}")
        for module in self.modules:
            module.init_genesis(working, sections.get(module.name) or {})
        self._pending = working
        self._pending_height = 0
        return working.root()

    def _require_chain(self) -> str:
        if self.chain_id is None:
            raise RuntimeError("chain id unknown: InitChain has not run and --chain-id was not given")
        return self.chain_id

    # ----- mempool -----
    def _decode(self, raw: bytes) -> Tx:
        tx = self._decoded.get(raw)
        if tx is None:
            tx = decode_tx(raw, self._require_chain())
            self._decoded[raw] = tx
            if len(self._decoded) > _DECODE_CACHE:
                self._decoded.popitem(last=False)
        return tx

    def _authenticate(self, raw: bytes, view: Reader, pending: dict[str, int] | None) -> Tx:
        tx = self._decode(raw)
        last = last_nonce(view, tx.signer)
        if pending is not None:
            last = max(last, pending.get(tx.signer, 0))
        check_nonce(last, tx.nonce)
        return tx

    def _route(self, tx: Tx) -> tuple[Route, Any]:
        route = self.routes.get(tx.type)
        if route is None:
            raise TxError(Code.UNKNOWN_TYPE, f"unknown tx type {tx.type!r}; known: {sorted(self.routes)}")
        return route, route.parse(tx.body)

    def check_tx(self, raw: bytes, recheck: bool = False) -> TxResult:
        """Mempool admission: authentication, nonce order, body schema and a read-only state check.

        A recheck (CometBFT re-runs CheckTx on the whole mempool after every block) only re-checks
        the nonce: its job is to evict txs that a block made stale, and with a backlog of N txs
        a full check on every recheck costs O(N^2) over the backlog. FinalizeBlock re-validates
        everything anyway.
        """
        try:
            tx = self._authenticate(raw, self.store, self._mempool_nonces)
            # Per-signer rate limit: nonces are consecutive, so nonce - last committed nonce is how many
            # of this signer's txs would be waiting in the mempool with this one.
            if not recheck and tx.nonce - last_nonce(self.store, tx.signer) > MAX_PENDING:
                raise TxError(Code.RATE_LIMITED, f"signer already has {MAX_PENDING} txs waiting for a block; "
                                                 "wait for them to commit")
            if recheck:
                self._mempool_nonces[tx.signer] = tx.nonce
                return TxResult(code=0)
            route, msg = self._route(tx)
            ctx = BlockContext(height=self.store.height + 1, time_ns=0, block_hash=b"",
                               chain_id=self._require_chain())
            route.handle(self.store, None, ctx, tx.signer, msg)
        except TxError as exc:
            return _error(exc)
        self._mempool_nonces[tx.signer] = tx.nonce
        return TxResult(code=0)

    def valid_for_proposal(self, raw: bytes) -> bool:
        """Whether a tx may appear in a block at all: stateless checks only, identical on all validators."""
        try:
            self._decode(raw)
        except TxError:
            return False
        return True

    # ----- consensus -----
    def finalize_block(self, ctx: BlockContext, txs: list[bytes]) -> tuple[list[TxResult], bytes]:
        """Execute a decided block on a working copy; return per-tx results and the new app hash."""
        if ctx.height != self.store.height + 1:
            raise RuntimeError(f"finalize_block at height {ctx.height} but committed height is {self.store.height}")
        working: WorkingStore = (self._pending if self._pending is not None and self._pending_height == 0
                                 else self.store.working())
        results = [self._deliver(working, ctx, raw) for raw in txs]
        block_events: list[Event] = []
        for module in self.modules:  # fixed module order: every validator runs the same sequence
            block_events += module.end_block(working, ctx)
        self.block_events = block_events
        self._pending = working
        self._pending_height = ctx.height
        return results, working.root()

    def _deliver(self, working: WorkingStore, ctx: BlockContext, raw: bytes) -> TxResult:
        try:
            tx = self._authenticate(raw, working, None)
        except TxError as exc:
            return _error(exc)
        # Authenticated: the nonce is consumed whatever the outcome, so a failed tx can never be replayed.
        set_nonce(working, tx.signer, tx.nonce)
        try:
            route, msg = self._route(tx)
            events = route.handle(working, working, ctx, tx.signer, msg)
        except TxError as exc:
            return _error(exc)
        return TxResult(code=0, events=events)

    def commit(self) -> int:
        """Persist the finalized block atomically; reset the mempool's nonce view for rechecks."""
        if self._pending is None or self._pending_height != self.store.height + 1:
            raise RuntimeError("commit without a finalized block")
        self.store.commit(self._pending, self._pending_height)
        self._pending = None
        self._mempool_nonces.clear()
        return self.store.height

    # ----- queries -----
    def query(self, path: str, data: bytes, prove: bool) -> QueryResult:
        """Answer a query from committed state, with a Merkle proof for single-record answers."""
        height = self.store.height
        try:
            if path.startswith("/nonce/"):
                value: Any = {"signer": path[7:], "last_nonce": last_nonce(self.store, path[7:])}
                key: bytes | None = None
            elif path == "/key":
                raw = self.store.get(data)
                if raw is None and not prove:
                    raise TxError(Code.QUERY_NOT_FOUND, "key not found")
                return self._with_proof(QueryResult(key=data, value=raw or b"", height=height), data, prove)
            else:
                answer = self._query(path)
                value, key = answer.value, answer.key
            body = canonical_bytes(value)
        except TxError as exc:
            return QueryResult(code=int(exc.code), log=exc.log, height=height, codespace=CODESPACE)
        except CanonicalError as exc:
            return QueryResult(code=int(Code.BAD_QUERY), log=str(exc), height=height, codespace=CODESPACE)
        result = QueryResult(key=key or b"", value=body, height=height)
        return self._with_proof(result, key, prove) if key is not None else result

    def _query(self, path: str) -> QueryAnswer:
        parts = [p for p in path.split("/") if p]
        if not parts or not all(_SEG.match(p) for p in parts):
            raise TxError(Code.BAD_QUERY, f"malformed query path {path!r}")
        answer = self.queries.get(parts[0])
        if answer is None:
            kinds = ", ".join(f"/{k}" for k in sorted([*self.queries, "nonce", "key"]))
            raise TxError(Code.BAD_QUERY, f"unknown query {path!r}; known: {kinds}")
        return answer(self.store, parts[1:])

    def _with_proof(self, result: QueryResult, key: bytes, prove: bool) -> QueryResult:
        if prove:
            _, proof = self.store.prove(key)
            result.proof = proof.encode()
        return result


def parse_query_value(value: bytes) -> Any:
    """Decode a query answer's value bytes (canonical JSON)."""
    return parse_canonical(value)
