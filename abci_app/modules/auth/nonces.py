"""Per-signer nonces: the store keeps the last nonce each signer used; the next tx must use last + 1."""

from __future__ import annotations

from fedledger.abci_app.context import Reader, Writer
from fedledger.abci_app.errors import Code, TxError

__all__ = ["check_nonce", "last_nonce", "nonce_key", "set_nonce"]

_PREFIX = b"auth/nonce/"


def nonce_key(signer: str) -> bytes:
    """Store key of a signer's last used nonce."""
    return _PREFIX + signer.encode("ascii")


def last_nonce(view: Reader, signer: str) -> int:
    """Last nonce the signer used on chain (0 if it never sent a tx)."""
    raw = view.get(nonce_key(signer))
    return int(raw) if raw is not None else 0


def check_nonce(last: int, nonce: int) -> None:
    """Require nonce == last + 1: lower is a replay, higher is a gap; each has its own code."""
    if nonce <= last:
        raise TxError(Code.NONCE_REPLAY, f"nonce {nonce} already used (last used {last}); this is a replay")
    if nonce > last + 1:
        raise TxError(Code.NONCE_GAP, f"nonce {nonce} skips ahead: the next nonce for this signer is {last + 1}")


def set_nonce(state: Writer, signer: str, nonce: int) -> None:
    """Record that the signer used nonce."""
    state.set(nonce_key(signer), str(nonce).encode("ascii"))
