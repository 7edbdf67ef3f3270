"""The CKKS parameters of encrypted inference, and the one check that a context uses them.

Depth. A two-stage polynomial MLP multiplies three times along its path: stage 1's plaintext
matrix product (one rescale), its square (ciphertext times ciphertext, one rescale), stage 2's
matrix product (one rescale). CKKS spends one coefficient prime per rescale, so the chain needs
three 40-bit middle primes, plus a first prime that holds the decrypted value's integer part and
a special prime for key switching.

Sizes. coeff_mod_bit_sizes = [60, 40, 40, 40, 38] totals 218 bits, the most the homomorphic
encryption security standard allows for 128-bit security at poly_modulus_degree 8192 (SEAL
enforces it), so 8192 is the smallest degree with this depth; 16384 would cost about 4x per
operation. The scale 2^40 matches the middle primes so each rescale returns the scale to 2^40;
the first prime's 60 bits leave 20 bits (about ±5e5) for the logits' integer part. The special
prime is 38 bits only because of the 218-bit cap; measured end-to-end error stays near 1e-5.
8192 slots/2 = 4096 slots fit a 65-wide input replicated, which TenSEAL's vector-matrix product
needs.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CKKS_PARAMS", "CKKSParams"]


@dataclass(frozen=True)
class CKKSParams:
    """A CKKS parameter set: ring degree, coefficient modulus primes' bit sizes, and the encoding scale's log2."""

    poly_modulus_degree: int
    coeff_mod_bit_sizes: tuple[int, ...]
    scale_bits: int

    @property
    def scale(self) -> float:
        """The global encoding scale, 2**scale_bits."""
        return float(2 ** self.scale_bits)

    @property
    def depth(self) -> int:
        """How many rescales a ciphertext survives: the middle primes."""
        return len(self.coeff_mod_bit_sizes) - 2

    @property
    def slots(self) -> int:
        """CKKS slots per ciphertext."""
        return self.poly_modulus_degree // 2

    @property
    def max_magnitude(self) -> float:
        """The largest |value| a decrypted result can hold correctly: the first prime's bits above the scale.

        Beyond it the value wraps modulo the last prime, so a decryption over it is certainly wrong;
        that is how a client notices a stage evaluated under Galois/relinearization keys that are not
        its own (those decrypt to values of ~1e6-1e7 here), which no node can tell from the bytes.
        """
        return float(2 ** (self.coeff_mod_bit_sizes[0] - self.scale_bits - 1))

    def label(self) -> str:
        """A short canonical name of the set, which requests and receipts name."""
        return f"ckks-{self.poly_modulus_degree}-{'-'.join(map(str, self.coeff_mod_bit_sizes))}-s{self.scale_bits}"


CKKS_PARAMS = CKKSParams(poly_modulus_degree=8192, coeff_mod_bit_sizes=(60, 40, 40, 40, 38), scale_bits=40)
