"""The validator's ezkl verifier: the pinned SRS, loaded once at start, and a native proof check.

Reading files is stated for this one place: ezkl's verifier takes paths, so the SRS (from the
operator's configured path, checked against the chain's pinned sha256) is copied into a private
scratch folder at start, and each check writes the circuit and proof there. I/O failures raise
(they halt the validator) instead of becoming a verdict: only ezkl's own answer decides a verdict,
so every validator reaches the same one.

A validator that cannot verify must fail loudly, never skip: `active()` raises when no SRS is
configured, and `check_pinned` raises when the configured SRS is not the one the chain pinned.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

__all__ = ["SRS_ENV", "ZkVerifier", "active", "check_pinned", "configure", "run_ezkl"]

SRS_ENV = "FEDLEDGER_ZK_SRS"  # where a validator finds the SRS file when nothing configured one explicitly


def run_ezkl(result: Any) -> Any:
    """ezkl's Python calls return either the value or an awaitable, depending on the call: resolve both."""
    if inspect.isawaitable(result):
        return asyncio.run(result)  # type: ignore[arg-type]
    return result


class ZkVerifier:
    """One SRS file (pinned by sha256) and a scratch folder for ezkl's path-based verifier."""

    def __init__(self, srs_path: Path) -> None:
        data = Path(srs_path).read_bytes()
        self.srs_sha256 = hashlib.sha256(data).hexdigest()
        self._dir = Path(tempfile.mkdtemp(prefix="fedledger-zk-"))
        self._srs = self._dir / "srs"
        self._srs.write_bytes(data)
        self._lock = threading.Lock()  # CheckTx and FinalizeBlock may verify from different threads

    def _file(self, name: str, data: bytes) -> Path:
        # Content-addressed, so a circuit's settings and vk are written once however many proofs use them.
        path = self._dir / f"{name}-{hashlib.sha256(data).hexdigest()}"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return path

    def verify(self, settings: bytes, vk: bytes, proof: dict[str, Any]) -> tuple[bool, str | None]:
        """(True, None) if ezkl accepts `proof` ({instances, proof}) for this circuit; else (False, why)."""
        import ezkl

        with self._lock:
            settings_path, vk_path = self._file("settings", settings), self._file("vk", vk)
            proof_path = self._dir / "proof.json"
            proof_path.write_text(json.dumps(proof, sort_keys=True), encoding="utf-8")
            # A missing file is this machine's fault, not the proof's: halt rather than record a verdict
            # that other validators would not reach (e.g. a tmp cleaner removed the SRS copy).
            for path in (self._srs, settings_path, vk_path, proof_path):
                if not path.is_file():
                    raise RuntimeError(f"zk verifier scratch file {path} vanished; restart the validator")
            try:
                # non_reduced_srs=True: use the SRS as given (a larger one than the circuit needs works,
                # and is ~300x faster than reducing it on every call).
                ok = run_ezkl(ezkl.verify(str(proof_path), str(settings_path), str(vk_path), str(self._srs), True))
            except Exception as exc:  # ezkl reports a rejected proof as RuntimeError
                return False, str(exc)[:200]
            except BaseException as exc:
                # A malformed proof can make ezkl's Rust code panic: pyo3 raises PanicException, a
                # BaseException that cannot be imported by name. That too is ezkl rejecting the proof.
                if type(exc).__name__ != "PanicException":
                    raise
                return False, "ezkl panicked on the proof: " + str(exc)[:160]
            finally:
                proof_path.unlink(missing_ok=True)
        return (True, None) if ok is True else (False, "ezkl's verifier returned false")

    def close(self) -> None:
        """Remove the scratch folder."""
        shutil.rmtree(self._dir, ignore_errors=True)


_ACTIVE: ZkVerifier | None = None


def configure(srs_path: Path | None) -> ZkVerifier | None:
    """Load the SRS this validator verifies with (None: forget it); returns the verifier."""
    global _ACTIVE
    if _ACTIVE is not None:
        _ACTIVE.close()
    _ACTIVE = ZkVerifier(srs_path) if srs_path is not None else None
    return _ACTIVE


def active() -> ZkVerifier:
    """The configured verifier, loading $FEDLEDGER_ZK_SRS on first use; RuntimeError (a halt) if there is none."""
    if _ACTIVE is None:
        env = os.environ.get(SRS_ENV)
        if not env:
            raise RuntimeError(f"this validator cannot verify zk proofs: no SRS configured (set {SRS_ENV} to the "
                               "SRS file the chain's genesis pins); refusing to go on rather than diverge")
        configure(Path(env))
    assert _ACTIVE is not None
    return _ACTIVE


def check_pinned(srs_sha256: str) -> ZkVerifier:
    """The verifier, if its SRS is the pinned one; RuntimeError otherwise (a validator must not start)."""
    verifier = active()
    if verifier.srs_sha256 != srs_sha256:
        raise RuntimeError(f"the configured SRS has sha256 {verifier.srs_sha256}, the chain pins {srs_sha256}: "
                           "use the SRS file of the chain's genesis")
    return verifier
