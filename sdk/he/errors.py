"""The errors of encrypted inference, one per way a request, ciphertext, context or receipt can be wrong.

Each carries the HTTP status a node answers it with, so the node's endpoint and the client agree
on what a refusal means without a second table.
"""

from __future__ import annotations

from typing import ClassVar

from fedledger.abci_app.errors import ConfigError, Family, ProtocolError, VerificationError

__all__ = [
    "HEContextError", "HEContextMissingError", "HEError", "HEFormatError", "HEIntegrityError", "HEOversizeError",
    "HEParamsError", "HEReceiptError", "HEStageError", "HE_ERRORS",
]


class HEError(ProtocolError):
    """Base of the encrypted-inference errors: a request or answer that breaks the HE protocol."""

    error_code = "HE"
    http_status: ClassVar[int] = 400


class HEFormatError(HEError):
    """A frame, header, ciphertext or context that cannot be parsed or deserialized."""

    error_code = "HE_MALFORMED"
    http_status = 400


class HEIntegrityError(HEError, VerificationError):
    """A ciphertext or context whose sha256 is not the one the client signed, or a bad request signature."""

    family = Family.CRYPTO
    error_code = "HE_TAMPERED"
    http_status = 422


class HEContextError(HEError):
    """An evaluation context that does not fit: wrong parameters, a secret key in it, a key missing."""

    error_code = "HE_CONTEXT"
    http_status = 422


class HEContextMissingError(HEError):
    """The request names an evaluation context the node does not hold and does not carry it."""

    error_code = "HE_CONTEXT_MISSING"
    http_status = 428


class HEStageError(HEError):
    """The request is for a model, version or stage this node does not serve, or its path and signed stage differ."""

    error_code = "HE_STAGE"
    http_status = 409


class HEOversizeError(HEError):
    """A request body over the node's size limit."""

    error_code = "HE_OVERSIZE"
    http_status = 413


class HEParamsError(HEError, ConfigError):
    """A model cannot be turned into HE stages (not a square-activation MLP, weights that do not fit)."""

    family = Family.CONFIG
    error_code = "HE_PARAMS"
    http_status = 400


class HEReceiptError(HEError, VerificationError):
    """A node's receipt does not verify: bad signature, wrong node, or hashes that do not chain."""

    family = Family.CRYPTO
    error_code = "HE_RECEIPT"
    http_status = 502


# By error_code, so a client can turn a node's error body back into the same exception.
HE_ERRORS: dict[str, type[HEError]] = {cls.error_code: cls for cls in (
    HEError, HEFormatError, HEIntegrityError, HEContextError, HEContextMissingError, HEStageError, HEOversizeError,
    HEParamsError, HEReceiptError)}
