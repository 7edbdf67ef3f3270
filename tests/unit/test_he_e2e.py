"""Encrypted inference end to end against real stage nodes (uvicorn on loopback), and every refusal path.

Uses the polynomial digits model trained by sdk/he/training.py (seed 0) on sklearn's bundled
digits data, and one fresh CKKS key bundle per module (key generation costs about a second).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import tenseal as ts
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fedledger.client.he_infer import HEClient, Hop
from fedledger.sdk.he.errors import (
    HEContextError,
    HEContextMissingError,
    HEFormatError,
    HEIntegrityError,
    HEOversizeError,
    HEReceiptError,
    HEStageError,
)
from fedledger.sdk.he.keys import ClientKeys, sha256_hex
from fedledger.sdk.he.params import CKKS_PARAMS
from fedledger.sdk.he.poly import PolyStage, reference_forward, split_stages
from fedledger.sdk.he.records import decode_frame, encode_frame, sign_request
from fedledger.sdk.he.training import digits_split, train_digits
from tests.he_support import MODEL, VERSION, RunningNode, he_nodes

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def stages() -> tuple[PolyStage, ...]:
    return split_stages(MODEL, train_digits(MODEL, seed=0).weights)


@pytest.fixture(scope="module")
def nodes(stages: tuple[PolyStage, ...]) -> Iterator[list[RunningNode]]:
    with he_nodes(stages) as running:
        yield running


@pytest.fixture(scope="module")
def client() -> Iterator[HEClient]:
    with HEClient(Ed25519PrivateKey.generate(), keep_requests=True) as c:
        yield c


def _hops(nodes: list[RunningNode]) -> list[Hop]:
    return [Hop(n.url, n.stage, n.did) for n in nodes]


def _post(node: RunningNode, body: bytes, stage: int | None = None) -> httpx.Response:
    stage = node.stage if stage is None else stage
    return httpx.post(f"{node.url}/v2/models/{MODEL}/versions/{VERSION}/stages/{stage}/he", content=body, timeout=60)


def _request_body(client: HEClient, ciphertext: bytes, stage: int, context: bytes | None,
                  ctx_sha: str | None = None, signed_ct: bytes | None = None) -> bytes:
    req = sign_request(client.did_key, request_id="ab" * 16, model=MODEL, version=VERSION, stage=stage,
                       params=CKKS_PARAMS.label(), input_sha256=sha256_hex(signed_ct or ciphertext),
                       eval_context_sha256=ctx_sha or client.keys.eval_context_sha256)
    return encode_frame({"request": {**req.unsigned(), "sig": req.sig}}, ciphertext, context)


def test_two_nodes_in_sequence_match_the_plaintext_polynomial(
        stages: tuple[PolyStage, ...], nodes: list[RunningNode], client: HEClient) -> None:
    _, test = digits_split(0)
    for i in range(3):
        result = client.infer(test.X[i], _hops(nodes), MODEL, VERSION, num_outputs=10)
        ref = reference_forward(stages, test.X[i])
        assert np.abs(result.logits - ref).max() <= 1e-3
        assert [r.stage for r in result.receipts] == [0, 1]
        assert [r.node for r in result.receipts] == [n.did for n in nodes]
        # The receipts chain: stage 1 computed on exactly what stage 0 returned.
        assert result.receipts[0].output_sha256 == result.receipts[1].input_sha256
        assert len({r.request_id for r in result.receipts}) == 1
        # The context crossed once per node; later inferences only carry ciphertexts.
        assert [c.sent_context for c in result.calls] == ([True, True] if i == 0 else [False, False])


def test_the_secret_key_is_in_no_request(client: HEClient, nodes: list[RunningNode]) -> None:
    _, test = digits_split(0)
    client.infer(test.X[5], _hops(nodes), MODEL, VERSION, num_outputs=10)
    secret = client.keys.secret_key_bytes()
    assert len(secret) > 1000
    # Positive control: the search finds the key where it is (a context serialized with it).
    private = client.keys._context.serialize(save_secret_key=True)
    probe = secret[len(secret) // 2: len(secret) // 2 + 64]
    assert probe in private
    with HEClient(client.did_key, client.keys, keep_requests=True) as fresh:
        result = fresh.infer(test.X[6], _hops(nodes), MODEL, VERSION, num_outputs=10)
    assert result.requests and result.calls[0].sent_context  # the context-carrying requests are included
    for body in result.requests:
        assert probe not in body and secret not in body
        frame = decode_frame(body)
        if frame.context is not None:
            assert not ts.context_from(frame.context).has_secret_key()


def test_tampered_ciphertext_is_refused(client: HEClient, nodes: list[RunningNode]) -> None:
    ct = client.keys.encrypt(np.zeros(64))
    tampered = bytearray(ct)
    tampered[len(tampered) // 2] ^= 0x01
    response = _post(nodes[0], _request_body(client, bytes(tampered), 0, client.keys.eval_context, signed_ct=ct))
    assert response.status_code == HEIntegrityError.http_status == 422
    assert response.json()["code"] == "HE_TAMPERED" and "signed" in response.json()["error"]


def test_a_context_from_another_key_pair_is_refused(client: HEClient, nodes: list[RunningNode]) -> None:
    other = ClientKeys()
    ct = client.keys.encrypt(np.zeros(64))
    # The request is signed over our context's hash but carries another key pair's context.
    response = _post(nodes[0], _request_body(client, ct, 0, other.eval_context))
    assert response.status_code == 422 and response.json()["code"] == "HE_TAMPERED"
    assert "evaluation context" in response.json()["error"]


def test_a_signed_context_of_another_key_pair_is_caught_by_the_client(nodes: list[RunningNode]) -> None:
    # The client itself signs (and sends) the evaluation context of another key pair. A node cannot
    # tell: SEAL ciphertexts name their parameters, not their key. It answers 200; the decryption is
    # garbage far outside CKKS's range, which the client refuses rather than returning it.
    keys, other = ClientKeys(), ClientKeys()
    keys.eval_context, keys.eval_context_sha256 = other.eval_context, other.eval_context_sha256
    with HEClient(Ed25519PrivateKey.generate(), keys) as mixed, pytest.raises(HEFormatError, match="not ours"):
        mixed.infer(np.zeros(64), _hops(nodes), MODEL, VERSION, 10)


def test_a_context_with_other_parameters_does_not_fit(client: HEClient, nodes: list[RunningNode]) -> None:
    small = ts.context(ts.SCHEME_TYPE.CKKS, 8192, coeff_mod_bit_sizes=[60, 40, 40, 60])
    small.global_scale = 2 ** 40
    small.generate_galois_keys()
    small.generate_relin_keys()
    ct = bytes(ts.ckks_vector(small, [0.0] * 65).serialize())
    small.make_context_public()
    ctx_bytes = small.serialize()
    response = _post(nodes[0], _request_body(client, ct, 0, ctx_bytes, ctx_sha=sha256_hex(ctx_bytes)))
    assert response.status_code == HEContextError.http_status and response.json()["code"] == "HE_CONTEXT"
    assert "primes" in response.json()["error"]


def test_a_context_holding_the_secret_key_is_refused(client: HEClient, nodes: list[RunningNode]) -> None:
    private = client.keys._context.serialize(save_secret_key=True)
    ct = client.keys.encrypt(np.zeros(64))
    response = _post(nodes[0], _request_body(client, ct, 0, private, ctx_sha=sha256_hex(private)))
    assert response.status_code == 422 and "secret key" in response.json()["error"]


def test_stage_mismatch_is_refused(client: HEClient, nodes: list[RunningNode]) -> None:
    ct = client.keys.encrypt(np.zeros(64))
    # Signed for stage 0, sent to stage 1's path on stage 1's node.
    response = _post(nodes[1], _request_body(client, ct, 0, None), stage=1)
    assert response.status_code == HEStageError.http_status and "signed request is for" in response.json()["error"]
    # A stage this node does not hold.
    response = _post(nodes[0], _request_body(client, ct, 1, None), stage=1)
    assert response.status_code == 409 and "this node serves" in response.json()["error"]
    # Through the client: hops naming a node for the wrong stage fail with the node's error.
    with pytest.raises(HEStageError):
        client.infer(np.zeros(64), [Hop(nodes[1].url, 0), Hop(nodes[0].url, 1)], MODEL, VERSION, 10)


@pytest.mark.parametrize("body", [b"", b"hello", b"FLHE1\x00\x00\x00\x05{bad}", b"FLHE1\xff\xff\xff\xff"])
def test_malformed_frames_get_400(nodes: list[RunningNode], body: bytes) -> None:
    response = _post(nodes[0], body)
    assert response.status_code == HEFormatError.http_status and response.json()["code"] == "HE_MALFORMED"


def test_undeserializable_ciphertext_gets_400(client: HEClient, nodes: list[RunningNode]) -> None:
    garbage = b"\x00not a ciphertext" * 10
    response = _post(nodes[0], _request_body(client, garbage, 0, client.keys.eval_context))
    assert response.status_code == 400 and "does not deserialize" in response.json()["error"]
    # A well-formed ciphertext of the wrong width for the stage.
    narrow = bytes(ts.ckks_vector(client.keys._context, [0.0] * 10).serialize())
    response = _post(nodes[0], _request_body(client, narrow, 0, None))
    assert response.status_code == 400 and "reads 65" in response.json()["error"]


def test_unknown_context_without_inline_gets_428(client: HEClient, nodes: list[RunningNode]) -> None:
    ct = client.keys.encrypt(np.zeros(64))
    response = _post(nodes[0], _request_body(client, ct, 0, None, ctx_sha="0" * 64))
    assert response.status_code == HEContextMissingError.http_status == 428


def test_oversized_body_gets_413(stages: tuple[PolyStage, ...]) -> None:
    with he_nodes(stages[:1], max_body_bytes=1 << 20) as small:
        response = _post(small[0], b"FLHE1" + b"\x00" * (2 << 20))
        assert response.status_code == HEOversizeError.http_status == 413
        assert response.json()["code"] == "HE_OVERSIZE"


def test_a_receipt_from_an_unexpected_node_is_caught(client: HEClient, nodes: list[RunningNode]) -> None:
    hops = [Hop(nodes[0].url, 0, nodes[1].did), Hop(nodes[1].url, 1)]
    with pytest.raises(HEReceiptError, match="expected"):
        client.infer(np.zeros(64), hops, MODEL, VERSION, 10)
