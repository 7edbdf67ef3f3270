"""Exception hierarchy of the local validator network manager."""

from __future__ import annotations

from fedledger.abci_app.errors import Family, FedLedgerError

__all__ = [
    "AlreadyRunningError",
    "BinaryError",
    "CardError",
    "GenesisAssemblyError",
    "GenesisHashMismatchError",
    "HostNotInitializedError",
    "LocalnetError",
    "NotGeneratedError",
    "NetnsError",
    "NotRunningError",
    "PortInUseError",
    "StateDivergenceError",
    "UnreachableNodesError",
]


class LocalnetError(FedLedgerError):
    """Base class of every error the localnet manager raises on purpose."""

    family = Family.LOCALNET
    error_code = "LOCALNET"


class PortInUseError(LocalnetError):
    """A port the network needs is already taken on 127.0.0.1."""

    error_code = "PORT_IN_USE"

    def __init__(self, port: int, owner: str) -> None:
        self.port = port
        self.owner = owner
        super().__init__(
            f"port {port} ({owner}) is already in use on 127.0.0.1; stop whatever holds it "
            f"or choose another base port (--base-port)"
        )


class BinaryError(LocalnetError):
    """A required external binary (cometbft, ipfs, go) is missing, broken or has the wrong version."""

    error_code = "BINARY"


class AlreadyRunningError(LocalnetError):
    """A network is already running in the given home directory."""

    error_code = "ALREADY_RUNNING"

    def __init__(self, home: str, pid: int | None) -> None:
        self.home = home
        self.pid = pid
        who = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(
            f"a localnet is already running in {home} ({who}); "
            f"run `fedledger localnet down --home {home}` first"
        )


class NotGeneratedError(LocalnetError):
    """The given home directory holds no generated network (no localnet.json): run `localnet up` first."""

    error_code = "NOT_GENERATED"


class NotRunningError(LocalnetError):
    """No network is running in the given home directory (or the asked-for node does not exist)."""

    error_code = "NOT_RUNNING"


class HostNotInitializedError(LocalnetError):
    """A consortium host's home holds no `fedledger node init` output (no host.json): run `node init` first."""

    error_code = "HOST_NOT_INITIALIZED"
    family = Family.CONFIG


class CardError(LocalnetError):
    """A host's public card is unreadable, malformed, or its signature does not match its issuer DID."""

    error_code = "CARD_INVALID"
    family = Family.CONFIG


class GenesisAssemblyError(LocalnetError):
    """The cards cannot make one genesis: a duplicate organization, validator, node or issuer, or a bad option."""

    error_code = "GENESIS_ASSEMBLY"
    family = Family.CONFIG


class GenesisHashMismatchError(LocalnetError):
    """The genesis file's sha256 is not the hash the organizations agreed on: do not start on it."""

    error_code = "GENESIS_HASH_MISMATCH"
    family = Family.CRYPTO


class NetnsError(LocalnetError):
    """Creating, changing or removing a Linux network namespace, veth link or bridge failed."""

    error_code = "NETNS"


class StateDivergenceError(LocalnetError):
    """`localnet check-state`: a node's own committed state differs from the majority's (or there is none)."""

    error_code = "STATE_DIVERGED"


class UnreachableNodesError(LocalnetError):
    """`localnet check-state`: some node did not answer, so its state could not be compared."""

    family = Family.NETWORK
    error_code = "NODES_UNREACHABLE"
