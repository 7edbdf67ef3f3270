"""Sign, broadcast and confirm FedLedger txs, keeping track of the signer's nonce."""

from __future__ import annotations

import json
import time
from typing import Any

from fedledger.abci_app.errors import Code
from fedledger.abci_app.tx import sign_tx, tx_hash
from fedledger.sdk.errors import TxRejectedError, TxTimeoutError
from fedledger.sdk.keys import Key
from fedledger.sdk.rpc import CometRPC

__all__ = ["Submitter", "TxOutcome"]


class TxOutcome:
    """A tx that made it into a block successfully: its hash, height and events."""

    def __init__(self, hash_: str, height: int, events: list[dict[str, Any]]) -> None:
        self.hash = hash_
        self.height = height
        self.events = events

    def attr(self, event_type: str, key: str) -> str | None:
        """First value of an event attribute, e.g. attr('fl', 'version')."""
        for ev in self.events:
            if ev.get("type") == event_type:
                for a in ev.get("attributes", []):
                    if a.get("key") == key:
                        return str(a.get("value"))
        return None


class Submitter:
    """Sends txs for one key: nonce from the chain, broadcast_tx_sync, then wait for the block."""

    def __init__(self, rpc: CometRPC, key: Key, chain_id: str | None = None) -> None:
        self.rpc = rpc
        self.key = key
        self.chain_id = chain_id or str(rpc.status()["node_info"]["network"])
        self._next_nonce: int | None = None

    def refresh_nonce(self) -> int:
        """Read the signer's last used nonce from committed state."""
        res = self.rpc.abci_query(f"/nonce/{self.key.public_hex}")
        self._next_nonce = int(json.loads(res.value)["last_nonce"]) + 1
        return self._next_nonce

    def broadcast(self, tx_type: str, body: dict[str, Any]) -> str:
        """Sign and submit; return the tx hash once CheckTx accepted it. Retries once on a stale nonce."""
        for attempt in range(2):
            nonce = self._next_nonce if self._next_nonce is not None else self.refresh_nonce()
            raw = sign_tx(self.key.private, tx_type, body, self.chain_id, nonce)
            res = self.rpc.broadcast_tx_sync(raw)
            code = int(res.get("code", 0))
            if code == 0:
                self._next_nonce = nonce + 1
                return tx_hash(raw)
            if code in (Code.NONCE_REPLAY, Code.NONCE_GAP) and attempt == 0:
                self._next_nonce = None
                time.sleep(0.3)  # an earlier tx of ours may still be in a block being committed
                continue
            raise TxRejectedError("CheckTx", code, res.get("log", ""))
        raise AssertionError("unreachable")

    def wait(self, hash_: str, timeout: float = 30.0) -> TxOutcome:
        """Wait until the tx is in a committed block; raise if it failed there."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            res = self.rpc.tx(hash_)
            if res is not None:
                result = res["tx_result"]
                code = int(result.get("code", 0))
                if code != 0:
                    raise TxRejectedError("FinalizeBlock", code, result.get("log", ""))
                return TxOutcome(hash_, int(res["height"]), result.get("events") or [])
            time.sleep(0.1)
        raise TxTimeoutError(f"tx {hash_[:16]}… was not committed within {timeout:.0f}s; "
                             f"check `fedledger localnet status`")

    def send(self, tx_type: str, body: dict[str, Any], timeout: float = 30.0) -> TxOutcome:
        """broadcast + wait; the latency (or the refusal) goes to fedledger_tx_latency_seconds (sdk/metrics.py)."""
        from fedledger.sdk.metrics import observe_tx

        started = time.monotonic()
        try:
            outcome = self.wait(self.broadcast(tx_type, body), timeout)
        except TxRejectedError as exc:
            observe_tx(tx_type, started, exc.code)
            raise
        except TxTimeoutError:
            observe_tx(tx_type, started, None)
            raise
        observe_tx(tx_type, started, 0)
        return outcome
