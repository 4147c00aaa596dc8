"""Networks with quantized activations: a QuantReLU wherever the float net has a ReLU.

Every network takes ``make_activation``, a factory returning a fresh QuantReLU, so each
activation owns its bit-width, STE and resolution.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from qste.errors import QsteError
from qste.quant import QuantReLU

MakeActivation = Callable[[], QuantReLU]


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




def norm_act(channels: int, make_activation: MakeActivation, bn: bool, affine: bool, dims: int = 2) -> list[nn.Module]:
    """[batch-norm] + quantized activation, the unit that follows every hidden layer."""
    norm = (nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d)(channels, affine=affine)
    return [norm, make_activation()] if bn else [make_activation()]


class LeNet5(nn.Module):
    """LeNet-5 for 1x28x28 inputs: conv5-6, pool, conv5-16, pool, fc 120, fc 84, fc classes."""

    input_shape = (1, 28, 28)

    def __init__(self, n_classes: int, make_activation: MakeActivation, bn_before_act: bool, bn_affine: bool) -> None:
        super().__init__()
        bn, affine = bn_before_act, bn_affine
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, bias=not bn), *norm_act(6, make_activation, bn, affine), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5, bias=not bn), *norm_act(16, make_activation, bn, affine), nn.MaxPool2d(2),
        )  # fmt: skip
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 4 * 4, 120, bias=not bn), *norm_act(120, make_activation, bn, affine, dims=1),
            nn.Linear(120, 84, bias=not bn), *norm_act(84, make_activation, bn, affine, dims=1),
            nn.Linear(84, n_classes),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


class VGG11(nn.Module):
    """VGG-11 for 3x32x32 inputs (CIFAR-10): eight 3x3 conv layers and a linear classifier."""

    input_shape = (3, 32, 32)
    layout = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")

    def __init__(self, n_classes: int, make_activation: MakeActivation, bn_before_act: bool, bn_affine: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in self.layout:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(channels, item, 3, padding=1, bias=not bn_before_act)]
                layers += norm_act(item, make_activation, bn_before_act, bn_affine)
                channels = item
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(512, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).flatten(1))


class BasicBlock(nn.Module):
    """Two 3x3 convs with batch-norm; quantized activation after the first and after the sum."""

    def __init__(self, cin: int, cout: int, stride: int, make_activation: MakeActivation, affine: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout, affine=affine)
        self.act1 = make_activation()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, affine=affine)
        self.shortcut = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout, affine=affine))
            if stride != 1 or cin != cout
            else nn.Identity()
        )
        self.act2 = make_activation()

    def forward(self, x: Tensor) -> Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        return self.act2(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet20(nn.Module):
    """ResNet-20 for 3x32x32 inputs (He et al. 2016, CIFAR): 3 stages x 3 blocks, 16/32/64 channels."""

    input_shape = (3, 32, 32)

    def __init__(self, n_classes: int, make_activation: MakeActivation, bn_affine: bool) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16, affine=bn_affine), make_activation())
        blocks, cin = [], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(3):
                blocks.append(BasicBlock(cin, cout, stride if i == 0 else 1, make_activation, bn_affine))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.classifier = nn.Linear(64, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.blocks(self.stem(x)).mean((2, 3)))


def build_model(cfg: DictConfig, input_shape: tuple[int, ...], n_classes: int, make_activation: MakeActivation) -> nn.Module:
    """The network named by the ``model/`` config group; each activation from ``make_activation``."""
    if cfg.name == "two_layer":
        return TwoLayerNet(
            math.prod(input_shape),
            n_classes,
            make_activation(),
            hidden=cfg.hidden,
            bias=cfg.bias,
            output_init=cfg.output_init.name,
            freeze_output=cfg.freeze_output,
        )
    conv_nets = {"lenet5": LeNet5, "vgg11": VGG11, "resnet20": ResNet20}
    if cfg.name not in conv_nets:
        raise ValueError(f"unknown model {cfg.name!r}")
    net = conv_nets[cfg.name]
    if tuple(input_shape) != net.input_shape:
        shape = "x".join(map(str, input_shape))
        raise QsteError(f"model={cfg.name} takes {'x'.join(map(str, net.input_shape))} images; the dataset gives {shape}")
    if net is ResNet20:
        return ResNet20(n_classes, make_activation, cfg.bn_affine)
    return net(n_classes, make_activation, cfg.bn_before_act, cfg.bn_affine)
