"""Torch layers the model specs use that torch does not provide: the square activation."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Square"]


class Square(nn.Module):
    """The activation x -> x*x, elementwise: the polynomial that homomorphic (CKKS) inference computes exactly."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Square every element."""
        return x * x
