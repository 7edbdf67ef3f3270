"""The public chain as anchoring sees it: checked before anything is signed, and where the contract is deployed.

Every check raises one clear error and nothing is sent:
* the RPC does not answer (PublicChainUnavailable, after retries);
* it serves another chain id than the configuration expects;
* there is no code at the contract address, or not this build's CheckpointAnchor;
* the contract belongs to another key (only its deployer may anchor);
* the key cannot pay for the tx (checked by TxSender against the estimated gas and fee cap).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fedledger.node.anchor.config import AnchorConfig
from fedledger.node.anchor.contract import load_artifact, owner_calldata
from fedledger.node.anchor.errors import AnchorConfigError, PublicChainError
from fedledger.node.anchor.eth import EthClient, EthRPCError, Web3Eth
from fedledger.node.anchor.sender import SendPolicy, TxSender

__all__ = ["Deployed", "PublicChain"]


@dataclass(frozen=True)
class Deployed:
    """A deployed CheckpointAnchor."""

    address: str
    tx_hash: str
    block_number: int
    gas_used: int
    chain_id: int


class PublicChain:
    """One public chain, one key, one contract: the checks, a sender, deployment."""

    def __init__(self, cfg: AnchorConfig, eth: EthClient | None = None) -> None:
        self.cfg = cfg
        self.eth: EthClient = eth if eth is not None else Web3Eth(cfg.rpc_url, attempts=cfg.rpc_attempts)
        self._chain_id: int | None = None

    def chain_id(self) -> int:
        """The chain id the RPC serves, checked against the configured one (once per instance)."""
        if self._chain_id is None:
            actual = self.eth.chain_id()
            if self.cfg.chain_id is not None and actual != self.cfg.chain_id:
                raise PublicChainError(
                    f"the RPC at {self.cfg.rpc_url} serves chain id {actual}, but the configuration "
                    f"({self.cfg.source}) expects {self.cfg.chain_id}; nothing was sent")
            self._chain_id = actual
        return self._chain_id

    def sender(self, on_sent: Callable[[str, int], None] | None = None) -> TxSender:
        """A TxSender for the configured key on this chain."""
        policy = SendPolicy(confirmations=self.cfg.confirmations, stuck_after_s=self.cfg.stuck_after_s,
                            confirm_timeout_s=self.cfg.confirm_timeout_s, poll_s=self.cfg.poll_s,
                            priority_fee_wei=self.cfg.priority_fee_wei, max_fee_wei=self.cfg.max_fee_wei)
        return TxSender(self.eth, self.cfg.key, self.chain_id(), policy, on_sent=on_sent)

    def contract(self) -> str:
        """The configured contract address, checked: this build's CheckpointAnchor, owned by the configured key."""
        address = self.cfg.contract
        if address is None:
            raise AnchorConfigError("no anchor contract is configured: deploy one with `fedledger anchor deploy` or "
                                    "set FEDLEDGER_ANCHOR_CONTRACT")
        chain = self.chain_id()
        code = self.eth.code(address)
        if not code:
            raise PublicChainError(f"there is no contract at {address} on chain {chain}: deploy one with "
                                   "`fedledger anchor deploy` (or fix FEDLEDGER_ANCHOR_CONTRACT); nothing was sent")
        if not load_artifact().runtime_matches(code):
            raise PublicChainError(f"the code at {address} on chain {chain} is not this build's CheckpointAnchor; "
                                   "nothing was sent")
        try:
            raw = self.eth.call({"to": address, "data": "0x" + owner_calldata().hex()})
        except EthRPCError as exc:
            raise PublicChainError(f"cannot read the owner of {address}: {exc.message}") from exc
        owner = "0x" + raw[-20:].hex()
        me = self.sender().address
        if owner.lower() != me.lower():
            raise PublicChainError(f"contract {address} anchors only for its owner {owner}, and the configured key is "
                                   f"{me}; use the deploying key or deploy your own contract")
        return address

    def deploy(self) -> Deployed:
        """Deploy CheckpointAnchor from the configured key and wait for its confirmations."""
        artifact = load_artifact()
        sender = self.sender()
        done = sender.send(None, artifact.bytecode)
        address = done.receipt.contract_address
        if address is None:
            raise PublicChainError(f"deployment tx {done.receipt.tx_hash} created no contract")
        if not artifact.runtime_matches(self.eth.code(address)):
            raise PublicChainError(f"the code deployed at {address} is not the artifact's runtime code")
        return Deployed(address=address, tx_hash=done.receipt.tx_hash, block_number=done.receipt.block_number,
                        gas_used=done.receipt.gas_used, chain_id=self.chain_id())
