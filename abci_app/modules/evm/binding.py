"""The bind_evm_address tx and the permission check of EVM senders: bound to an enrolled, active DID."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fedledger.abci_app.context import BlockContext, Event, Reader, Writer
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.evm_engine import keys
from fedledger.abci_app.evm_engine.binding import (
    ADDRESS_RE,
    BindingSignatureError,
    binding_message,
    normalize_address,
    recover_signer,
)
from fedledger.abci_app.modules.fields import require_fields
from fedledger.abci_app.modules.identity.keeper import find_member, require_member
from fedledger.abci_app.modules.identity.records import MemberRecord

__all__ = ["BindEvmAddress", "bind_evm_address", "bound_member", "require_bound_member"]

_SIG_RE_LEN = 2 + 130


@dataclass(frozen=True)
class BindEvmAddress:
    """Bind an Ethereum address to the signer's DID; `signature` is the address's personal_sign of the binding."""

    address: str  # 0x + 40 lower-case hex
    signature: bytes  # 65 bytes

    @staticmethod
    def parse(body: dict[str, Any]) -> BindEvmAddress:
        """Validate a bind_evm_address body."""
        require_fields(body, {"address", "signature"})
        address, signature = body["address"], body["signature"]
        if not isinstance(address, str) or not ADDRESS_RE.match(address):
            raise TxError(Code.INVALID_BODY, "address must be a 20-byte hex address (0x + 40 hex digits)")
        if not isinstance(signature, str) or len(signature) != _SIG_RE_LEN or not signature.startswith("0x"):
            raise TxError(Code.INVALID_BODY, "signature must be a 65-byte personal_sign signature (0x + 130 hex)")
        try:
            sig = bytes.fromhex(signature[2:])
        except ValueError as exc:
            raise TxError(Code.INVALID_BODY, "signature must be hex") from exc
        return BindEvmAddress(address=normalize_address(address), signature=sig)


def bind_evm_address(view: Reader, state: Writer | None, ctx: BlockContext, signer: str,
                     msg: BindEvmAddress) -> list[Event]:
    """Bind msg.address to the signer's DID, replacing an address the DID bound before."""
    member = require_member(view, signer, ctx, action="bind an EVM address")
    did = member["did"]
    try:
        recovered = recover_signer(binding_message(ctx.chain_id, did, msg.address), msg.signature)
    except BindingSignatureError as exc:
        raise TxError(Code.EVM_BINDING, f"binding signature invalid: {exc}") from exc
    address = bytes.fromhex(msg.address[2:])
    if recovered != address:
        raise TxError(Code.EVM_BINDING, f"the binding is signed by 0x{recovered.hex()}, not by {msg.address}: sign "
                                        "the binding message with the address's own key")
    holder = view.get(keys.address_binding_key(address))
    if holder is not None:
        raise TxError(Code.EVM_BINDING, f"{msg.address} is already bound to {holder.decode('ascii')}")
    previous = view.get(keys.did_binding_key(did))
    if state is not None:
        if previous is not None:
            state.delete(keys.address_binding_key(bytes.fromhex(previous.decode("ascii")[2:])))
        state.set(keys.address_binding_key(address), did.encode("ascii"))
        state.set(keys.did_binding_key(did), msg.address.encode("ascii"))
    attrs: tuple[tuple[str, str], ...] = (("action", "bind_evm_address"), ("signer", signer), ("did", did),
                                          ("address", msg.address),
                                          ("replaced", previous.decode("ascii") if previous is not None else ""))
    return [Event(type="evm", attributes=attrs)]


def bound_member(view: Reader, address: bytes, ctx: BlockContext) -> MemberRecord | None:
    """The member an address is bound to, if the binding is current and the member active and valid at ctx."""
    did = view.get(keys.address_binding_key(address))
    if did is None:
        return None
    member = find_member(view, did.decode("ascii"))
    if member is None or member["status"] != "active":
        return None
    if ctx.time_ns > 0 and ctx.time_ns // 1_000_000_000 >= member["valid_until"]:
        return None
    return member


def require_bound_member(view: Reader, address: bytes, ctx: BlockContext) -> MemberRecord:
    """bound_member, or EVM_UNBOUND_SENDER saying what to do."""
    member = bound_member(view, address, ctx)
    if member is None:
        raise TxError(Code.EVM_UNBOUND_SENDER, f"EVM sender 0x{address.hex()} is not bound to an enrolled member "
                                               "with a valid credential: bind it with `fedledger evm bind` "
                                               "(a bind_evm_address tx signed by both keys)")
    return member
