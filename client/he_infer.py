"""Encrypted inference from the client: encrypt, relay the ciphertext through each stage's node, decrypt, verify.

The client relays (node 1 answers the client, which sends the answer on to node 2) rather than
nodes forwarding to each other: the nodes stay independent servers that need no route or trust
between them, the client signs every hop's request over exactly the ciphertext it forwards, and it
holds every receipt the moment it is issued, so a node that answers with anything but what the
next node received is caught at once. The price is one extra loopback/WAN leg per stage; the
ciphertexts are ~100-400 KB.

The secret key never leaves ClientKeys: requests carry the public evaluation context (first
request to each node only; nodes cache it by its signed sha256) and ciphertexts.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fedledger.sdk.he.errors import HE_ERRORS, HEContextMissingError, HEError, HEFormatError, HEReceiptError
from fedledger.sdk.he.keys import ClientKeys, sha256_hex
from fedledger.sdk.he.records import HEReceipt, decode_frame, encode_frame, parse_receipt, sign_request

__all__ = ["HEInferenceResult", "HEStageCall", "Hop", "HEClient"]


@dataclass(frozen=True)
class Hop:
    """One stage's node: its base URL, and optionally the DID whose receipt the client insists on."""

    url: str
    stage: int
    node_did: str | None = None


@dataclass(frozen=True)
class HEStageCall:
    """What one hop cost: request and answer bytes, seconds on the wire and in the node."""

    stage: int
    request_bytes: int
    response_bytes: int
    seconds: float
    sent_context: bool


@dataclass(frozen=True, eq=False)
class HEInferenceResult:
    """Decrypted logits, the verified receipts in stage order, and where the time went."""

    logits: npt.NDArray[np.float64]
    receipts: tuple[HEReceipt, ...]
    encrypt_seconds: float
    decrypt_seconds: float
    calls: tuple[HEStageCall, ...]
    input_ciphertext_bytes: int
    requests: tuple[bytes, ...] = field(repr=False, default=())  # every body sent, kept only with keep_requests


class HEClient:
    """A client with its own CKKS keys and DID key, running encrypted inference over HTTP."""

    def __init__(self, did_key: Ed25519PrivateKey, keys: ClientKeys | None = None, timeout: float = 120.0,
                 keep_requests: bool = False) -> None:
        self.did_key = did_key
        self.keys = keys or ClientKeys()
        self._http = httpx.Client(timeout=timeout)
        self._context_sent: set[str] = set()  # node URLs that already hold our evaluation context
        self.keep_requests = keep_requests

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def __enter__(self) -> HEClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, hop: Hop, model: str, version: int, body: bytes) -> httpx.Response:
        url = f"{hop.url.rstrip('/')}/v2/models/{model}/versions/{version}/stages/{hop.stage}/he"
        try:
            return self._http.post(url, content=body, headers={"content-type": "application/octet-stream"})
        except httpx.HTTPError as exc:
            raise HEError(f"stage {hop.stage} node at {hop.url} did not answer: {exc}") from None

    def infer(self, features: npt.ArrayLike, hops: Sequence[Hop], model: str, version: int,
              num_outputs: int) -> HEInferenceResult:
        """Run the stages in order on the encrypted features and return the verified, decrypted logits."""
        if not hops or [h.stage for h in hops] != list(range(len(hops))):
            raise HEFormatError("hops must name stages 0, 1, ... in order")
        request_id = secrets.token_hex(16)
        t0 = time.perf_counter()
        ciphertext = self.keys.encrypt(features)
        encrypt_s = time.perf_counter() - t0
        input_bytes = len(ciphertext)
        receipts: list[HEReceipt] = []
        calls: list[HEStageCall] = []
        sent: list[bytes] = []
        for hop in hops:
            req = sign_request(self.did_key, request_id=request_id, model=model, version=version, stage=hop.stage,
                               params=self.keys.params.label(), input_sha256=sha256_hex(ciphertext),
                               eval_context_sha256=self.keys.eval_context_sha256)
            header = {"request": {**req.unsigned(), "sig": req.sig}}
            with_context = hop.url not in self._context_sent
            body = encode_frame(header, ciphertext, self.keys.eval_context if with_context else None)
            t = time.perf_counter()
            response = self._post(hop, model, version, body)
            if response.status_code == HEContextMissingError.http_status and not with_context:
                # The node dropped our context from its cache (or restarted): send it once more.
                with_context = True
                body = encode_frame(header, ciphertext, self.keys.eval_context)
                response = self._post(hop, model, version, body)
            seconds = time.perf_counter() - t
            if self.keep_requests:
                sent.append(body)
            if response.status_code != 200:
                raise _node_error(hop, response)
            self._context_sent.add(hop.url)
            frame = decode_frame(response.content)
            receipt = parse_receipt(frame.header.get("receipt"))
            _check_receipt(receipt, req.hash(), hop, ciphertext, frame.ciphertext, self.keys.eval_context_sha256)
            receipts.append(receipt)
            calls.append(HEStageCall(hop.stage, len(body), len(response.content), seconds, with_context))
            ciphertext = frame.ciphertext
        t = time.perf_counter()
        plain = self.keys.decrypt(ciphertext)
        decrypt_s = time.perf_counter() - t
        if plain.shape[0] < num_outputs:
            raise HEFormatError(f"the last stage returned {plain.shape[0]} values, expected {num_outputs}")
        worst = float(np.abs(plain[:num_outputs]).max())
        if not worst < self.keys.params.max_magnitude:
            # Not a proof, a range check: a correct result cannot exceed it, garbage from wrong keys does.
            raise HEFormatError(f"decrypted value {worst:.3g} is beyond what CKKS represents at these parameters "
                                f"({self.keys.params.max_magnitude:.3g}): a stage ran under an evaluation key that "
                                "is not ours, or the model overflowed")
        return HEInferenceResult(logits=plain[:num_outputs], receipts=tuple(receipts), encrypt_seconds=encrypt_s,
                                 decrypt_seconds=decrypt_s, calls=tuple(calls), input_ciphertext_bytes=input_bytes,
                                 requests=tuple(sent))


def _node_error(hop: Hop, response: httpx.Response) -> HEError:
    """The node's refusal as the HEError its code names (HEError if the body is not ours)."""
    try:
        payload = response.json()
        cls = HE_ERRORS.get(str(payload.get("code")), HEError)
        message = str(payload.get("error"))
    except ValueError:
        cls, message = HEError, response.text[:200]
    return cls(f"stage {hop.stage} node refused ({response.status_code}): {message}")


def _check_receipt(receipt: HEReceipt, request_hash: str, hop: Hop, sent: bytes, got: bytes, ctx_sha: str) -> None:
    """A receipt must name this request, exactly the ciphertexts that crossed the wire, and the expected node."""
    expected = {"request_hash": request_hash, "stage": hop.stage, "input_sha256": sha256_hex(sent),
                "output_sha256": sha256_hex(got), "eval_context_sha256": ctx_sha}
    for name, value in expected.items():
        if getattr(receipt, name) != value:
            raise HEReceiptError(f"stage {hop.stage} receipt's {name} does not match what was sent and received")
    if hop.node_did is not None and receipt.node != hop.node_did:
        raise HEReceiptError(f"stage {hop.stage} receipt is signed by {receipt.node}, expected {hop.node_did}")
