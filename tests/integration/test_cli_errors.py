"""What a user sees when something goes wrong: one red `error: … [CODE]` line, its family's exit status, no trace."""

from __future__ import annotations

import os
import pty
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fedledger.abci_app.errors import Code
from fedledger.localnet import manager
from fedledger.localnet.cometbft import COMETBFT_VERSION
from fedledger.localnet.ports import find_free_base_port
from fedledger.sdk.tensors import encode_tensors
from tests.errorcodes import exit_status_of

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

TASK = "errs"


def assert_one_error_line(res: Any, *needles: str, code: str | None = None) -> str:
    """No traceback, and the error is the last thing printed: one `error: … [CODE]` line with every needle.

    The exit status is the one of the printed code's family; `code`, when given, is the code expected.
    """
    assert "Traceback" not in res.stderr, res.describe()
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, f"expected exactly one `error:` line\n{res.describe()}"
    # Log lines may precede the error; nothing may follow it (a message spilling onto more lines would).
    assert lines[-1] == errors[0], f"the error is not a single line\n{res.describe()}"
    for needle in needles:
        assert needle in errors[0], f"{needle!r} missing from the error line\n{res.describe()}"
    printed = re.search(r" \[([A-Z0-9_]+)\]$", errors[0])
    assert printed is not None, f"the error line carries no [CODE]\n{res.describe()}"
    assert code is None or printed.group(1) == code, res.describe()
    assert res.rc == exit_status_of(printed.group(1)), res.describe()
    return errors[0]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Env:
    """A running net and a client home with a registered aggregator, a registered trainer and an open round."""

    net: Any
    cli: Any
    work: Path


