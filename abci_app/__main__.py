"""Run a FedLedger ABCI application process: `python -m fedledger.abci_app --home DIR --addr tcp://…`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from pathlib import Path

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Open the state store, serve ABCI on the address until SIGTERM/SIGINT, then close cleanly."""
    parser = argparse.ArgumentParser(prog="python -m fedledger.abci_app", description=__doc__)
    parser.add_argument("--home", type=Path, required=True, help="directory of the app's state database")
    parser.add_argument("--addr", default="tcp://127.0.0.1:26658", help="tcp://HOST:PORT or unix://PATH")
    parser.add_argument("--chain-id", default=None, help="expected chain id (checked against genesis)")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--metrics-port", type=int, default=None,
                        help="serve Prometheus metrics on this port (default: off; see abci_app/observer.py)")
    parser.add_argument("--metrics-addr", default="127.0.0.1", help="address the metrics endpoint listens on")
    parser.add_argument("--zk-srs", type=Path, default=None,
                        help="the SRS file the chain's genesis pins for zk proofs (default: $FEDLEDGER_ZK_SRS)")
    parser.add_argument("--snapshot-interval", type=int,
                        default=int(os.environ.get("FEDLEDGER_SNAPSHOT_INTERVAL", "1000")),
                        help="write a state-sync snapshot every N heights (0: never; "
                             "default $FEDLEDGER_SNAPSHOT_INTERVAL or 1000)")
    parser.add_argument("--snapshot-keep", type=int, default=2, help="how many recent snapshots to keep")
    parser.add_argument("--snapshot-chunk-size", type=int, default=2 << 20, help="snapshot chunk size in bytes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from fedledger.abci_app.app import FedLedgerApp
    from fedledger.abci_app.server import ABCIServer
    from fedledger.abci_app.snapshots import SnapshotManager
    from fedledger.abci_app.state_machine import StateMachine
    from fedledger.abci_app.store import CommittedStore

    args.home.mkdir(parents=True, exist_ok=True)
    store = CommittedStore(args.home / "state.db")
    machine = StateMachine(store, args.chain_id)
    from fedledger.abci_app.modules.zk.params import check_startup
    from fedledger.abci_app.modules.zk.verifier import configure

    if args.zk_srs is not None:
        configure(args.zk_srs)
    check_startup(store)  # a chain that pins an SRS: refuse to start without exactly that file
    logging.getLogger("fedledger.app").info("state at height %d, app hash %s", store.height, store.app_hash.hex())

    snapshots = SnapshotManager(args.home / "snapshots", args.snapshot_interval, args.snapshot_keep,
                                args.snapshot_chunk_size)
    app = FedLedgerApp(machine, snapshots)
    if args.metrics_port is not None:
        # Observations only: ObservedApp answers exactly as FedLedgerApp and keeps its metrics outside the state.
        from prometheus_client import start_http_server

        from fedledger.abci_app.observer import AppMetrics, ObservedApp

        metrics = AppMetrics()
        start_http_server(args.metrics_port, addr=args.metrics_addr, registry=metrics.registry)
        app = ObservedApp(machine, metrics, snapshots)
        logging.getLogger("fedledger.app").info("metrics on http://%s:%d/metrics", args.metrics_addr,
                                                args.metrics_port)

    async def run() -> None:
        server = ABCIServer(app, args.addr)
        await server.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop()

    try:
        asyncio.run(run())
    finally:
        store.close()


if __name__ == "__main__":
    main()
