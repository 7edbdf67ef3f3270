"""FedLedger's error family (FedLedgerError and its families), the chain's registered result codes, and TxError.

Every exception FedLedger raises on purpose derives from `FedLedgerError` and names a `family`
(what kind of failure: a bad setting, a chain rejection, an unreachable service, ...) and a stable
`error_code` (which failure exactly, e.g. `TX_REJECTED`). The CLI prints the message with its
code and exits with the family's status (`EXIT_STATUS`); code that embeds FedLedger catches a
family, or `FedLedgerError` for any of them. The error tree lives here, at the bottom layer,
because abci_app imports nothing off-chain and every other layer may import abci_app.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import ClassVar

__all__ = [
    "CODESPACE", "EXIT_STATUS", "ChainRejectedError", "Code", "ConfigError", "Family", "FedLedgerError",
    "ProtocolError", "StorageError", "TxError", "UnavailableError", "VerificationError",
]


class Family(StrEnum):
    """The few kinds of failure a user or an embedding program tells apart."""

    GENERAL = "general"  # a failure of the client that fits no narrower family
    CONFIG = "config"  # a setting, file, argument or input a person gave is wrong: fix it and rerun
    CHAIN = "chain"  # the chain refused a tx or has no such record: the ledger's rules said no
    NETWORK = "network"  # a node, store or public chain did not answer: retry, or check the service
    STORE = "store"  # the content store or the chain's own state store failed or lacks data
    CRYPTO = "crypto"  # a signature, proof, hash or credential does not verify: treat the data as forged
    LOCALNET = "localnet"  # installing or supervising the local network's processes failed
    PROTOCOL = "protocol"  # an update, share, payload or message breaks the protocol's rules


# The CLI's exit status per family; 0 is success and click keeps 2 for usage errors, which are config.
EXIT_STATUS: dict[Family, int] = {
    Family.GENERAL: 1, Family.CONFIG: 2, Family.CHAIN: 3, Family.NETWORK: 4, Family.STORE: 5,
    Family.CRYPTO: 6, Family.LOCALNET: 7, Family.PROTOCOL: 8,
}


class FedLedgerError(Exception):
    """Base of every error FedLedger raises on purpose; its message says what went wrong and what to do."""

    family: ClassVar[Family] = Family.GENERAL
    error_code: ClassVar[str] = "FEDLEDGER"

    @property
    def exit_status(self) -> int:
        """The CLI's exit status for this error's family."""
        return EXIT_STATUS[self.family]


class ConfigError(FedLedgerError, ValueError):
    """A setting, file, argument or input is malformed or inconsistent."""

    family = Family.CONFIG
    error_code = "CONFIG"


class ChainRejectedError(FedLedgerError):
    """The chain refused a tx or query, or holds no such record."""

    family = Family.CHAIN
    error_code = "CHAIN_REJECTED"


class UnavailableError(FedLedgerError):
    """A service FedLedger needs (a node's RPC, a content store, a public chain) did not answer."""

    family = Family.NETWORK
    error_code = "UNAVAILABLE"


class StorageError(FedLedgerError):
    """Reading or writing stored data failed, or the data is missing."""

    family = Family.STORE
    error_code = "STORAGE"


class VerificationError(FedLedgerError):
    """A signature, proof, hash or credential does not verify."""

    family = Family.CRYPTO
    error_code = "VERIFICATION"


class ProtocolError(FedLedgerError, ValueError):
    """An update, share, payload or message breaks the protocol's rules (shape, range, encoding)."""

    family = Family.PROTOCOL
    error_code = "PROTOCOL"

CODESPACE = "fedledger"


class Code(IntEnum):
    """Every non-zero code the application returns; each names one distinct failure."""

    OK = 0
    ENCODING = 1  # bytes are not a canonical tx envelope
    OVERSIZE = 2  # tx larger than MAX_TX_BYTES
    WRONG_CHAIN = 3  # chain id differs from this chain's
    BAD_SIGNATURE = 4  # signature does not verify for the signer key
    NONCE_REPLAY = 5  # nonce already used (replay)
    NONCE_GAP = 6  # nonce skips ahead of the next expected one
    UNKNOWN_TYPE = 7  # tx type not registered
    INVALID_BODY = 8  # body fails its schema
    UNAUTHORIZED = 9  # signer may not send this tx
    NOT_FOUND = 10  # referenced task/round/contribution/version does not exist
    ALREADY_EXISTS = 11  # object already exists
    WRONG_STATE = 12  # object is not in a state that allows this tx
    DEADLINE = 13  # round deadline passed
    ROUND_FULL = 14  # round already holds its maximum contributions
    CREDENTIAL_INVALID = 15  # credential malformed, badly signed, or not from a registered issuer
    CREDENTIAL_EXPIRED = 16  # credential outside its validity window at block time
    CREDENTIAL_REVOKED = 17  # credential revoked by its issuer
    ORG_CAP = 18  # organization reached its enrollment cap (Sybil limit)
    BUDGET_EXCEEDED = 19  # contribution would exceed the participant's privacy budget
    BAD_QUERY = 20  # query path or data malformed
    QUERY_NOT_FOUND = 21  # queried object does not exist
    RATE_LIMITED = 23  # signer already has MAX_PENDING txs waiting in the mempool
    NOT_SELECTED = 24  # participant not selected for this round
    REPUTATION_PARAMS_INVALID = 30  # reputation params (genesis or governance) out of range or malformed
    REPUTATION_REASON_UNKNOWN = 31  # reputation movement reason not in the fixed set of reasons
    REPUTATION_DID_INVALID = 32  # DID given to the reputation module is malformed or listed twice
    VERSION_DECIDED = 35  # model version is no longer 'proposed' (already promoted, quarantined, rolled back)
    ROLLBACK_REFUSED = 36  # rollback target is not a promoted version below the task's last good version
    UNKNOWN_ACTION = 40  # proposal names a governance action this chain does not run
    ACTION_INVALID = 41  # governance action would leave an invalid state (e.g. an organization without issuers)
    VOTING_CLOSED = 42  # proposal is no longer open for votes (tallied)
    VALIDATOR_SET_UNSAFE = 43  # validator set change could stop the chain (last validator, newcomer >= 1/3 power)
    ANCHOR_RANGE = 50  # anchor's height range does not continue the last anchor, or is not committed yet
    ANCHOR_TX_RECORDED = 51  # this public-chain tx already backs a recorded anchor
    ANCHOR_MISMATCH = 52  # reanchor does not restate the anchor it replaces (range, root, chain, contract)
    EVM_MALFORMED = 60  # raw EVM tx is not a decodable, signed Ethereum tx of a supported type
    EVM_WRONG_CHAIN = 61  # EVM tx signed for another chain id, or without EIP-155 replay protection
    EVM_UNBOUND_SENDER = 62  # EVM tx sender is not bound to an enrolled member's DID
    EVM_GAS_LIMIT = 63  # EVM tx gas above the block gas limit, or the block's EVM gas is used up
    EVM_INVALID = 64  # EVM tx fails the EVM's own checks (intrinsic gas, fees, balance, init code size)
    EVM_BINDING = 65  # address binding refused (bad signature, address or DID already bound)
    POLICY_DENIED = 66  # a policy contract denied, reverted or ran out of gas (a deterministic deny)
    EVM_CALL_FAILED = 67  # eth_call / eth_estimateGas query: the call reverted or failed
    INFERENCE_TIER = 70  # the task's inference policy requires another tier (critical refuses general-tier receipts)
    INFERENCE_NODE = 71  # a receipt's node is not a registered inference node, or it is suspended
    INFERENCE_REPLAY = 72  # these receipts (or this fraud proof) were already reported
    INFERENCE_NO_FRAUD = 73  # the two receipts agree: they prove no equivocation
    INFERENCE_RECEIPT = 74  # a CKKS stage receipt is forged, or the receipts do not chain into one request
    ZK_CIRCUIT = 80  # zk circuit malformed, not the accepted kind, already registered, or none registered for this
    ZK_PROOF_INVALID = 81  # a proof's public instances do not fit its circuit
    ZK_VERSION_MISMATCH = 82  # zk circuit built by another ezkl release than the one validators verify with
    ZK_SRS = 83  # the chain pins no SRS, or the circuit needs more rows than the pinned SRS has
    ZK_REPLAY = 84  # a proof was already submitted for this request, or this proof under another request
    NORM_PROOF_MISSING = 85  # the task requires a norm (clip-bound) proof with each commit, and none came
    NORM_PROOF_INVALID = 86  # the norm proof is malformed, not for this task's circuit, or ezkl rejects it
    ATTESTATION_INVALID = 87  # SEV-SNP evidence malformed (encoding, size), or the DID's last evidence was refused
    ATTESTATION_REQUIRED = 88  # the task requires a TEE and the DID holds no unexpired attestation for its key
    ATTESTATION_POLICY = 89  # the DID's attestation is valid but fails the task's TEE policy (measurement, TCB, debug)
    SD_PROOF_INVALID = 90  # an ecdsa-sd-2023 derived proof is malformed, forged or tampered, or lacks a needed claim
    SD_CLAIMS_DENIED = 91  # the disclosed claims do not satisfy the organization's disclosure policy
    SD_CONTEXT_UNKNOWN = 92  # a selectively disclosed credential names a JSON-LD context the chain does not bundle


class TxError(ChainRejectedError):
    """A rejected tx or query inside the app: a registered code and a readable log for the user."""

    error_code = "TX_ERROR"

    def __init__(self, code: Code, log: str) -> None:
        super().__init__(f"{code.name}: {log}")
        self.code = code
        self.log = log
