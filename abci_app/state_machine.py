"""The deterministic FedLedger state machine, independent of the ABCI wire format.

Each tx goes through three phases: stateless (`decode_tx` plus body schema), stateful check
against a read-only view, and execution into the block's working state. Handlers raise before
they write, so a rejected tx leaves no trace except its consumed nonce.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from fedledger.abci_app.canonical import parse_canonical
from fedledger.abci_app.context import BlockContext, Event, Reader, TxResult, ValidatorUpdate, Writer
from fedledger.abci_app.errors import CODESPACE, Code, TxError
from fedledger.abci_app.modules.auth.nonces import check_nonce, last_nonce, set_nonce
from fedledger.abci_app.modules.base import Module, QueryAnswer, RawEnvelope, Route
from fedledger.abci_app.modules.registry import DEFAULT_MODULES
from fedledger.abci_app.query_proofs import RecordingView, answer_query
from fedledger.abci_app.store.proof import RecordProof
from fedledger.abci_app.tx import Tx, decode_tx

__all__ = ["QueryResult", "StateMachine", "Store", "WorkingStore"]

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
    """Answer to a query: JSON value bytes; for single records the key; with prove, the record proofs.

    `proofs` proves every record the answer was derived from (one ABCI ProofOp each); `proof` is
    the bare encoded Proof of `key` alone, for callers that check a single-record answer directly.
    """

    code: int = 0
    log: str = ""
    key: bytes = b""
    value: bytes = b""
    proof: bytes = b""
    height: int = 0
    codespace: str = ""
    proofs: tuple[RecordProof, ...] = ()


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
        # Tx kinds outside the canonical JSON envelope (EVM txs), each told apart by its prefix.
        self.envelopes: tuple[RawEnvelope, ...] = tuple(m.envelope for m in self.modules if m.envelope is not None)
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
        self.validator_updates: list[ValidatorUpdate] = []  # validator set changes of the last finalized block
        self._last_time_ns = 0  # header time of the last finalized block (CheckTx's notion of "now")

    # ----- lifecycle -----
    @property
    def height(self) -> int:
        """Last committed height."""
        return self.store.height

    @property
    def app_hash(self) -> bytes:
        """Last committed app hash."""
        return self.store.app_hash

    def init_chain(self, chain_id: str, app_state: bytes, validators: Sequence[ValidatorUpdate] = ()) -> bytes:
        """Set up genesis state (committed together with the first block) and return its root.

        app_state is a JSON object with one section per module name; a section for no module is
        refused, so a typo in genesis halts the chain at height 0 instead of being ignored.
        `validators` are InitChain's genesis validators, recorded by the module that keeps the set.
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
        for module in self.modules:
            if module.init_validators is not None:
                module.init_validators(working, validators)
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

    def _envelope(self, raw: bytes) -> RawEnvelope | None:
        for envelope in self.envelopes:
            if raw.startswith(envelope.prefix):
                return envelope
        return None

    def _check_envelope(self, envelope: RawEnvelope, raw: bytes, recheck: bool) -> TxResult:
        ctx = BlockContext(height=self.store.height + 1, time_ns=self._last_time_ns, block_hash=b"",
                           chain_id=self._require_chain())
        try:
            key, nonce = envelope.check(self.store, ctx, raw, self._mempool_nonces, recheck)
        except TxError as exc:
            return _error(exc)
        self._mempool_nonces[key] = nonce
        return TxResult(code=0)

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
        envelope = self._envelope(raw)
        if envelope is not None:
            return self._check_envelope(envelope, raw, recheck)
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
            # The next block's time is not known yet: the last finalized block's time is the best
            # lower bound (credential windows and expiries are checked against it; 0 right after a
            # restart, until the first block, when FinalizeBlock still checks them exactly).
            ctx = BlockContext(height=self.store.height + 1, time_ns=self._last_time_ns, block_hash=b"",
                               chain_id=self._require_chain())
            route.handle(self.store, None, ctx, tx.signer, msg)
        except TxError as exc:
            return _error(exc)
        self._mempool_nonces[tx.signer] = tx.nonce
        return TxResult(code=0)

    def valid_for_proposal(self, raw: bytes) -> bool:
        """Whether a tx may appear in a block at all: stateless checks only, identical on all validators."""
        envelope = self._envelope(raw)
        try:
            if envelope is not None:
                envelope.stateless(self.store, raw)
                return True
            self._decode(raw)
        except TxError:
            return False
        return True

    def fits_proposal(self, raw: bytes, used: dict[bytes, int]) -> bool:
        """Whether a valid tx still fits its kind's per-block budget (EVM gas) in the proposal being built.

        `used` is the proposal's running tally per envelope prefix, updated here. Once a tx of a
        kind does not fit, no later tx of that kind is proposed either, so one sender's txs never
        get in out of nonce order; they wait in the mempool for the next block.
        """
        envelope = self._envelope(raw)
        if envelope is None or envelope.budget is None:
            return True
        spent = used.get(envelope.prefix, 0)
        if spent < 0:
            return False
        try:
            cost, limit = envelope.budget(self.store, raw)
        except TxError:
            return False
        if spent + cost > limit:
            used[envelope.prefix] = -1
            return False
        used[envelope.prefix] = spent + cost
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
        updates: list[ValidatorUpdate] = []
        for module in self.modules:  # after every end_block, so a proposal passed in this block is included
            if module.validator_updates is not None:
                updates += module.validator_updates(working)
        self.validator_updates = updates
        self._last_time_ns = ctx.time_ns
        self._pending = working
        self._pending_height = ctx.height
        return results, working.root()

    def _deliver(self, working: WorkingStore, ctx: BlockContext, raw: bytes) -> TxResult:
        envelope = self._envelope(raw)
        if envelope is not None:
            try:
                return envelope.deliver(working, ctx, raw)
            except TxError as exc:
                return _error(exc)
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

    def after_restore(self) -> None:
        """Reload what the machine derives from state after state sync installed a snapshot.

        The chain id lives in state; nothing else in memory survives from before the restore (no
        pending block, no mempool nonces, no decode cache entries that could be stale).
        """
        stored = self.store.get(CHAIN_ID_KEY)
        if stored is not None:
            self.chain_id = stored.decode("ascii")
        self._pending = None
        self._pending_height = 0
        self._mempool_nonces.clear()
        self._decoded.clear()

    # ----- queries -----
    def query(self, path: str, data: bytes, prove: bool) -> QueryResult:
        """Answer a query from committed state; with `prove`, prove every record the answer was derived from.

        The answer is computed through a RecordingView, and `proofs` gets one RecordProof per store
        key it read (present or absent), so a client can re-derive the whole answer from proven
        records (see query_proofs.verify_answer). A not-found answer is proven the same way.
        """
        height = self.store.height
        view = RecordingView(self.store) if prove else None
        try:
            key, body = answer_query(self.queries, path, data, view if view is not None else self.store, prove)
        except TxError as exc:
            result = QueryResult(code=int(exc.code), log=exc.log, height=height, codespace=CODESPACE)
            if view is not None and exc.code == Code.QUERY_NOT_FOUND:
                result.proofs = self._prove_reads(view)
            return result
        result = QueryResult(key=key, value=body, height=height)
        if view is not None:
            result.proofs = self._prove_reads(view)
            if key:
                own = next((p.proof for p in result.proofs if p.key == key), None)
                result.proof = (own if own is not None else self.store.prove(key)[1]).encode()
        return result

    def _prove_reads(self, view: RecordingView) -> tuple[RecordProof, ...]:
        out = []
        for key in view.reads:
            value, proof = self.store.prove(key)
            out.append(RecordProof(value, proof))
        return tuple(out)


def parse_query_value(value: bytes) -> Any:
    """Decode a query answer's value bytes (canonical JSON)."""
    return parse_canonical(value)
