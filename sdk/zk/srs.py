"""KZG structured reference strings: a local dev SRS, or an operator's ceremony SRS, each pinned by sha256.

`dev_srs` runs ezkl's gen_srs, which draws its toxic waste at random: whoever ran it could forge
proofs, so a dev SRS is for tests and local networks only, NEVER for production. Production chains
pin the sha256 of a ceremony SRS (e.g. a powers-of-tau transcript converted for ezkl), which the
operator supplies by path. Nothing here downloads anything.

One SRS of the chain's largest logrows serves every smaller circuit (measured with ezkl 23.0.5:
setup with a 2^17 SRS for a 2^15 circuit, verify with non_reduced_srs=True in 60 ms), so a chain
pins exactly one SRS.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from fedledger.abci_app.modules.zk.verifier import run_ezkl
from fedledger.sdk.zk.errors import ZkSRSError

__all__ = ["SrsFile", "dev_srs", "load_srs"]


@dataclass(frozen=True)
class SrsFile:
    """An SRS file on disk, its sha256 (what the chain pins) and its size in logrows."""

    path: Path
    sha256: str
    logrows: int


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dev_srs(path: Path, logrows: int) -> SrsFile:
    """A fresh random SRS at `path` (reused if already there). NOT FOR PRODUCTION: its maker can forge proofs."""
    import ezkl

    if not 1 <= logrows <= 26:
        raise ZkSRSError(f"logrows must be in [1, 26], got {logrows}")
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        result: object = ezkl.gen_srs(str(tmp), logrows)  # type: ignore[func-returns-value]
        run_ezkl(result)
        tmp.replace(path)
    return SrsFile(path=path, sha256=_digest(path), logrows=logrows)


def load_srs(path: Path, logrows: int, expected_sha256: str | None = None) -> SrsFile:
    """An operator's SRS file, checked against the sha256 the chain pins when one is given."""
    path = Path(path)
    if not path.is_file():
        raise ZkSRSError(f"SRS file {path} does not exist: pass the ceremony SRS the chain's genesis pins")
    digest = _digest(path)
    if expected_sha256 is not None and digest != expected_sha256:
        raise ZkSRSError(f"SRS file {path} has sha256 {digest}, expected {expected_sha256}: wrong file")
    return SrsFile(path=path, sha256=digest, logrows=logrows)
