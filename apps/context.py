"""The CLI's resolved global options (Ctx) and its error boundary (FriendlyGroup), shared by every command module.

Every FedLedgerError becomes one red line, `error: <message> [<CODE>]`, and the exit status of its
family (fedledger.abci_app.errors.EXIT_STATUS; docs/ERRORS.md lists them). Anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from fedledger.abci_app.errors import FedLedgerError
from fedledger.sdk.keys import KeyStore

__all__ = ["Ctx", "FriendlyGroup", "fail", "pass_ctx", "report"]

INTERRUPTED = 130  # the shell's convention for a process stopped by Ctrl-C (128 + SIGINT)


def fail(message: str, status: int = 1) -> NoReturn:
    """Report a user-facing error as one red line and exit with `status`, never a traceback."""
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(status)


def report(exc: FedLedgerError) -> NoReturn:
    """Report a FedLedger error with its stable code, exiting with its family's status."""
    fail(f"{exc} [{exc.error_code}]", exc.exit_status)


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
        from fedledger.localnet.errors import NotGeneratedError
        from fedledger.localnet.manager import rpc_url

        try:
            return rpc_url(self.localnet, 0)
        except NotGeneratedError as exc:
            # The user may not want a localnet at all: say how to name a node instead.
            raise NotGeneratedError(f"no node to talk to: {self.localnet} holds no localnet; run `fedledger "
                                    f"localnet up`, or name a node with --node URL, $FEDLEDGER_NODE or "
                                    f"`node = \"URL\"` in fedledger.toml") from exc

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

    def admin_submitter(self, key_name: str | None) -> Any:
        """A named key's Submitter, or the localnet's development issuer (the admin of organization `local`)."""
        if key_name:
            return self.submitter(key_name)
        from fedledger.localnet.consortium import dev_issuer_key
        from fedledger.sdk.keys import Key
        from fedledger.sdk.submit import Submitter

        return Submitter(self.rpc(), Key("local-admin", dev_issuer_key(self.localnet)))

    def open_store(self) -> Any:
        """The configured content store."""
        from fedledger.ipfs import open_store

        return open_store(self.store_spec())


pass_ctx = click.make_pass_decorator(Ctx)


class FriendlyGroup(click.Group):
    """Turns every FedLedgerError into one red line and its family's exit status, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command, reporting FedLedger errors plainly."""
        try:
            return super().invoke(ctx)
        except FedLedgerError as exc:
            report(exc)
        except KeyboardInterrupt:
            fail("interrupted", INTERRUPTED)
