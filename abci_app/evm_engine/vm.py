"""Which EVM the chain runs (py-evm's Prague rules) and how a FedLedger block becomes its block context.

The EVM never sees the wall clock: TIMESTAMP is the block header's time in seconds, NUMBER the
block height, PREVRANDAO the CometBFT hash of the block being executed (the chain's only source
of randomness), COINBASE the zero address, BASEFEE 0 and BLOBBASEFEE the minimum. Fees are zero
on this permissioned chain (senders are admitted, not paying); gas is still metered and limited.
BLOCKHASH returns zero: block hashes of earlier blocks are not kept in the EVM's context.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from eth.vm.execution_context import ExecutionContext
from eth.vm.forks.prague import PragueVM
from eth.vm.forks.prague.state import PragueState
from eth_typing import Address, BlockNumber, Hash32

__all__ = ["COINBASE", "STATE_CLASS", "VM_CLASS", "EvmBlock", "FedLedgerState", "execution_context"]



class FedLedgerState(PragueState):
    """Prague's state rules, minus the look-ups of the beacon-roots and block-history system contracts.

    Those contracts serve block-level system calls of Ethereum's consensus, which this chain does
    not make; py-evm looks them up every time a state is opened (and installs nothing new).
    """

    def set_system_contracts(self) -> None:
        """Nothing to set up: no block-level system calls here."""


VM_CLASS = PragueVM
STATE_CLASS = FedLedgerState
COINBASE = Address(b"\x00" * 20)


@dataclass(frozen=True)
class EvmBlock:
    """The facts of a FedLedger block that the EVM can observe."""

    height: int
    time_s: int
    block_hash: bytes  # b"" where unknown (CheckTx, queries)
    gas_limit: int
    chain_id: int

    @property
    def prevrandao(self) -> bytes:
        """32 bytes for PREVRANDAO: the block hash (sha256 of it when it is not 32 bytes long)."""
        if len(self.block_hash) == 32:
            return self.block_hash
        return hashlib.sha256(b"fedledger-evm-prevrandao\n" + self.block_hash).digest()


def execution_context(block: EvmBlock) -> ExecutionContext:
    """py-evm's execution context for `block`."""
    return ExecutionContext(
        coinbase=COINBASE,
        timestamp=block.time_s,
        block_number=BlockNumber(block.height),
        difficulty=0,
        mix_hash=Hash32(block.prevrandao),
        gas_limit=block.gas_limit,
        prev_hashes=(),
        chain_id=block.chain_id,
        base_fee_per_gas=0,
        excess_blob_gas=0,
    )
