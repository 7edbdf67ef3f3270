"""The CLI's resolved global options (Ctx) and its error boundary (FriendlyGroup), shared by every command module."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from fedledger.sdk.errors import ClientError
from fedledger.sdk.keys import KeyStore

__all__ = ["Ctx", "FriendlyGroup", "fail", "pass_ctx"]


def fail(message: str) -> NoReturn:
    """Report a user-facing error as one red line and exit with status 1, never a traceback."""
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(1)


class Ctx:
    """Resolved global options: client home, node RPC URL, localnet home and content store."""

    def __init__(self, home: Path, node: str | None, localnet: Path, store: str | None) -> None:
        self.home = home
        self._node = node
        self.localnet = localnet
        self._store = store

    @property
    def keys(self) -> KeyStore:
        """The local key store."""
        return KeyStore(self.home)

    @property
    def node(self) -> str:
        """RPC URL: --node, $FEDLEDGER_NODE, or node 0 of the localnet."""
        if self._node:
            return self._node
        from fedledger.localnet.manager import rpc_url

        return rpc_url(self.localnet, 0)

    def store_spec(self) -> str:
        """Content store: --store, $FEDLEDGER_STORE, the localnet's store, or an embedded one in the home."""
        if self._store:
            return self._store
        from fedledger.localnet.manager import store_spec

        spec = store_spec(self.localnet)
        return spec if spec is not None else f"embedded:{self.home / 'store'}"

    def rpc(self) -> Any:
        """A CometRPC client for the node."""
        from fedledger.sdk.rpc import CometRPC

        return CometRPC(self.node)

    def submitter(self, key_name: str) -> Any:
        """A Submitter signing with the named key."""
        from fedledger.sdk.submit import Submitter

        return Submitter(self.rpc(), self.keys.load(key_name))

    def open_store(self) -> Any:
        """The configured content store."""
        from fedledger.ipfs import open_store

        return open_store(self.store_spec())


pass_ctx = click.make_pass_decorator(Ctx)


class FriendlyGroup(click.Group):
    """Turns every known user-facing error into one red line and exit code 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command, reporting FedLedger errors plainly."""
        from fedledger.ipfs import StoreError
        from fedledger.localnet.errors import LocalnetError

        try:
            return super().invoke(ctx)
        except (ClientError, LocalnetError, StoreError) as exc:
            fail(str(exc))
        except ValueError as exc:
            # FedLedger's input errors (bad payload, data shard, model spec, ...) are ValueError
            # subclasses defined in its own modules; checking the module keeps torch-importing
            # modules out of every CLI start. Anything else is a bug and keeps its traceback.
            if not type(exc).__module__.startswith("fedledger."):
                raise
            fail(str(exc))
        except KeyboardInterrupt:
            fail("interrupted")
