"""A localnet's zk SRS: a development SRS made once per machine, copied into the net home and pinned at genesis.

ezkl's gen_srs draws its secret at random, so whoever ran it could forge proofs: this SRS is for
local networks and tests only, NEVER for production. A production consortium pins the sha256 of a
ceremony SRS in its own genesis (`zk: {srs_sha256, srs_logrows}`) and starts every validator with
`--zk-srs PATH`. Making one takes seconds, so the file is cached per machine
(`$FEDLEDGER_CACHE`, default ~/.cache/fedledger) and every net copies it; nothing downloads.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

__all__ = ["DEV_SRS_LOGROWS", "SRS_FILE", "dev_zk_section", "net_srs_path"]

SRS_FILE = "zk-dev.srs"
# 2^17 rows: the digits models' circuits need 2^15; one larger SRS verifies every smaller circuit.
DEV_SRS_LOGROWS = 17


def _cache_dir() -> Path:
    return Path(os.environ.get("FEDLEDGER_CACHE") or Path.home() / ".cache" / "fedledger")


def net_srs_path(home: Path) -> Path | None:
    """The SRS file of the net in `home`, if it has one (validators get it as --zk-srs)."""
    path = home / SRS_FILE
    return path if path.is_file() else None


def dev_zk_section(home: Path) -> dict[str, Any] | None:
    """Put a development SRS in `home` and return the genesis section pinning it; None without ezkl installed."""
    try:
        from fedledger.sdk.zk.srs import dev_srs, load_srs
    except ImportError:  # the critical extra is not installed: the chain pins no SRS and accepts no circuit
        return None
    cached = dev_srs(_cache_dir() / f"zk-dev-{DEV_SRS_LOGROWS}.srs", DEV_SRS_LOGROWS)
    target = home / SRS_FILE
    if not target.exists():
        home.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        shutil.copyfile(cached.path, tmp)
        tmp.replace(target)
    srs = load_srs(target, DEV_SRS_LOGROWS, cached.sha256)
    return {"srs_sha256": srs.sha256, "srs_logrows": srs.logrows}
