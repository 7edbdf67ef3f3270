"""Message bodies of the secagg tx types and their stateless validation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.federation.keeper import MAX_ROUND_SIZE, ModelRef
from fedledger.abci_app.modules.fields import HEX64, ID_RE, int_field, require_fields, str_field
from fedledger.abci_app.modules.secagg.records import ScreenClaims
from fedledger.abci_app.modules.secagg.screen import parse_claim

__all__ = ["Advance", "AdvertiseKeys", "DeclareSurvivors", "PARSERS", "PostPayload"]


def _task_round(body: dict[str, Any]) -> tuple[str, int]:
    return str_field(body, "task_id", ID_RE, "a task id"), int_field(body, "round", 1, 2**40)


@dataclass(frozen=True)
class AdvertiseKeys:
    """A selected participant's two X25519 public keys: c_pk encrypts shares, s_pk derives pairwise masks."""

    task_id: str
    round: int
    c_pk: str
    s_pk: str
    screen: ScreenClaims | None = None  # the input screen's claims (secagg/screen.py), on a screened task

    @staticmethod
    def parse(body: dict[str, Any]) -> AdvertiseKeys:
        """Validate a secagg_keys body (`screen` optional: the claims a screened task requires)."""
        require_fields(body, {"task_id", "round", "c_pk", "s_pk"}, {"screen"})
        c_pk = str_field(body, "c_pk", HEX64, "an X25519 public key (64 hex digits)")
        s_pk = str_field(body, "s_pk", HEX64, "an X25519 public key (64 hex digits)")
        if c_pk == s_pk:
            raise TxError(Code.INVALID_BODY, "c_pk and s_pk must be two different keys")
        claim = parse_claim(body["screen"]) if body.get("screen") is not None else None
        return AdvertiseKeys(*_task_round(body), c_pk=c_pk, s_pk=s_pk, screen=claim)


@dataclass(frozen=True)
class PostPayload:
    """A reference to an off-chain SecAgg payload (encrypted shares, or revealed shares)."""

    task_id: str
    round: int
    payload: ModelRef

    @staticmethod
    def parse(body: dict[str, Any]) -> PostPayload:
        """Validate a secagg_shares / secagg_unmask body."""
        require_fields(body, {"task_id", "round", "cid", "sha256", "size"})
        return PostPayload(*_task_round(body), payload=ModelRef.parse(body))


@dataclass(frozen=True)
class Advance:
    """Move a secure round from keys to shares, or from shares to input."""

    task_id: str
    round: int

    @staticmethod
    def parse(body: dict[str, Any]) -> Advance:
        """Validate a secagg_advance body."""
        require_fields(body, {"task_id", "round"})
        return Advance(*_task_round(body))


@dataclass(frozen=True)
class DeclareSurvivors:
    """The aggregator fixes the survivors: contributors whose masked inputs it could fetch and check."""

    task_id: str
    round: int
    survivors: tuple[str, ...]

    @staticmethod
    def parse(body: dict[str, Any]) -> DeclareSurvivors:
        """Validate a secagg_survivors body; survivors sorted and unique."""
        require_fields(body, {"task_id", "round", "survivors"})
        survivors = body["survivors"]
        if (not isinstance(survivors, list) or not 1 <= len(survivors) <= MAX_ROUND_SIZE
                or not all(isinstance(s, str) and HEX64.match(s) for s in survivors)):
            raise TxError(Code.INVALID_BODY, f"survivors must be a list of 1-{MAX_ROUND_SIZE} participant keys")
        if survivors != sorted(set(survivors)):
            raise TxError(Code.INVALID_BODY, "survivors must be sorted and without duplicates")
        return DeclareSurvivors(*_task_round(body), survivors=tuple(survivors))


PARSERS: dict[str, Callable[[dict[str, Any]], object]] = {
    "secagg_keys": AdvertiseKeys.parse,
    "secagg_shares": PostPayload.parse,
    "secagg_advance": Advance.parse,
    "secagg_survivors": DeclareSurvivors.parse,
    "secagg_unmask": PostPayload.parse,
}
