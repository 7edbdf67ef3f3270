"""`--metrics-port` for the long-running node commands: serve the process's Prometheus metrics (sdk/metrics.py).

Off unless the option or `$FEDLEDGER_METRICS_PORT` names a port; the endpoint listens on
127.0.0.1 (`--metrics-addr` to expose it further).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = ["metrics_options", "start_metrics"]

F = TypeVar("F", bound=Callable[..., Any])


def metrics_options(fn: F) -> F:
    """Add --metrics-port and --metrics-addr to a command."""
    fn = click.option("--metrics-addr", default="127.0.0.1", show_default=True,
                      help="Address the metrics endpoint listens on.")(fn)
    return click.option("--metrics-port", type=click.IntRange(1, 65535), default=None,
                        help="Serve Prometheus metrics on this port (default: $FEDLEDGER_METRICS_PORT, else off).")(fn)


def start_metrics(port: int | None, addr: str) -> int | None:
    """Serve the metrics when a port is given (here or in the environment); returns the port, or None when off."""
    from fedledger.sdk.metrics import metrics_port_from_env, serve_metrics

    port = port if port is not None else metrics_port_from_env()
    if port is None:
        return None
    serve_metrics(port, addr)
    click.echo(f"metrics on http://{addr}:{port}/metrics", err=True)
    return port
