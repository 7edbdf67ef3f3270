"""The model a node serves right now, swapped atomically, and whether the chain still vouches for it (staleness)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fedledger.node.inference.runtime import LoadedModel

__all__ = ["ModelHolder", "ServedModel"]


@dataclass(frozen=True)
class ServedModel:
    """A loaded model with the version label responses report and free-form metadata (e.g. its CID on chain)."""

    model: LoadedModel
    version: str
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, model: LoadedModel, metadata: Mapping[str, Any] | None = None) -> ServedModel:
        """Serve `model` under its own version label."""
        return cls(model, model.version, dict(metadata or {}))


@dataclass(frozen=True)
class _Freshness:
    stale: bool
    reason: str


class ModelHolder:
    """The served model and the serving state, shared by the HTTP server, the batcher and the chain follower.

    Readers take `current` once and keep that snapshot for the whole request or batch, so a swap from
    another thread takes effect for the next batch while in-flight ones finish on the old model.
    Each piece of state is one immutable object replaced by a single assignment, so a reader never
    sees a model with another model's version label, or a stale flag with another state's reason.
    """

    def __init__(self, initial: ServedModel | LoadedModel | None = None) -> None:
        self._lock = threading.Lock()
        self._current: ServedModel | None = None
        self._freshness = _Freshness(False, "")
        self._swaps = 0
        if initial is not None:
            self.swap(initial)

    @property
    def current(self) -> ServedModel | None:
        """The served model, or None before the first one is loaded."""
        return self._current

    @property
    def ready(self) -> bool:
        """Whether a model is loaded (OIP's readiness)."""
        return self._current is not None

    @property
    def swaps(self) -> int:
        """How many times a model was put in place (the first load counts)."""
        return self._swaps

    def swap(self, new: ServedModel | LoadedModel) -> ServedModel | None:
        """Serve `new` from the next batch on; returns the model it replaces (None on the first load)."""
        served = new if isinstance(new, ServedModel) else ServedModel.of(new)
        with self._lock:
            previous, self._current = self._current, served
            self._swaps += 1
        return previous

    def unload(self) -> ServedModel | None:
        """Serve nothing (not ready, infer answers 503) from the next batch on; returns the model it took away."""
        with self._lock:
            previous, self._current = self._current, None
        return previous

    @property
    def stale(self) -> bool:
        """True while the chain cannot be reached, so the served version may no longer be the promoted one."""
        return self._freshness.stale

    @property
    def stale_reason(self) -> str:
        """Why the node is stale ("" while fresh)."""
        return self._freshness.reason

    def freshness(self) -> tuple[bool, str]:
        """(stale, reason) read together, as one consistent pair."""
        state = self._freshness
        return state.stale, state.reason

    def mark_stale(self, reason: str) -> None:
        """Flag every response from now on as possibly stale, saying why (e.g. "chain unreachable since ...")."""
        self._freshness = _Freshness(True, reason or "stale")

    def mark_fresh(self) -> None:
        """The chain answered again and vouches for the served version."""
        self._freshness = _Freshness(False, "")
