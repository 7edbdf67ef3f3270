"""Building a pinned Go binary (Kubo, geth) into the project's bin dir with `go install`, and a fallback.

`go install pkg@version` also asks the module proxy for the module's version list (to report
deprecations); a proxy that refuses that listing makes it fail although the pinned module itself
downloads. The fallback then downloads exactly that version with `go mod download` and builds
the command inside the downloaded copy. Both strategies build the same pinned source.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from fedledger.localnet.errors import BinaryError

__all__ = ["build_pinned", "require_go"]

_BUILD_TIMEOUT_S = 3600.0
_HEARTBEAT_S = 30.0


def _run_go(args: list[str], cwd: Path | None, env: dict[str, str], name: str,
            log: Callable[[str], None]) -> tuple[int, str]:
    """Run a long go command, logging a heartbeat so the user sees the build is alive; (status, output)."""
    started = time.monotonic()
    try:
        proc = subprocess.Popen(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    except OSError as exc:
        return 1, f"cannot start {' '.join(args)}: {exc}"
    try:
        while True:
            try:
                out, _ = proc.communicate(timeout=_HEARTBEAT_S)
                return proc.returncode, out or ""
            except subprocess.TimeoutExpired:
                elapsed = time.monotonic() - started
                if elapsed > _BUILD_TIMEOUT_S:
                    proc.kill()
                    out, _ = proc.communicate()
                    return 1, f"{' '.join(args[:2])} timed out after {elapsed:.0f}s\n{out or ''}"
                log(f"  ... still building {name} ({elapsed:.0f}s so far)")
    except BaseException:
        proc.kill()
        proc.wait()
        raise


def require_go(name: str, version: str, env_var: str) -> str:
    """The `go` executable, or BinaryError saying how to get `name` without it."""
    go = shutil.which("go")
    if go is None:
        raise BinaryError(f"no {name} {version} found and the Go toolchain is not installed: install Go "
                          f"(>= 1.25, https://go.dev/dl/) so it can be built, or set {env_var} to a {name} "
                          f"v{version} binary")
    return go


def build_pinned(go: str, bin_dir: Path, module: str, command: str, version: str, name: str,
                 log: Callable[[str], None]) -> None:
    """Build `module/command@vversion` into bin_dir; BinaryError with go's output when both strategies fail."""
    env = dict(os.environ, GOBIN=str(bin_dir))
    target = f"{module}/{command}@v{version}"
    log(f"building {name} v{version} into {bin_dir} (go install {target}); this takes a few minutes...")
    code, out = _run_go([go, "install", target], None, env, name, log)
    if code == 0:
        return
    first = out.strip()[-2000:]
    reason = first.splitlines()[-1] if first else f"status {code}"
    log(f"go install failed ({reason[:300]}); retrying by building from the downloaded module source...")
    code, out = _run_go([go, "mod", "download", "-json", f"{module}@v{version}"], None, env, name, log)
    module_dir: Path | None = None
    if code == 0:
        with contextlib.suppress(ValueError, TypeError, KeyError):
            module_dir = Path(str(json.loads(out[out.find("{"):])["Dir"]))
    if module_dir is None or not module_dir.is_dir():
        raise BinaryError(f"go install {target} failed:\n{first}\nand `go mod download {module}@v{version}` "
                          f"failed too:\n{out.strip()[-2000:]}")
    code, out = _run_go([go, "install", f"./{command}"], module_dir, env, name, log)
    if code != 0:
        raise BinaryError(f"go install {target} failed:\n{first}\nand building in {module_dir} failed too:\n"
                          f"{out.strip()[-2000:]}")
