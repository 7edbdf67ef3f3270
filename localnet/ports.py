"""Port checks for the localnet: free-port detection, clash reporting and readiness polling."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Iterable

from fedledger.localnet.errors import LocalnetError, PortInUseError

__all__ = [
    "check_ports_free",
    "find_free_base_port",
    "port_accepts",
    "port_is_free",
    "wait_for_port",
]

HOST = "127.0.0.1"


def port_is_free(port: int, host: str = HOST) -> bool:
    """Return True when a listener could bind ``host:port`` right now."""
    if not 0 < port < 65536:
        raise LocalnetError(f"port {port} is outside 1..65535")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR mirrors what cometbft/Go listeners do, so lingering TIME_WAIT connections of a
        # previous run do not count as "in use", while a live listener still does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def check_ports_free(ports: Iterable[tuple[int, str]], host: str = HOST) -> None:
    """Raise PortInUseError for the first ``(port, owner)`` pair whose port is taken or duplicated."""
    seen: dict[int, str] = {}
    for port, owner in ports:
        if port in seen:
            raise LocalnetError(f"port {port} is assigned twice ({seen[port]} and {owner})")
        seen[port] = owner
        if not port_is_free(port, host):
            raise PortInUseError(port, owner)


def find_free_base_port(
    block_size: int, low: int = 20000, high: int = 32000, attempts: int = 200, host: str = HOST
) -> int:
    """Return a base port ``b`` such that ``b .. b+block_size-1`` are all free right now.

    The default range stays below Linux's ephemeral range (32768+), so outgoing connections of the
    nodes themselves cannot grab one of the chosen ports between this check and the bind.
    """
    if block_size < 1 or low + block_size > high:
        raise LocalnetError(f"cannot fit a block of {block_size} ports into {low}..{high}")
    rng = random.Random()
    for _ in range(attempts):
        base = rng.randrange(low, high - block_size)
        if all(port_is_free(base + k, host) for k in range(block_size)):
            return base
    raise LocalnetError(f"found no {block_size} consecutive free ports in {low}..{high}")


def port_accepts(port: int, host: str = HOST, timeout: float = 0.2) -> bool:
    """Return True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(port: int, timeout: float, host: str = HOST) -> bool:
    """Poll until ``host:port`` accepts connections; return False when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        if port_accepts(port, host):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
