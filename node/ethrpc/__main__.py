"""Run a node's Ethereum JSON-RPC: `python -m fedledger.node.ethrpc --node http://127.0.0.1:26601 --port 26608`."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from types import FrameType

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m fedledger.node.ethrpc", description=__doc__)
    parser.add_argument("--node", default="http://127.0.0.1:26601", help="the node's CometBFT RPC URL")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=26608)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)

    from fedledger.node.ethrpc.api import EthApi
    from fedledger.node.ethrpc.backend import CometBackend
    from fedledger.node.ethrpc.server import EthRpcServer

    server = EthRpcServer(EthApi(CometBackend(args.node)), args.host, args.port)

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logging.getLogger("fedledger.ethrpc").info("Ethereum JSON-RPC on %s for node %s", server.url, args.node)
    server.serve_forever()


if __name__ == "__main__":
    main()
