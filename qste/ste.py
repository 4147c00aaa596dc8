"""Straight-through estimators (STEs): the backward pass of the quantized ReLU.

The forward pass of the b-bit quantized ReLU is a staircase whose derivative is zero
almost everywhere. The coarse gradient replaces that derivative by mu'(x), the
derivative of a proxy function mu. Each STE here is one function

    backward(grad, x, alpha, levels) -> grad * mu'(x)

where ``x`` is the pre-activation, ``alpha`` the resolution and ``levels`` = 2^b - 1, so
the clipping point is q = alpha * levels. Adding an STE is one such function decorated
with ``@register_ste("name")`` plus ``conf/ste/<name>.yaml`` holding ``name: <name>``.

The built-in STEs call single fused ATen kernels where one computes exactly
grad * mu'(x) (one pass over memory instead of building a mask and multiplying).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

SteBackward = Callable[[Tensor, Tensor, float, int], Tensor]

_aten = torch.ops.aten


class SteRegistry:
    """Name -> backward function; the single place where STEs are looked up."""

    def __init__(self) -> None:
        self._backward: dict[str, SteBackward] = {}

    def register(self, name: str) -> Callable[[SteBackward], SteBackward]:
        def add(fn: SteBackward) -> SteBackward:
            if name in self._backward:
                raise ValueError(f"STE {name!r} is already registered")
            self._backward[name] = fn
            return fn

        return add

    def get(self, name: str) -> SteBackward:
        try:
            return self._backward[name]
        except KeyError:
            raise KeyError(f"unknown STE {name!r}; registered: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return sorted(self._backward)


STES = SteRegistry()
register_ste = STES.register


@register_ste("identity")
def identity(grad: Tensor, x: Tensor, alpha: float, levels: int) -> Tensor:
    """mu'(x) = 1: the gradient passes through unchanged."""
    return grad


@register_ste("relu")
def relu(grad: Tensor, x: Tensor, alpha: float, levels: int) -> Tensor:
    """mu'(x) = 1{x > 0}."""
    # threshold_backward(g, x, t) = g where x > t, else 0 (ReLU's own backward kernel).
    return _aten.threshold_backward(grad, x, 0.0)


@register_ste("clipped_relu")
def clipped_relu(grad: Tensor, x: Tensor, alpha: float, levels: int) -> Tensor:
    """mu'(x) = 1{0 < x < q}, q = alpha * levels."""
    # hardtanh_backward(g, x, lo, hi) = g where lo < x < hi, else 0 (strict on both sides).
    return _aten.hardtanh_backward(grad, x, 0.0, alpha * levels)


@register_ste("log_tailed_relu")
def log_tailed_relu(grad: Tensor, x: Tensor, alpha: float, levels: int) -> Tensor:
    """mu'(x) = 1{0 < x <= q} + 1{x > q} / ((x - q)/alpha + 1)."""
    q = alpha * levels
    tail = torch.reciprocal((x - q) / alpha + 1.0)  # only read where x > q, so never inf there
    inside = ((x > 0) & (x <= q)).to(grad.dtype)
    return grad * torch.where(x > q, tail, inside)


@register_ste("exact")
def exact(grad: Tensor, x: Tensor, alpha: float, levels: int) -> Tensor:
    """mu'(x) = 0: the true almost-everywhere derivative (the vanishing gradient)."""
    return torch.zeros_like(grad)
