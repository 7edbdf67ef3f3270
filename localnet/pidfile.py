"""A background daemon the localnet starts and stops by pid: launch, wait until ready, stop, log tail.

Kubo and geth run the same way: their output goes to `<dir>.log` next to their data directory,
their pid to `<dir>.pid`, so another process (`localnet down`) can stop them. A pid file is
trusted only while the pid still runs the daemon's binary (`_owns`): pids get recycled.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

from fedledger.localnet.errors import LocalnetError
from fedledger.localnet.procs import pid_alive, pid_cmdline, signal_pid, wait_dead

__all__ = ["PidFileProcess"]


class PidFileProcess(ABC):
    """Lifecycle shared by the localnet's daemons; subclasses say how to recognise their own process."""

    def __init__(self, data_dir: Path, binary: Path) -> None:
        self._data_dir = data_dir
        self.binary = Path(binary)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        """The daemon's log (stdout and stderr), next to its data directory."""
        return self._data_dir.parent / f"{self._data_dir.name}.log"

    @property
    def pid_path(self) -> Path:
        """The file recording the running daemon's pid, for `stop` from another process."""
        return self._data_dir.parent / f"{self._data_dir.name}.pid"

    @abstractmethod
    def _owns(self, cmd: list[str]) -> bool:
        """True if a process with this command line is this daemon (checked on top of the binary's name)."""

    def _recorded_pid(self) -> int | None:
        try:
            pid = int(self.pid_path.read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            return None
        cmd = pid_cmdline(pid)
        if cmd is None or Path(cmd[0]).name != self.binary.name or not self._owns(cmd) or not pid_alive(pid):
            return None
        return pid

    def pid(self) -> int | None:
        """The daemon's pid while it runs, else None."""
        if self._proc is not None:
            return self._proc.pid if self._proc.poll() is None else None
        return self._recorded_pid()

    def is_running(self) -> bool:
        """True while the daemon process is alive."""
        return self.pid() is not None

    def _launch(self, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start the daemon with its output appended to the log and its pid recorded."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log_fh:
            log_fh.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(args)}\n".encode())
            log_fh.flush()
            try:
                # Own session: a Ctrl-C aimed at the launcher does not reach the daemon, which is
                # stopped explicitly by pid instead.
                proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=log_fh,
                                        stderr=subprocess.STDOUT, start_new_session=True)
            except OSError as exc:
                raise LocalnetError(f"cannot start {self.binary}: {exc}") from exc
        self._proc = proc
        self.pid_path.write_text(f"{proc.pid}\n", encoding="ascii")
        return proc

    def _await_ready(self, proc: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float,
                     what: str, where: str) -> int:
        """Wait until `ready()`; LocalnetError with the log's tail if the daemon exits or stays silent."""
        deadline = time.monotonic() + timeout
        while True:
            code = proc.poll()
            if code is not None:
                self._forget()
                raise LocalnetError(f"{what} exited with status {code} during startup; log {self.log_path}:\n"
                                    f"{self.log_tail()}")
            if ready():
                return proc.pid
            if time.monotonic() >= deadline:
                self.stop()
                raise LocalnetError(f"{where} did not answer within {timeout:.0f}s; log {self.log_path}:\n"
                                    f"{self.log_tail()}")
            time.sleep(0.1)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds; a no-op when not running."""
        pid = self.pid()
        if pid is not None:
            signal_pid(pid, signal.SIGTERM)
            if not self._wait_exit(pid, timeout):
                signal_pid(pid, signal.SIGKILL)
                self._wait_exit(pid, 5.0)
        self._forget()

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            try:
                self._proc.wait(timeout=timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        return wait_dead([pid], timeout)

    def _forget(self) -> None:
        self._proc = None
        with contextlib.suppress(OSError):
            self.pid_path.unlink()

    def log_tail(self, lines: int = 30) -> str:
        """The last `lines` lines of the daemon's log (empty if there is none yet)."""
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