@pytest.fixture(scope="module")
def env(kit: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    work = tmp_path_factory.mktemp("cli-errors")
    with kit.running_localnet(work / "net") as net:
        cli = kit.Cli(work / "client", net.home, work / "logs")
        try:
            for name in ("boss", "alice"):
                cli.ok("keys", "create", name)
            cli.ok("admit", "--key", "boss", "--role", "aggregator")
            cli.ok("admit", "--key", "alice")
            cli.ok("task", "create", "--key", "boss", "--task", TASK, "--aggregator", "boss", "--round-size", "4",
                   "--min-contributions", "1", "--deadline-blocks", "1000")
            cli.ok("task", "open-round", "--key", "boss", "--task", TASK)
            yield Env(net, cli, work)
        finally:
            cli.close()


def test_dead_rpc_names_the_url(kit: Any, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    res = kit.run(["--home", str(tmp_path), "--node", url, "query", "task", "x"])
    assert_one_error_line(res, url, code="RPC_UNAVAILABLE")


def test_error_line_is_red_on_a_terminal(kit: Any, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([str(kit.fedledger), "--home", str(tmp_path), "--node", url, "query", "task", "x"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave, env=kit.env())
        os.close(slave)
        slave = -1
        chunks = []
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        rc = proc.wait(timeout=30)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    text = b"".join(chunks).decode(errors="replace")
    assert rc == exit_status_of("RPC_UNAVAILABLE"), text
    assert "\x1b[31merror: " in text, repr(text)  # ANSI red
    assert url in text and "Traceback" not in text, text


def test_missing_key(env: Env) -> None:
    res = env.cli.run("admit", "--key", "nosuch")
    assert_one_error_line(res, "nosuch", "keys create", code="KEYSTORE")


def test_rejected_tx_shows_code_and_log(env: Env) -> None:
    res = env.cli.run("admit", "--key", "alice")
    assert_one_error_line(res, f"code {int(Code.ALREADY_EXISTS)}", "already enrolled", code="TX_REJECTED")


def test_missing_task_is_not_found(env: Env) -> None:
    res = env.cli.run("query", "task", "no-such-task")
    assert_one_error_line(res, "no-such-task", "not found")


def test_up_on_a_running_net(kit: Any, env: Env) -> None:
    res = kit.run(["localnet", "up", "--home", str(env.net.home), "--base-port", str(env.net.base_port)])
    assert_one_error_line(res, "already running", str(env.net.home), code="ALREADY_RUNNING")
    assert manager.is_running(env.net.home) is not None, "the running net was disturbed"
    assert all(n.alive for n in manager.status(env.net.home))


def test_up_with_a_taken_port(kit: Any, tmp_path: Path) -> None:
    base = find_free_base_port(40)
    rpc_port_node1 = base + 10 * 1 + 1  # README: node i uses base + 10*i + {0 p2p, 1 rpc, 2 abci}
    home = tmp_path / "net"
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", rpc_port_node1))
        blocker.listen()
        started = time.monotonic()
        res = kit.run(["localnet", "up", "--home", str(home), "--base-port", str(base)], timeout=60)
        elapsed = time.monotonic() - started
    assert_one_error_line(res, str(rpc_port_node1), "node1 rpc", code="PORT_IN_USE")
    assert elapsed < 20, f"took {elapsed:.1f}s to report a taken port"
    assert manager.is_running(home) is None and not (home / "run.json").exists(), "something was started"


def _no_cometbft_env(kit: Any, tmp_path: Path, path_dirs: list[str]) -> dict[str, str]:
    empty = tmp_path / "empty-bin"
    empty.mkdir(exist_ok=True)
    for d in path_dirs:
        assert not (Path(d) / "cometbft").exists(), f"{d} holds a cometbft"
    env: dict[str, str] = kit.env()
    env.update({
        "COMETBFT_BIN": "/nonexistent", "FEDLEDGER_BIN_DIR": str(empty), "PATH": os.pathsep.join(path_dirs),
        # Go may be there, but must not be able to fetch or build anything.
        "GOFLAGS": "-mod=mod", "GOPROXY": "off", "GOTOOLCHAIN": "local", "GOMODCACHE": str(tmp_path / "gomod"),
    })
    return env


def _go_dirs() -> list[str]:
    go = shutil.which("go")
    if go is None:
        pytest.skip("no Go toolchain on PATH")
    return [str(Path(go).resolve().parent)]


@pytest.fixture(scope="module")
def missing_cometbft_with_go(kit: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, float]:
    tmp = tmp_path_factory.mktemp("no-cometbft")
    env = _no_cometbft_env(kit, tmp, _go_dirs())
    started = time.monotonic()
    res = kit.run(["localnet", "up", "--home", str(tmp / "net"), "--base-port", str(find_free_base_port(40))],
                  env=env, timeout=120)
    return res, time.monotonic() - started


def test_missing_cometbft_names_the_version_quickly(missing_cometbft_with_go: tuple[Any, float]) -> None:
    res, elapsed = missing_cometbft_with_go
    assert res.rc == exit_status_of("BINARY"), res.describe()
    assert "Traceback" not in res.stderr, res.describe()
    errors = [line for line in res.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and COMETBFT_VERSION in errors[0], res.describe()
    assert elapsed < 30, f"took {elapsed:.1f}s\n{res.describe()}"


def test_missing_cometbft_error_is_one_line(missing_cometbft_with_go: tuple[Any, float]) -> None:
    res, _ = missing_cometbft_with_go
    assert_one_error_line(res, COMETBFT_VERSION)


def test_missing_cometbft_without_go(kit: Any, tmp_path: Path) -> None:
    env = _no_cometbft_env(kit, tmp_path, [str(tmp_path / "empty-bin")])
    started = time.monotonic()
    res = kit.run(["localnet", "up", "--home", str(tmp_path / "net"), "--base-port", str(find_free_base_port(40))],
                  env=env, timeout=60)
    assert_one_error_line(res, COMETBFT_VERSION, "COMETBFT_BIN")
    assert time.monotonic() - started < 20


def test_wrong_cometbft_version_is_refused(kit: Any, tmp_path: Path) -> None:
    fake = tmp_path / "cometbft"
    fake.write_text("#!/bin/sh\necho 0.37.0\n")
    fake.chmod(0o755)
    env = _no_cometbft_env(kit, tmp_path, [str(tmp_path / "empty-bin")])
    env["COMETBFT_BIN"] = str(fake)
    res = kit.run(["localnet", "up", "--home", str(tmp_path / "net"), "--base-port", str(find_free_base_port(40))],
                  env=env, timeout=60)
    assert_one_error_line(res, COMETBFT_VERSION)
    assert "0.37.0" in res.stderr, res.describe()  # says why the binary it was given was not used


def test_status_without_a_net(kit: Any, tmp_path: Path) -> None:
    home = tmp_path / "nothing-here"
    res = kit.run(["localnet", "status", "--home", str(home)])
    assert_one_error_line(res, "localnet up", code="NOT_GENERATED")


DP_ARGS = ("--noise-multiplier", "1.0", "--sample-rate", "0.1", "--steps", "10", "--clip-norm", "1.0")


def test_contribute_accepts_a_valid_update(env: Env) -> None:
    """Control for the next test: the same command with a well-formed payload goes through."""
    good = env.work / "good.bin"
    good.write_bytes(encode_tensors({"w": np.zeros((2, 3), dtype=np.float32)}))
    res = env.cli.run("contribute", "--key", "alice", "--task", TASK, "--round", "1", "--update", str(good), *DP_ARGS,
                      "--examples", "5")
    assert res.rc == 0, res.describe()
    assert "committed" in res.stdout, res.describe()


def test_contribute_rejects_an_invalid_update(env: Env) -> None:
    bad = env.work / "bad.bin"
    bad.write_bytes(b"this is not a fedledger tensor payload")
    res = env.cli.run("contribute", "--key", "alice", "--task", TASK, "--round", "1", "--update", str(bad), *DP_ARGS,
                      "--examples", "5")
    assert_one_error_line(res, "payload", code="PAYLOAD")


def test_client_run_rejects_an_invalid_data_file(env: Env) -> None:
    bad = env.work / "bad.npz"
    bad.write_bytes(b"this is not an npz archive")
    res = env.cli.run("client", "run", "--key", "alice", "--task", TASK, "--data", str(bad), "--rounds", "1")
    assert_one_error_line(res, str(bad), code="DATA")


def test_aggregator_with_the_wrong_key_stops(env: Env) -> None:
    env.cli.ok("task", "create", "--key", "boss", "--task", "errs-agg", "--aggregator", "boss",
               "--min-contributions", "1")
    res = env.cli.run("aggregator", "run", "--key", "alice", "--task", "errs-agg", "--rounds", "1", timeout=10)
    assert_one_error_line(res, "is not the aggregator")
