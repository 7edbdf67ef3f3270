"""Locating, checking and (if needed) building the pinned CometBFT binary."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from fedledger.localnet.binaries import find_pinned, run_version
from fedledger.localnet.errors import BinaryError

__all__ = [
    "COMETBFT_MODULE",
    "COMETBFT_VERSION",
    "check_cometbft",
    "cometbft_version",
    "default_bin_dir",
    "ensure_cometbft",
]

# Pinned: the network, its genesis format and config keys are tested against exactly this release.
COMETBFT_VERSION = "0.38.26"
COMETBFT_MODULE = "github.com/cometbft/cometbft/cmd/cometbft"

_VERSION_TIMEOUT_S = 20.0
_BUILD_TIMEOUT_S = 1800.0


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def default_bin_dir() -> Path:
    """Where binaries are found or built: $FEDLEDGER_BIN_DIR, the source checkout's bin/, or ~/.cache/fedledger/bin."""
    env = os.environ.get("FEDLEDGER_BIN_DIR")
    if env:
        return Path(env).expanduser()
    # Run from a checkout (editable install): use its bin/, where `make` installs the pinned binaries.
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "Makefile").is_file():
        return checkout / "bin"
    cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(cache).expanduser() if cache else Path.home() / ".cache"
    return base / "fedledger" / "bin"


def cometbft_version(path: Path) -> str:
    """Run ``path version`` and return what it prints (stripped); BinaryError if it cannot run."""
    return run_version(path, ["version"], _VERSION_TIMEOUT_S)


def check_cometbft(path: Path) -> None:
    """Raise BinaryError unless ``path`` is a runnable cometbft printing exactly COMETBFT_VERSION."""
    if not path.is_file():
        raise BinaryError(f"cometbft binary {path} does not exist (expected version {COMETBFT_VERSION})")
    found = cometbft_version(path)
    if found != COMETBFT_VERSION:
        raise BinaryError(
            f"cometbft at {path} has version {found!r}, expected {COMETBFT_VERSION!r}; "
            f"install it with `go install {COMETBFT_MODULE}@v{COMETBFT_VERSION}` or set COMETBFT_BIN"
        )


def ensure_cometbft(bin_dir: Path, log: Callable[[str], None] = _stderr) -> Path:
    """Return a cometbft binary of COMETBFT_VERSION, building it into ``bin_dir`` with Go if none exists.

    Looks at $COMETBFT_BIN, then ``bin_dir/cometbft``, then PATH; the first one reporting exactly
    the pinned version wins. Otherwise runs ``GOBIN=<bin_dir> go install ...@v<version>``.
    """
    found = find_pinned("COMETBFT_BIN", bin_dir, "cometbft", check_cometbft, log)
    if found is not None:
        return found

    go = shutil.which("go")
    if go is None:
        raise BinaryError(
            f"no cometbft {COMETBFT_VERSION} found and the Go toolchain is not installed: install Go "
            f"(>= 1.22, https://go.dev/dl/) so it can be built, or set COMETBFT_BIN to a cometbft "
            f"v{COMETBFT_VERSION} binary"
        )
    bin_dir.mkdir(parents=True, exist_ok=True)
    target = f"{COMETBFT_MODULE}@v{COMETBFT_VERSION}"
    log(f"building cometbft v{COMETBFT_VERSION} into {bin_dir} (go install {target}; takes ~2 minutes)...")
    env = dict(os.environ, GOBIN=str(bin_dir.resolve()))
    try:
        proc = subprocess.run(
            [go, "install", target],
            env=env,
            capture_output=True,
            text=True,
            timeout=_BUILD_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BinaryError(f"go install {target} failed: {exc}") from exc
    if proc.returncode != 0:
        # One line: go's last complaint is the useful part (module lookup, compile error).
        detail = " | ".join(line.strip() for line in proc.stderr.strip().splitlines()[-3:])
        raise BinaryError(f"go install {target} failed (status {proc.returncode}): {detail}")
    built = bin_dir / "cometbft"
    check_cometbft(built)
    log(f"built {built}")
    return built.resolve()
