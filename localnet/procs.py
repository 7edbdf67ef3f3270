"""Process helpers by pid: liveness (zombies count as dead), command-line checks via /proc, signalling."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = ["pid_alive", "pid_cmdline", "pid_matches", "signal_pid", "wait_dead"]


def pid_alive(pid: int) -> bool:
    """Return True while ``pid`` exists and is not a zombie (exited but not yet reaped by its parent)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); it is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return True


def _cmdline_args(pid: int) -> list[str]:
    """Arguments of ``pid`` from /proc (OSError when it cannot be read)."""
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def pid_cmdline(pid: int) -> list[str] | None:
    """Return the arguments ``pid`` was started with, or None when /proc cannot tell (gone, no procfs)."""
    try:
        return _cmdline_args(pid)
    except OSError:
        return None


def pid_matches(pid: int, needle: str) -> bool:
    """True if ``pid`` is alive and (where /proc exists) its command line mentions ``needle``.

    Guards against signalling an unrelated process that reused a recorded pid.
    """
    if not pid_alive(pid):
        return False
    if not Path("/proc/self").exists():
        return True  # no procfs (not Linux): cannot tell, trust the recorded pid
    try:
        args = _cmdline_args(pid)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return needle in " ".join(args)


def signal_pid(pid: int, sig: int) -> None:
    """Send ``sig`` to ``pid``; a process that is already gone is not an error."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def wait_dead(pids: Iterable[int], timeout: float, alive: Callable[[int], bool] = pid_alive) -> bool:
    """Poll until none of ``pids`` is ``alive``; return False when ``timeout`` seconds pass first."""
    watched = list(pids)
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in watched):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True
