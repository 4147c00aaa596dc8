"""Networks with quantized activations."""

from __future__ import annotations

from typing import Callable

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from qste.quant import QuantReLU


class TwoLayerNet(nn.Module):
    """f(x) = V sigma_b(W x + c) + d, the two-linear-layer network of [LYX].

    ``output_init="blocks"`` splits the hidden units evenly among the classes: weight 1
    from a unit to its own class, 0 elsewhere, and d = 0. ``freeze_output`` trains only
    the first layer (W, c), as in the theory.
    """

    def __init__(
        self,
        in_features: int,
        n_classes: int,
        activation: QuantReLU,
        hidden: int,
        bias: bool = True,
        output_init: str = "random",
        freeze_output: bool = False,
    ) -> None:
        super().__init__()
        self.hidden = nn.Linear(in_features, hidden, bias=bias)
        self.act = activation
        self.output = nn.Linear(hidden, n_classes)
        if output_init == "blocks":
            self._init_output_blocks()
        elif output_init != "random":
            raise ValueError(f"output_init must be 'random' or 'blocks', got {output_init!r}")
        self.output.requires_grad_(not freeze_output)

    @torch.no_grad()
    def _init_output_blocks(self) -> None:
        n_classes, hidden = self.output.weight.shape
        if hidden % n_classes:
            raise ValueError(f"blocks output needs hidden ({hidden}) divisible by n_classes ({n_classes})")
        owner = torch.arange(hidden) // (hidden // n_classes)  # class of each hidden unit
        self.output.weight.copy_(owner.unsqueeze(0) == torch.arange(n_classes).unsqueeze(1))
        self.output.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        return self.output(self.act(self.hidden(x.flatten(1))))


def build_model(cfg: DictConfig, in_features: int, n_classes: int, make_activation: Callable[[], QuantReLU]) -> nn.Module:
    """The network named by the ``model/`` config group; each activation from ``make_activation``."""
    if cfg.name == "two_layer":
        return TwoLayerNet(
            in_features,
            n_classes,
            make_activation(),
            hidden=cfg.hidden,
            bias=cfg.bias,
            output_init=cfg.output_init.name,
            freeze_output=cfg.freeze_output,
        )
    raise ValueError(f"unknown model {cfg.name!r}")
