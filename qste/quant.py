"""The b-bit quantized ReLU, its autograd function, and resolution calibration.

    sigma_b(x) = 0                          for x <= 0
               = alpha * min(ceil(x/alpha), L)  for x > 0,    L = 2^b - 1

Forward values are exactly {0, alpha, ..., L*alpha}; the backward pass is grad * mu'(x)
for the layer's STE (see ``qste.ste``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from qste.ste import STES, SteBackward

MAX_BITS = 16  # L = 65535: the level index ceil(x/alpha) <= L is still exact in float32


def levels_for(bits: int) -> int:
    """Number of non-zero levels L = 2^b - 1."""
    return 2**bits - 1


def quantize(x: Tensor, alpha: float, levels: int) -> Tensor:
    """sigma_b(x) as a new tensor: alpha * clamp(ceil(x / alpha), 0, L)."""
    # One allocating op, then in place: ceil(x/alpha) <= 0 exactly when x <= 0.
    return torch.div(x, alpha).ceil_().clamp_(0, levels).mul_(alpha)


class QuantizedReLUFunction(torch.autograd.Function):
    """Forward sigma_b; backward grad * mu'(x) with the given STE backward."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, alpha: float, levels: int, ste_backward: SteBackward) -> Tensor:
        ctx.save_for_backward(x)
        ctx.alpha, ctx.levels, ctx.ste_backward = alpha, levels, ste_backward
        return quantize(x, alpha, levels)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None, None]:
        (x,) = ctx.saved_tensors
        return ctx.ste_backward(grad, x, ctx.alpha, ctx.levels), None, None, None


class QuantReLU(nn.Module):
    """A quantized ReLU that owns its settings: bit-width, STE and resolution alpha.

    ``bits=None`` is the float ReLU baseline. ``alpha=None`` means "to be calibrated":
    ``calibrate`` sets it once from pre-activations; after that it stays fixed.
    alpha is a Python float (not a tensor) so the hot path never syncs with the device;
    it travels in checkpoints through the module's extra state.
    """

    def __init__(self, bits: int | None, ste: str, alpha: float | None = None) -> None:
        super().__init__()
        if bits is not None and not 1 <= bits <= MAX_BITS:
            raise ValueError(f"bits must be None or in 1..{MAX_BITS}, got {bits}")
        if alpha is not None and not alpha > 0:
            raise ValueError(f"alpha must be positive, got {alpha}")
        self.bits = bits
        self.ste = ste
        self.ste_backward = STES.get(ste)
        self.alpha = alpha

    @property
    def levels(self) -> int | None:
        return None if self.bits is None else levels_for(self.bits)

    @property
    def quantized(self) -> bool:
        return self.bits is not None

    def forward(self, x: Tensor) -> Tensor:
        if self.bits is None:
            return F.relu(x)
        if self.alpha is None:
            raise RuntimeError("QuantReLU.alpha is not set: calibrate it or give a fixed value")
        return QuantizedReLUFunction.apply(x, self.alpha, self.levels, self.ste_backward)

    def calibrate(self, x: Tensor, percentile: float) -> None:
        """Set alpha so that L*alpha sits at ``percentile`` of the positive pre-activations."""
        positive = x.detach()[x.detach() > 0].float()
        if positive.numel() == 0:
            raise ValueError(
                "alpha calibration found no positive pre-activations in the first batch; "
                "set alpha=<positive number>"
            )
        k = max(1, math.ceil(percentile / 100 * positive.numel()))
        clip = positive.kthvalue(k).values.item()
        self.alpha = clip / self.levels

    def get_extra_state(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "bits": self.bits, "ste": self.ste}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        if state["bits"] != self.bits:
            raise ValueError(f"checkpoint has bits={state['bits']}, this model bits={self.bits}")
        self.alpha = state["alpha"]

    def extra_repr(self) -> str:
        return f"bits={self.bits}, ste={self.ste}, alpha={self.alpha}"


def quantizers(model: nn.Module) -> list[QuantReLU]:
    """The model's quantized activations, in forward order of registration."""
    return [m for m in model.modules() if isinstance(m, QuantReLU) and m.quantized]


@torch.no_grad()
def calibrate_alphas(model: nn.Module, x: Tensor, percentile: float) -> None:
    """Calibrate every uncalibrated quantizer from one forward pass of batch ``x``.

    Quantizers are calibrated in forward order, so each sees the already-quantized
    output of the layers before it. The pass leaves no other trace: buffers such as
    batch-norm running statistics are restored afterwards.
    """
    pending = [q for q in quantizers(model) if q.alpha is None]
    if not pending:
        return
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    hooks = [q.register_forward_pre_hook(lambda q, args: q.calibrate(args[0], percentile)) for q in pending]
    try:
        model(x)
    finally:
        for hook in hooks:
            hook.remove()
        for name, b in model.named_buffers():
            b.copy_(buffers[name])
