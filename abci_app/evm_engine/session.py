"""One run of the EVM over FedLedger state: transactions, message calls and deployments, flushed on demand.

A session opens py-evm's state at the root stored under `evm/root`, executes, and keeps every
new trie node in memory. `commit(state)` persists the tries, writes the new nodes and the new
root into a FedLedger Writer and returns the root; a session that is never committed (CheckTx,
queries, eth_call) leaves no trace.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from eth._utils.address import generate_contract_address
from eth.abc import ComputationAPI, SignedTransactionAPI, TransactionContextAPI
from eth.constants import BLANK_ROOT_HASH, CREATE_CONTRACT_ADDRESS
from eth.db.atomic import AtomicDB
from eth.exceptions import OutOfGas, PyEVMError, Revert
from eth.vm.message import Message
from eth_typing import Address, Hash32
from eth_utils.exceptions import ValidationError

from fedledger.abci_app.context import Reader, Writer
from fedledger.abci_app.errors import ChainRejectedError
from fedledger.abci_app.evm_engine.abi import revert_reason
from fedledger.abci_app.evm_engine.depth import evm_recursion
from fedledger.abci_app.evm_engine.ethtx import EthTx
from fedledger.abci_app.evm_engine.keys import ROOT_KEY
from fedledger.abci_app.evm_engine.statedb import StoreBackend
from fedledger.abci_app.evm_engine.vm import STATE_CLASS, VM_CLASS, EvmBlock, execution_context

__all__ = ["EvmSession", "LogEntry", "Outcome", "TxRejected", "state_root"]


class TxRejected(ChainRejectedError, ValueError):
    """The EVM refused a tx before executing it (nonce, intrinsic gas, fees, balance): nothing changed."""

    error_code = "EVM_TX_REJECTED"


@dataclass(frozen=True)
class LogEntry:
    """One EVM log: the emitting contract, up to four 32-byte topics and the data."""

    address: bytes
    topics: tuple[bytes, ...]
    data: bytes


@dataclass(frozen=True)
class Outcome:
    """What an execution did. `error` is "" on success, else why it failed (revert reason, out of gas…)."""

    success: bool
    gas_used: int
    output: bytes
    logs: tuple[LogEntry, ...]
    error: str = ""
    contract_address: bytes | None = None


def state_root(view: Reader) -> bytes:
    """The EVM state root stored in `view` (the empty trie's root before the EVM was set up)."""
    return view.get(ROOT_KEY) or BLANK_ROOT_HASH


def _error_text(computation: ComputationAPI) -> str:
    if computation.is_success:
        return ""
    err = computation.error
    if isinstance(err, Revert):
        return f"reverted: {revert_reason(bytes(computation.output))}"
    if isinstance(err, OutOfGas):
        return "out of gas"
    return f"{type(err).__name__}: {str(err)[:200]}"


def _logs(computation: ComputationAPI) -> tuple[LogEntry, ...]:
    return tuple(LogEntry(address=bytes(address), topics=tuple(t.to_bytes(32, "big") for t in topics),
                          data=bytes(data))
                 for address, topics, data in computation.get_log_entries())


class EvmSession:
    """py-evm's state at the stored root, for one block context; nothing is written until commit()."""

    def __init__(self, view: Reader, block: EvmBlock) -> None:
        self.block = block
        # Set when an execution was cut short mid-way (RecursionError): its state is not to be committed.
        self.broken = False
        self._backend = StoreBackend(view)
        self.state = STATE_CLASS(AtomicDB(self._backend), execution_context(block), Hash32(state_root(view)))

    # ----- transactions -----
    def validate(self, tx: SignedTransactionAPI) -> None:
        """The EVM's own pre-execution checks (nonce, intrinsic gas, fees, balance, init code); TxRejected."""
        try:
            self.state.validate_transaction(tx)
        except (ValidationError, PyEVMError) as exc:
            raise TxRejected(str(exc)) from exc

    def apply(self, etx: EthTx) -> Outcome:
        """Execute a signed tx: validated first (TxRejected, state untouched), then run; a revert still counts."""
        return self.execute(etx.tx, etx.sender)

    def execute(self, tx: SignedTransactionAPI, sender: bytes) -> Outcome:
        """Validate and run a tx (signed, or a SpoofTransaction naming `sender` for eth_call); TxRejected if refused."""
        return self._deep(lambda: self._execute(tx, sender))

    def call(self, sender: bytes, to: bytes, data: bytes, gas: int) -> Outcome:
        """A message call from `sender` with `gas`, outside any tx: no nonce, no intrinsic gas, no fees.

        A revert or an exceptional halt undoes the call's own changes (the EVM's snapshot), and the
        outcome says why.
        """
        return self._deep(lambda: self._call(sender, to, data, gas))

    def create(self, sender: bytes, init_code: bytes, gas: int) -> Outcome:
        """Deploy `init_code` from `sender` (its nonce picks the address, as CREATE does) outside any tx."""
        return self._deep(lambda: self._create(sender, init_code, gas))

    def _deep(self, fn: Callable[[], Outcome]) -> Outcome:
        # Running and summing up (gas refunds, logs) both walk the tree of nested calls recursively.
        try:
            with evm_recursion():
                return fn()
        except RecursionError as exc:
            self.broken = True
            raise TxRejected("the execution nested deeper than the interpreter allows") from exc

    def _execute(self, tx: SignedTransactionAPI, sender: bytes) -> Outcome:
        # Each execution starts cold (EIP-2929 access sets reset), as every tx of a block does.
        self.state.lock_changes()
        nonce = self.state.get_nonce(Address(sender))
        try:
            computation = self.state.apply_transaction(tx)
        except (ValidationError, PyEVMError) as exc:
            raise TxRejected(str(exc)) from exc
        gas_used = VM_CLASS.finalize_gas_used(tx, computation)
        created = None
        if tx.to == CREATE_CONTRACT_ADDRESS and computation.is_success:
            created = bytes(generate_contract_address(Address(sender), nonce))
        return Outcome(success=computation.is_success, gas_used=gas_used, output=bytes(computation.output),
                       logs=_logs(computation) if computation.is_success else (), error=_error_text(computation),
                       contract_address=created)

    def _context(self, origin: bytes) -> TransactionContextAPI:
        return self.state.get_transaction_context_class()(gas_price=0, origin=Address(origin))

    def _call(self, sender: bytes, to: bytes, data: bytes, gas: int) -> Outcome:
        self.state.lock_changes()
        target = Address(to)
        message = Message(gas=gas, to=target, sender=Address(sender), value=0, data=data,
                          code=self.state.get_code(target), code_address=target)
        computation = self.state.computation_class.apply_message(self.state, message, self._context(sender))
        return Outcome(success=computation.is_success, gas_used=gas - computation.get_gas_remaining(),
                       output=bytes(computation.output), logs=_logs(computation) if computation.is_success else (),
                       error=_error_text(computation))

    def _create(self, sender: bytes, init_code: bytes, gas: int) -> Outcome:
        self.state.lock_changes()
        deployer = Address(sender)
        nonce = self.state.get_nonce(deployer)
        address = generate_contract_address(deployer, nonce)
        self.state.increment_nonce(deployer)
        message = Message(gas=gas, to=CREATE_CONTRACT_ADDRESS, sender=deployer, value=0, data=b"", code=init_code,
                          create_address=address)
        computation = self.state.computation_class.apply_create_message(self.state, message, self._context(sender))
        return Outcome(success=computation.is_success, gas_used=gas - computation.get_gas_remaining(),
                       output=b"", logs=_logs(computation) if computation.is_success else (),
                       error=_error_text(computation),
                       contract_address=bytes(address) if computation.is_success else None)

    # ----- persistence -----
    def root(self) -> bytes:
        """The state root the session's changes lead to (tries are hashed, nothing is written)."""
        return bytes(self.state.make_state_root())

    def commit(self, state: Writer) -> bytes:
        """Persist the changes into `state`: new trie nodes and code under evm/node/, the root under evm/root."""
        if self.broken:
            raise RuntimeError("an execution of this session was cut short; its state cannot be committed")
        self.state.persist()
        root = bytes(self.state.state_root)
        self._backend.flush(state)
        state.set(ROOT_KEY, root)
        return root
