"""zk params: the SRS the chain verifies with, pinned at genesis by sha256 and size.

Genesis section `zk`: {"srs_sha256": hex, "srs_logrows": int}. A chain without it stores nothing
and accepts no circuit. Pinning checks the validator's own SRS file at genesis: a validator whose
configured SRS differs refuses to start (RuntimeError) instead of diverging later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from fedledger.abci_app.context import Reader, Writer
from fedledger.abci_app.modules.fields import HEX64
from fedledger.abci_app.modules.zk import keys
from fedledger.abci_app.modules.zk.records import ZkParams
from fedledger.abci_app.modules.zk.verifier import check_pinned
from fedledger.abci_app.records import load_record, store_record

__all__ = ["MAX_SRS_LOGROWS", "check_startup", "init_genesis", "params"]

MAX_SRS_LOGROWS = 26
_NONE: ZkParams = {"srs_sha256": "", "srs_logrows": 0}


def params(view: Reader) -> ZkParams:
    """The pinned SRS (empty sha256 and 0 rows when the chain pinned none)."""
    rec = load_record(view, keys.PARAMS_KEY)
    return cast(ZkParams, rec) if rec is not None else dict(_NONE)  # type: ignore[return-value]


def init_genesis(state: Writer, section: Mapping[str, Any]) -> None:
    """Pin the SRS; ValueError for a malformed section, RuntimeError when this validator's SRS is not it."""
    if not section:
        return
    if set(section) != {"srs_sha256", "srs_logrows"}:
        raise ValueError(f"zk genesis: expected keys srs_sha256 and srs_logrows, got {sorted(section)}")
    digest, logrows = section["srs_sha256"], section["srs_logrows"]
    if not isinstance(digest, str) or not HEX64.match(digest):
        raise ValueError("zk genesis: srs_sha256 must be 64 lower-case hex characters")
    if not isinstance(logrows, int) or isinstance(logrows, bool) or not 1 <= logrows <= MAX_SRS_LOGROWS:
        raise ValueError(f"zk genesis: srs_logrows must be an int in [1, {MAX_SRS_LOGROWS}]")
    check_pinned(digest)
    store_record(state, keys.PARAMS_KEY, {"srs_sha256": digest, "srs_logrows": logrows})


def check_startup(view: Reader) -> None:
    """At process start: if the committed chain pins an SRS, this validator must hold it (RuntimeError if not)."""
    pinned = params(view)["srs_sha256"]
    if pinned:
        check_pinned(pinned)
