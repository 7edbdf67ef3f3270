"""Finding and checking the pinned external binaries (cometbft, ipfs) the localnet runs."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from fedledger.localnet.errors import BinaryError

__all__ = ["candidate_paths", "find_pinned", "run_version"]


def run_version(path: Path, args: Sequence[str], timeout: float) -> str:
    """Run ``path *args`` (a version query) and return its stripped stdout.

    Raises BinaryError when the binary cannot be started, times out or exits non-zero.
    """
    command = " ".join([str(path), *args])
    try:
        proc = subprocess.run(
            [str(path), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BinaryError(f"cannot run {command}: {exc}") from exc
    if proc.returncode != 0:
        raise BinaryError(f"{command} exited with status {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return proc.stdout.strip()


def candidate_paths(env_var: str, bin_dir: Path, name: str) -> list[tuple[str, Path]]:
    """Return ``(origin, path)`` places to look for ``name``, best first: ``$env_var``, ``bin_dir``, PATH."""
    out: list[tuple[str, Path]] = []
    env = os.environ.get(env_var)
    if env:
        out.append((f"${env_var}", Path(env).expanduser()))
    out.append(("bin dir", bin_dir / name))
    on_path = shutil.which(name)
    if on_path:
        out.append(("PATH", Path(on_path)))
    return out


def find_pinned(
    env_var: str,
    bin_dir: Path,
    name: str,
    check: Callable[[Path], None],
    log: Callable[[str], None],
) -> Path | None:
    """Return the first candidate (see candidate_paths) that ``check`` accepts, resolved; None if none does.

    ``check`` raises BinaryError for a binary of the wrong version; every skipped candidate is
    logged with the reason, except missing files found by a default location (only an explicit
    ``$env_var`` pointing nowhere is worth a message).
    """
    for origin, path in candidate_paths(env_var, bin_dir, name):
        if not path.is_file():
            if origin == f"${env_var}":
                log(f"ignoring ${env_var}={path}: no such file")
            continue
        try:
            check(path)
        except BinaryError as exc:
            log(f"ignoring {name} from {origin}: {exc}")
            continue
        return path.resolve()
    return None
