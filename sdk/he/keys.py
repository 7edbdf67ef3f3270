"""The client's CKKS key bundle: the secret key stays in this object; only the public evaluation context leaves.

The evaluation context is the public key, the relinearization keys (the square multiplies two
ciphertexts) and the Galois keys (the vector-matrix product rotates), serialized without the
secret key. Its sha256 goes into every signed request, so a node can tell the context it was
given is the one the client meant.
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt
import tenseal as ts

from fedledger.sdk.he.errors import HEFormatError
from fedledger.sdk.he.params import CKKS_PARAMS, CKKSParams
from fedledger.sdk.he.poly import stage_input

__all__ = ["ClientKeys", "sha256_hex"]


def sha256_hex(data: bytes) -> str:
    """sha256 of data, lowercase hex."""
    return hashlib.sha256(data).hexdigest()


class ClientKeys:
    """A fresh CKKS key pair with its evaluation keys, held by the client only."""

    def __init__(self, params: CKKSParams = CKKS_PARAMS) -> None:
        self.params = params
        ctx = ts.context(ts.SCHEME_TYPE.CKKS, params.poly_modulus_degree,
                         coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes))
        ctx.global_scale = params.scale
        ctx.generate_galois_keys()
        ctx.generate_relin_keys()
        self._context = ctx
        public = ctx.copy()
        public.make_context_public()  # drops the secret key from the copy that is serialized
        self.eval_context: bytes = public.serialize(save_public_key=True, save_secret_key=False,
                                                    save_galois_keys=True, save_relin_keys=True)
        self.eval_context_sha256 = sha256_hex(self.eval_context)

    def encrypt(self, features: npt.ArrayLike) -> bytes:
        """Encrypt the features (with the constant 1 the first stage's bias row needs) into ciphertext bytes."""
        v = stage_input(features)
        if not np.isfinite(v).all():
            raise HEFormatError("features must be finite")
        return bytes(ts.ckks_vector(self._context, v.tolist()).serialize())

    def decrypt(self, ciphertext: bytes) -> npt.NDArray[np.float64]:
        """Decrypt ciphertext bytes under the secret key into the vector they hold."""
        try:
            vector = ts.ckks_vector_from(self._context, ciphertext)
        except Exception as exc:  # TenSEAL raises bare ValueError/RuntimeError on bad bytes
            raise HEFormatError(f"answer ciphertext does not deserialize: {exc}") from None
        return np.asarray(vector.decrypt(), dtype=np.float64)

    def secret_key_bytes(self) -> bytes:
        """SEAL's serialization of the secret key, for tests that check it never leaves (never sent)."""
        import os
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "sk")
            self._context.secret_key().data.save(path)
            with open(path, "rb") as fh:
                return fh.read()
