"""The one indexed event type every FedLedger tx emits, `fl`: a neutral builder each module uses for its own events.

Subscribers filter on `fl.action`, `fl.task`, ... whatever module emitted the event, so the type
and the attribute order (action, signer, then the rest sorted) are shared; what each event says is
built by the module that emits it.
"""

from __future__ import annotations

from fedledger.abci_app.context import Event

__all__ = ["EVENT_TYPE", "fl_event"]

EVENT_TYPE = "fl"


def fl_event(action: str, signer: str, **attrs: str | int) -> Event:
    """An `fl` event: action and signer first, then the given attributes in sorted order."""
    pairs = [("action", action), ("signer", signer)]
    pairs += [(k, str(v)) for k, v in sorted(attrs.items())]
    return Event(type=EVENT_TYPE, attributes=tuple(pairs))
